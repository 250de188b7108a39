//! Where token verification keys come from: a pinned PEM, or Clerk's JWKS behind a bounded cache.

use std::sync::Arc;

use clerk_sync::domain::auth::VerificationKeys;
use clerk_sync::secret_cache::{JwksCache, KeysUnavailable};

use crate::ApiError;

/// Where token verification keys come from.
pub enum Keys {
    /// `CLERK_JWT_KEY`: fixed, no network.
    Pinned(Arc<VerificationKeys>),
    /// `CLERK_JWKS_URL`: cached, refetched on an unknown `kid` at most once per interval.
    Jwks(JwksCache),
}

impl Keys {
    /// The keys to check a token naming `kid` with.
    pub(crate) async fn for_kid(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<VerificationKeys>, ApiError> {
        match self {
            Self::Pinned(keys) => Ok(keys.clone()),
            Self::Jwks(cache) => {
                let keys = cache.current().await.map_err(ApiError::KeysUnavailable)?;
                if keys.knows(kid) {
                    return Ok(keys);
                }
                // A new signing key (Clerk rotated), or a forged kid: refetch, bounded.
                match cache.refresh_after_mismatch(&keys).await {
                    Ok(Some(fresh)) => Ok(fresh),
                    Ok(None) => Ok(keys),
                    Err(e) => {
                        tracing::warn!(error = %e, "JWKS refetch failed; using cached keys");
                        Ok(keys)
                    }
                }
            }
        }
    }

    pub(crate) async fn probe(&self) -> Result<(), KeysUnavailable> {
        match self {
            Self::Pinned(_) => Ok(()),
            Self::Jwks(cache) => cache.current().await.map(|_| ()),
        }
    }
}
