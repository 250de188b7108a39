//! Per-container caches of keys (webhook signing secrets, token verification keys, the Clerk
//! secret key), with bounded reads.
//!
//! Keys are loaded on first use and kept. Every read of the source — the first one, a re-read
//! after a failure, a refresh after a mismatch, a re-read of expired keys — is single-flight and
//! at most one per `min_refresh_interval`:
//!
//! - **Nothing cached yet** (placeholder or malformed secret, source down at cold start): a failed
//!   read is remembered, and until the interval has passed every request is answered with that
//!   failure ([`KeysUnavailable::Remembered`]) without touching the source, so a flood of requests
//!   costs one read per interval and no request waits on a source known to be failing.
//! - **A mismatch** (a signature matches none of the keys: they may have been rotated): the caller
//!   may ask for a refresh, at most one read per interval, so forgeries cannot hammer the source.
//! - **Keys older than `max_age`** are re-read on the next request so that retired keys stop being
//!   accepted without a redeploy; if that re-read fails the old keys are kept until the next one.
//!
//! A failed read is logged once, with its cause chain; answers that repeat it carry only its
//! top-level message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::adapters::svix::WebhookKeys;
use crate::domain::auth::{KeyFormatError, VerificationKeys};
use crate::domain::webhook::SecretFormatError;
use crate::ports::{DependencyError, KeySource, SecretSource};
use crate::telemetry::error_chain;

/// Why one read of the keys failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Source(#[from] DependencyError),
    #[error("the webhook secret value is malformed: {0}")]
    Malformed(#[from] SecretFormatError),
    #[error(transparent)]
    MalformedKeys(#[from] KeyFormatError),
    /// The value read is not a key of the expected kind (e.g. a placeholder left at deploy time).
    #[error("{0}")]
    Unusable(&'static str),
}

/// Why no keys could be had. Cheap to clone: the failure is shared, not copied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeysUnavailable {
    /// The read this request made (or waited for) failed.
    #[error(transparent)]
    Failed(Arc<LoadError>),
    /// The last read failed less than `min_refresh_interval` ago and the source was not read
    /// again: this is that failure. Its cause chain was logged when it happened, so it is not
    /// repeated here (no `source`).
    #[error(
        "the last read failed {ago:.0?} ago and is not retried for another {retry_in:.0?}: {last}"
    )]
    Remembered {
        last: Arc<LoadError>,
        ago: Duration,
        retry_in: Duration,
    },
}

impl KeysUnavailable {
    /// The read failure behind this answer, fresh or remembered.
    pub fn cause(&self) -> &Arc<LoadError> {
        match self {
            Self::Failed(cause) | Self::Remembered { last: cause, .. } => cause,
        }
    }
}

/// Loads one generation of keys.
#[async_trait]
pub trait Load: Send + Sync {
    type Keys: Send + Sync + 'static;
    async fn load(&self) -> Result<Self::Keys, LoadError>;
    /// What was loaded, for the log line (never key material).
    fn describe(keys: &Self::Keys) -> String;
}

/// The webhook signing secrets, from Secrets Manager.
pub struct WebhookSecrets(pub Arc<dyn SecretSource>);

