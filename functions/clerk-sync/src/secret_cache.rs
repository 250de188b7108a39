//! Per-container cache of the webhook signing keys, with bounded refreshes.
//!
//! Keys are read from the [`SecretSource`] on first use and kept. A signature that matches none of
//! them may mean the secret was rotated, so the caller may ask for a refresh; refreshes are
//! single-flight and at most one per `min_refresh_interval`, so a flood of forgeries costs at most
//! one read per interval. Keys older than `max_age` are re-read on the next request so that a
//! retired secret stops being accepted without a redeploy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::domain::webhook::{SecretFormatError, WebhookKeys};
use crate::ports::{DependencyError, SecretSource};

/// Why no keys could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysUnavailable {
    #[error(transparent)]
    Source(#[from] DependencyError),
    #[error("the webhook secret value is malformed: {0}")]
    Malformed(#[from] SecretFormatError),
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

pub struct SecretCache {
    source: Arc<dyn SecretSource>,
    policy: CachePolicy,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: Option<(Arc<WebhookKeys>, Instant)>,
    last_read: Option<Instant>,
}

impl State {
    fn may_read(&self, now: Instant, interval: Duration) -> bool {
        self.last_read
            .is_none_or(|t| now.duration_since(t) >= interval)
    }
}

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, policy: CachePolicy) -> Self {
        Self {
            source,
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// The current keys, read from the source on first use or when older than `max_age`.
    pub async fn current(&self) -> Result<Arc<WebhookKeys>, KeysUnavailable> {
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
                        tracing::warn!(error = %e, "webhook secret re-read failed; keeping cached keys");
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
        seen: &Arc<WebhookKeys>,
    ) -> Result<Option<Arc<WebhookKeys>>, KeysUnavailable> {
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
        state: &mut State,
        now: Instant,
    ) -> Result<Arc<WebhookKeys>, KeysUnavailable> {
        state.last_read = Some(now);
        let value = self.source.fetch().await?;
        let keys = Arc::new(WebhookKeys::parse(&value)?);
        tracing::info!(secrets = keys.len(), "webhook signing keys loaded");
        state.keys = Some((keys.clone(), now));
        Ok(keys)
    }
}
