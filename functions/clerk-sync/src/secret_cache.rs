//! Per-container caches of keys (webhook signing secrets, token verification keys), with bounded
//! refreshes.
//!
//! Keys are loaded on first use and kept. A signature that matches none of them may mean the keys
//! were rotated, so the caller may ask for a refresh; refreshes are single-flight and at most one
//! per `min_refresh_interval`, so a flood of forgeries costs at most one read per interval. Keys
//! older than `max_age` are re-read on the next request so that retired keys stop being accepted
//! without a redeploy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::domain::auth::{KeyFormatError, VerificationKeys};
use crate::domain::webhook::{SecretFormatError, WebhookKeys};
use crate::ports::{DependencyError, KeySource, SecretSource};

/// Why no keys could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysUnavailable {
    #[error(transparent)]
    Source(#[from] DependencyError),
    #[error("the webhook secret value is malformed: {0}")]
    Malformed(#[from] SecretFormatError),
    #[error(transparent)]
    MalformedKeys(#[from] KeyFormatError),
}

/// Loads one generation of keys.
#[async_trait]
pub trait Load: Send + Sync {
    type Keys: Send + Sync + 'static;
    async fn load(&self) -> Result<Self::Keys, KeysUnavailable>;
    /// What was loaded, for the log line (never key material).
    fn describe(keys: &Self::Keys) -> String;
}

/// The webhook signing secrets, from Secrets Manager.
pub struct WebhookSecrets(pub Arc<dyn SecretSource>);

#[async_trait]
impl Load for WebhookSecrets {
    type Keys = WebhookKeys;
    async fn load(&self) -> Result<WebhookKeys, KeysUnavailable> {
        Ok(WebhookKeys::parse(&self.0.fetch().await?)?)
    }
    fn describe(keys: &WebhookKeys) -> String {
        format!("{} webhook signing secret(s)", keys.len())
    }
}

/// The token verification keys, from a JWKS endpoint.
pub struct Jwks(pub Arc<dyn KeySource>);

#[async_trait]
impl Load for Jwks {
    type Keys = VerificationKeys;
    async fn load(&self) -> Result<VerificationKeys, KeysUnavailable> {
        Ok(VerificationKeys::from_jwks(&self.0.fetch().await?)?)
    }
    fn describe(keys: &VerificationKeys) -> String {
        format!("{} token verification key(s)", keys.len())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// Least time between two reads triggered by signature mismatches.
    pub min_refresh_interval: Duration,
    /// Keys older than this are re-read before use.
    pub max_age: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            min_refresh_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(15 * 60),
        }
    }
}

/// Keys loaded by `L`, cached per container.
pub struct KeyCache<L: Load> {
    loader: L,
    policy: CachePolicy,
    state: Mutex<State<L::Keys>>,
}

/// The webhook's signing secrets.
pub type SecretCache = KeyCache<WebhookSecrets>;
/// The api's token verification keys (JWKS).
pub type JwksCache = KeyCache<Jwks>;

struct State<K> {
    keys: Option<(Arc<K>, Instant)>,
    last_read: Option<Instant>,
}

impl<K> State<K> {
    fn may_read(&self, now: Instant, interval: Duration) -> bool {
        self.last_read
            .is_none_or(|t| now.duration_since(t) >= interval)
    }
}

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, policy: CachePolicy) -> Self {
        Self::with_loader(WebhookSecrets(source), policy)
    }
}

impl<L: Load> KeyCache<L> {
    pub fn with_loader(loader: L, policy: CachePolicy) -> Self {
        Self {
            loader,
            policy,
            state: Mutex::new(State {
                keys: None,
                last_read: None,
            }),
        }
    }

    /// The current keys, read from the source on first use or when older than `max_age`.
    pub async fn current(&self) -> Result<Arc<L::Keys>, KeysUnavailable> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        match &state.keys {
            Some((keys, at)) if now.duration_since(*at) < self.policy.max_age => Ok(keys.clone()),
            // Expired keys are re-read; after a failed re-read, wait before trying again.
            Some((keys, _))
                if !state.may_read(
                    now,
                    self.policy.min_refresh_interval.min(self.policy.max_age),
                ) =>
            {
                Ok(keys.clone())
            }
            Some((keys, _)) => {
                let stale = keys.clone();
                match self.read(&mut state, now).await {
                    Ok(fresh) => Ok(fresh),
                    Err(e) => {
                        // Better to keep verifying with slightly old keys than to refuse every
                        // event while Secrets Manager has a bad minute.
                        tracing::warn!(error = %e, "key re-read failed; keeping cached keys");
                        Ok(stale)
                    }
                }
            }
            None => self.read(&mut state, now).await,
        }
    }

    /// Called after `seen` failed to verify a signature. Returns freshly read keys to retry with,
    /// or `None` when a read ran less than `min_refresh_interval` ago.
    pub async fn refresh_after_mismatch(
        &self,
        seen: &Arc<L::Keys>,
    ) -> Result<Option<Arc<L::Keys>>, KeysUnavailable> {
        let mut state = self.state.lock().await;
        if let Some((keys, _)) = &state.keys
            && !Arc::ptr_eq(keys, seen)
        {
            // Another request refreshed while we waited for the lock.
            return Ok(Some(keys.clone()));
        }
        let now = Instant::now();
        if !state.may_read(now, self.policy.min_refresh_interval) {
            return Ok(None);
        }
        self.read(&mut state, now).await.map(Some)
    }

    async fn read(
        &self,
        state: &mut State<L::Keys>,
        now: Instant,
    ) -> Result<Arc<L::Keys>, KeysUnavailable> {
        state.last_read = Some(now);
        let keys = Arc::new(self.loader.load().await?);
        tracing::info!(loaded = L::describe(&keys), "keys loaded");
        state.keys = Some((keys.clone(), now));
        Ok(keys)
    }
}