#[async_trait]
impl Load for WebhookSecrets {
    type Keys = WebhookKeys;
    async fn load(&self) -> Result<WebhookKeys, LoadError> {
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
    async fn load(&self) -> Result<VerificationKeys, LoadError> {
        Ok(VerificationKeys::from_jwks(&self.0.fetch().await?)?)
    }
    fn describe(keys: &VerificationKeys) -> String {
        format!("{} token verification key(s)", keys.len())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// Least time between two reads of the source, except the re-read of expired keys (bounded by
    /// `max_age` when that is shorter).
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
    /// Why the last read failed; `None` once a read succeeds.
    last_failure: Option<Arc<LoadError>>,
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
                last_failure: None,
            }),
        }
    }

    /// The current keys, read from the source on first use or when older than `max_age`. While
    /// nothing is cached and the last read failed less than `min_refresh_interval` ago, that
    /// failure is the answer.
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
                // Better to keep verifying with slightly old keys than to refuse every event
                // while Secrets Manager has a bad minute (the failure is logged by `read`).
                Ok(self.read(&mut state, now).await.unwrap_or(stale))
            }
            None => match &state.last_failure {
                Some(last) if !state.may_read(now, self.policy.min_refresh_interval) => {
                    let ago = state
                        .last_read
                        .map_or(Duration::ZERO, |t| now.duration_since(t));
                    let retry_in = self.policy.min_refresh_interval.saturating_sub(ago);
                    tracing::debug!(
                        reason = %last,
                        retry_in_ms = retry_in.as_millis() as u64,
                        "no keys: answering with the last read failure"
                    );
                    Err(KeysUnavailable::Remembered {
                        last: last.clone(),
                        ago,
                        retry_in,
                    })
                }
                _ => self.read(&mut state, now).await,
            },
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
        match self.loader.load().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                tracing::info!(loaded = L::describe(&keys), "keys loaded");
                state.keys = Some((keys.clone(), now));
                state.last_failure = None;
                Ok(keys)
            }
            Err(e) => {
                // The one log line with the whole cause chain; answers that repeat this failure
                // until the next read log only at debug.
                tracing::warn!(
                    error = %error_chain(&e),
                    cached_keys_kept = state.keys.is_some(),
                    next_read_in_ms = self.policy.min_refresh_interval.as_millis() as u64,
                    "key read failed"
                );
                let e = Arc::new(e);
                state.last_failure = Some(e.clone());
                Err(KeysUnavailable::Failed(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// A source that counts its reads and fails (with a malformed secret) while `failing` is set.
    /// Each successful read yields its read number.
    #[derive(Default)]
    struct Fake {
        reads: AtomicUsize,
        failing: AtomicBool,
        delay: Duration,
    }

    struct Counted(Arc<Fake>);

    #[async_trait]
    impl Load for Counted {
        type Keys = usize;
        async fn load(&self) -> Result<usize, LoadError> {
            let n = self.0.reads.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.0.delay).await;
            if self.0.failing.load(Ordering::SeqCst) {
                return Err(SecretFormatError::Empty.into());
            }
            Ok(n)
        }
        fn describe(n: &usize) -> String {
            format!("generation {n}")
        }
    }

    fn failing(delay: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            failing: AtomicBool::new(true),
            delay,
            ..Fake::default()
        })
    }

    fn cache(fake: &Arc<Fake>, min_refresh_interval: Duration) -> KeyCache<Counted> {
        KeyCache::with_loader(
            Counted(fake.clone()),
            CachePolicy {
                min_refresh_interval,
                max_age: Duration::from_secs(3600),
            },
        )
    }

    fn reads(fake: &Fake) -> usize {
        fake.reads.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn an_empty_cache_reads_a_failing_source_once_per_interval_and_repeats_the_failure() {
        let fake = failing(Duration::ZERO);
        let cache = cache(&fake, Duration::from_secs(3600));

        let first = cache.current().await.unwrap_err();
        assert!(matches!(first, KeysUnavailable::Failed(_)), "{first:?}");
        assert_eq!(reads(&fake), 1);

        for _ in 0..100 {
            let again = cache.current().await.unwrap_err();
            let KeysUnavailable::Remembered { last, retry_in, .. } = &again else {
                panic!("expected the remembered failure, got {again:?}");
            };
            assert!(Arc::ptr_eq(last, first.cause()), "the same failure");
            assert!(matches!(
                **last,
                LoadError::Malformed(SecretFormatError::Empty)
            ));
            assert!(*retry_in > Duration::ZERO && *retry_in <= Duration::from_secs(3600));
            assert!(
                again.to_string().contains(&first.to_string()),
                "{again} names the failure"
            );
            assert!(
                std::error::Error::source(&again).is_none(),
                "the chain was logged once, not per answer"
            );
        }
        assert_eq!(reads(&fake), 1, "no read between two intervals");
    }

    #[tokio::test]
    async fn an_empty_cache_reads_the_source_again_once_the_interval_has_passed() {
        let fake = failing(Duration::ZERO);
        let interval = Duration::from_millis(50);
        let cache = cache(&fake, interval);
        cache.current().await.unwrap_err();
        assert_eq!(reads(&fake), 1);

        tokio::time::sleep(interval + Duration::from_millis(10)).await;
        let fresh = cache.current().await.unwrap_err();

        assert!(matches!(fresh, KeysUnavailable::Failed(_)), "{fresh:?}");
        assert_eq!(reads(&fake), 2);
    }

    #[tokio::test]
    async fn a_read_that_succeeds_after_a_failure_fills_the_cache() {
        let fake = failing(Duration::ZERO);
        let interval = Duration::from_millis(50);
        let cache = cache(&fake, interval);
        cache.current().await.unwrap_err();

        fake.failing.store(false, Ordering::SeqCst);
        tokio::time::sleep(interval + Duration::from_millis(10)).await;
        let keys = cache.current().await.unwrap();

        assert_eq!(*keys, 2, "the second read's keys");
        for _ in 0..10 {
            assert!(Arc::ptr_eq(&cache.current().await.unwrap(), &keys));
        }
        assert_eq!(reads(&fake), 2, "cached, not read again");
    }

    #[tokio::test]
    async fn concurrent_requests_on_an_empty_cache_share_one_failed_read() {
        let fake = failing(Duration::from_millis(50));
        let cache = Arc::new(cache(&fake, Duration::from_secs(3600)));
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let cache = cache.clone();
            requests.spawn(async move { cache.current().await.unwrap_err() });
        }
        let answers = requests.join_all().await;

        assert_eq!(reads(&fake), 1);
        let fresh = answers
            .iter()
            .filter(|e| matches!(e, KeysUnavailable::Failed(_)))
            .count();
        assert_eq!(fresh, 1, "one request read, the others got its failure");
        assert!(
            answers
                .iter()
                .all(|e| Arc::ptr_eq(e.cause(), answers[0].cause()))
        );
    }
}
