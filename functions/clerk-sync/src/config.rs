//! Typed configuration, read from the environment once per cold start.

use std::time::Duration;

use crate::domain::webhook::{DEFAULT_SYNCED_EVENT_TYPES, EventTypeFilter};
use crate::secret_cache::CachePolicy;

/// A variable is missing or does not parse. The message names the variable, never its value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Reads variables through a lookup function so tests need not touch the process environment.
pub struct Env<F>(F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn from_fn(lookup: F) -> Self {
        Env(lookup)
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// `true`/`on`/`1` or `false`/`off`/`0`; `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref() {
            None => Ok(default),
            Some("true" | "on" | "1") => Ok(true),
            Some("false" | "off" | "0") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                name,
                reason: format!("{other:?} is not true/false"),
            }),
        }
    }

    /// `EVENT_LOG_RETENTION_DAYS`: 1..=3650, 30 when unset.
    fn retention_days(&self) -> Result<u32, ConfigError> {
        let name = SyncConfig::RETENTION_DAYS;
        match self.optional(name) {
            None => Ok(SyncConfig::DEFAULT_RETENTION_DAYS),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| ConfigError::Invalid {
                    name,
                    reason: format!("{v:?} is not a number of days between 1 and 3650"),
                }),
        }
    }

    pub fn seconds(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => {
                v.parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|e| ConfigError::Invalid {
                        name,
                        reason: e.to_string(),
                    })
            }
        }
    }
}

/// Configuration of the webhook function.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Secrets Manager id or ARN of the secret holding the `whsec_` signing secret(s).
    pub secret_id: String,
    /// URL of the SQS queue events are put on.
    pub queue_url: String,
    /// Event types that are queued; the rest are acknowledged and dropped.
    pub synced_event_types: EventTypeFilter,
    pub secret_cache: CachePolicy,
}

impl WebhookConfig {
    pub const SECRET_ID: &'static str = "WEBHOOK_SECRET_ID";
    pub const QUEUE_URL: &'static str = "EVENTS_QUEUE_URL";
    pub const SYNCED_EVENT_TYPES: &'static str = "SYNCED_EVENT_TYPES";
    pub const REFRESH_INTERVAL: &'static str = "WEBHOOK_SECRET_MIN_REFRESH_SECONDS";
    pub const MAX_AGE: &'static str = "WEBHOOK_SECRET_MAX_AGE_SECONDS";

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    pub fn from<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let defaults = CachePolicy::default();
        let types = env
            .optional(Self::SYNCED_EVENT_TYPES)
            .unwrap_or_else(|| DEFAULT_SYNCED_EVENT_TYPES.to_owned());
        Ok(Self {
            secret_id: env.required(Self::SECRET_ID)?,
            queue_url: env.required(Self::QUEUE_URL)?,
            synced_event_types: EventTypeFilter::parse(&types).map_err(|reason| {
                ConfigError::Invalid {
                    name: Self::SYNCED_EVENT_TYPES,
                    reason,
                }
            })?,
            secret_cache: CachePolicy {
                min_refresh_interval: env
                    .seconds(Self::REFRESH_INTERVAL, defaults.min_refresh_interval)?,
                max_age: env.seconds(Self::MAX_AGE, defaults.max_age)?,
            },
        })
    }
}

/// Configuration of the sync function.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// DynamoDB table of user records.
    pub users_table: String,
    /// DynamoDB table of event-log records.
    pub event_log_table: String,
    /// Days an event-log record is kept (its TTL).
    pub event_log_retention_days: u32,
}

impl SyncConfig {
    pub const USERS_TABLE: &'static str = "USERS_TABLE";
    pub const EVENT_LOG_TABLE: &'static str = "EVENT_LOG_TABLE";
    pub const RETENTION_DAYS: &'static str = "EVENT_LOG_RETENTION_DAYS";
    pub const DEFAULT_RETENTION_DAYS: u32 = 30;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    pub fn from<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            users_table: env.required(Self::USERS_TABLE)?,
            event_log_table: env.required(Self::EVENT_LOG_TABLE)?,
            event_log_retention_days: env.retention_days()?,
        })
    }
}

/// Where the api gets token verification keys.
#[derive(Debug, Clone)]
pub enum KeysConfig {
    /// `CLERK_JWT_KEY`: a PEM public key; no network.
    Pem(String),
    /// `CLERK_JWKS_URL`: a JWKS endpoint, cached per container.
    Jwks(String),
}

/// Configuration of the api function.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub users_table: String,
    /// The event log, where every lazy sync leaves a record.
    pub event_log_table: String,
    pub event_log_retention_days: u32,
    /// The events queue, for the health check.
    pub queue_url: String,
    pub keys: KeysConfig,
    pub jwks_cache: CachePolicy,
    pub policy: crate::domain::auth::TokenPolicy,
    /// Clerk's Backend API base URL, including `/v1`.
    pub clerk_api_url: String,
    /// Secrets Manager id of the Clerk secret key (`sk_…`), for lazy sync.
    pub clerk_secret_key_id: Option<String>,
    /// Fetch a user missing from the table from Clerk on `/v1/users/me`.
    pub lazy_sync: bool,
    /// Bound on one Backend API call.
    pub clerk_api_timeout: Duration,
}

impl ApiConfig {
    pub const USERS_TABLE: &'static str = "USERS_TABLE";
    pub const EVENT_LOG_TABLE: &'static str = "EVENT_LOG_TABLE";
    pub const RETENTION_DAYS: &'static str = SyncConfig::RETENTION_DAYS;
    pub const QUEUE_URL: &'static str = "EVENTS_QUEUE_URL";
    pub const JWT_KEY: &'static str = "CLERK_JWT_KEY";
    pub const JWKS_URL: &'static str = "CLERK_JWKS_URL";
    pub const ISSUER: &'static str = "CLERK_ISSUER";
    pub const AUTHORIZED_PARTIES: &'static str = "CLERK_AUTHORIZED_PARTIES";
    pub const CLOCK_SKEW: &'static str = "CLERK_CLOCK_SKEW_SECONDS";
    pub const ADMIN_CLAIM: &'static str = "CLERK_ADMIN_CLAIM";
    pub const REFUSE_PENDING_SESSIONS: &'static str = "CLERK_REFUSE_PENDING_SESSIONS";
    pub const API_URL: &'static str = "CLERK_API_URL";
    pub const SECRET_KEY_ID: &'static str = "CLERK_SECRET_KEY_ID";
    pub const LAZY_SYNC: &'static str = "LAZY_SYNC";
    pub const JWKS_MIN_REFRESH: &'static str = "JWKS_MIN_REFRESH_SECONDS";
    pub const JWKS_MAX_AGE: &'static str = "JWKS_MAX_AGE_SECONDS";
    pub const DEFAULT_API_URL: &'static str = "https://api.clerk.com/v1";

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    pub fn from<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        use crate::domain::auth::{AdminClaim, TokenPolicy};
        let keys = match (env.optional(Self::JWT_KEY), env.optional(Self::JWKS_URL)) {
            (Some(pem), _) => KeysConfig::Pem(pem),
            (None, Some(url)) => KeysConfig::Jwks(url),
            (None, None) => {
                return Err(ConfigError::Invalid {
                    name: Self::JWKS_URL,
                    reason: "set CLERK_JWKS_URL or CLERK_JWT_KEY".into(),
                });
            }
        };
        let parties: Option<Vec<String>> = env.optional(Self::AUTHORIZED_PARTIES).map(|list| {
            super::domain::list_items(&list)
                .map(|p| p.trim_end_matches('/').to_owned())
                .collect()
        });
        let admin = env
            .optional(Self::ADMIN_CLAIM)
            .map(|spec| AdminClaim::parse(&spec))
            .transpose()
            .map_err(|reason| ConfigError::Invalid {
                name: Self::ADMIN_CLAIM,
                reason,
            })?;
        let lazy_sync = env.flag(Self::LAZY_SYNC, true)?;
        let skew = env.seconds(Self::CLOCK_SKEW, Duration::from_secs(5))?;
        if skew > Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                name: Self::CLOCK_SKEW,
                reason: "more than 60 s would outlive Clerk's 60 s tokens".into(),
            });
        }
        let defaults = CachePolicy {
            min_refresh_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(300),
        };
        Ok(Self {
            users_table: env.required(Self::USERS_TABLE)?,
            event_log_table: env.required(Self::EVENT_LOG_TABLE)?,
            event_log_retention_days: env.retention_days()?,
            queue_url: env.required(Self::QUEUE_URL)?,
            keys,
            jwks_cache: CachePolicy {
                min_refresh_interval: env
                    .seconds(Self::JWKS_MIN_REFRESH, defaults.min_refresh_interval)?,
                max_age: env.seconds(Self::JWKS_MAX_AGE, defaults.max_age)?,
            },
            policy: TokenPolicy {
                issuer: env
                    .optional(Self::ISSUER)
                    .map(|i| i.trim_end_matches('/').to_owned()),
                authorized_parties: parties.filter(|p| !p.is_empty()),
                leeway_seconds: skew.as_secs() as i64,
                admin,
                refuse_pending_sessions: env.flag(Self::REFUSE_PENDING_SESSIONS, false)?,
            },
            clerk_api_url: env
                .optional(Self::API_URL)
                .unwrap_or_else(|| Self::DEFAULT_API_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            clerk_secret_key_id: env.optional(Self::SECRET_KEY_ID),
            lazy_sync,
            clerk_api_timeout: Duration::from_secs(3),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_fn(move |k| map.get(k).cloned())
    }

    #[test]
    fn missing_variable_fails_fast_naming_it() {
        let err = WebhookConfig::from(&env(&[("EVENTS_QUEUE_URL", "http://q")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable WEBHOOK_SECRET_ID is required but not set"
        );
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
        let c = WebhookConfig::from(&env(&[
            ("EVENTS_QUEUE_URL", "http://q"),
            ("WEBHOOK_SECRET_ID", "s"),
        ]))
        .unwrap();
        assert!(c.synced_event_types.allows("user.deleted"));
        assert!(!c.synced_event_types.allows("session.created"));
        assert_eq!(c.secret_cache.min_refresh_interval, Duration::from_secs(30));
    }

    #[test]
    fn invalid_numbers_and_empty_type_lists_are_refused() {
        let base = [("EVENTS_QUEUE_URL", "http://q"), ("WEBHOOK_SECRET_ID", "s")];
        let bad_secs = [&base[..], &[("WEBHOOK_SECRET_MIN_REFRESH_SECONDS", "soon")]].concat();
        assert!(matches!(
            WebhookConfig::from(&env(&bad_secs)),
            Err(ConfigError::Invalid {
                name: "WEBHOOK_SECRET_MIN_REFRESH_SECONDS",
                ..
            })
        ));
        let no_types = [&base[..], &[("SYNCED_EVENT_TYPES", ",")]].concat();
        assert!(matches!(
            WebhookConfig::from(&env(&no_types)),
            Err(ConfigError::Invalid {
                name: "SYNCED_EVENT_TYPES",
                ..
            })
        ));
    }

    #[test]
    fn sync_config_reads_tables_and_refuses_a_nonsense_retention() {
        let base = [("USERS_TABLE", "users"), ("EVENT_LOG_TABLE", "log")];
        let c = SyncConfig::from(&env(&base)).unwrap();
        assert_eq!(c.event_log_retention_days, 30);
        assert_eq!(c.users_table, "users");
        let zero = [&base[..], &[("EVENT_LOG_RETENTION_DAYS", "0")]].concat();
        assert!(matches!(
            SyncConfig::from(&env(&zero)),
            Err(ConfigError::Invalid {
                name: "EVENT_LOG_RETENTION_DAYS",
                ..
            })
        ));
        assert!(matches!(
            SyncConfig::from(&env(&base[..1])),
            Err(ConfigError::Missing("EVENT_LOG_TABLE"))
        ));
    }

    #[test]
    fn api_config_needs_a_key_source_and_reads_the_token_policy() {
        let base = [
            ("USERS_TABLE", "users"),
            ("EVENT_LOG_TABLE", "log"),
            ("EVENTS_QUEUE_URL", "http://q"),
        ];
        assert!(matches!(
            ApiConfig::from(&env(&base)),
            Err(ConfigError::Invalid {
                name: "CLERK_JWKS_URL",
                ..
            })
        ));
        let full = [
            &base[..],
            &[
                (
                    "CLERK_JWKS_URL",
                    "https://clerk.example.com/.well-known/jwks.json",
                ),
                ("CLERK_ISSUER", "https://clerk.example.com/"),
                (
                    "CLERK_AUTHORIZED_PARTIES",
                    "https://app.example.com, http://localhost:3000",
                ),
                ("CLERK_ADMIN_CLAIM", "o.rol=admin"),
                ("LAZY_SYNC", "off"),
            ],
        ]
        .concat();
        let c = ApiConfig::from(&env(&full)).unwrap();
        assert!(matches!(c.keys, KeysConfig::Jwks(_)));
        assert_eq!(
            c.policy.issuer.as_deref(),
            Some("https://clerk.example.com")
        );
        assert_eq!(
            c.policy.authorized_parties,
            Some(vec![
                "https://app.example.com".to_owned(),
                "http://localhost:3000".to_owned()
            ])
        );
        assert!(c.policy.admin.is_some() && !c.lazy_sync);
        assert_eq!(c.policy.leeway_seconds, 5);
        assert!(!c.policy.refuse_pending_sessions, "opt-in: off by default");
        let bad_claim = [&full[..], &[("CLERK_ADMIN_CLAIM", "admin")]].concat();
        assert!(ApiConfig::from(&env(&bad_claim)).is_err());
    }

    #[test]
    fn refusing_pending_sessions_is_read_like_lazy_sync_and_a_typo_fails_naming_it() {
        let base = [
            ("USERS_TABLE", "users"),
            ("EVENT_LOG_TABLE", "log"),
            ("EVENTS_QUEUE_URL", "http://q"),
            (
                "CLERK_JWKS_URL",
                "https://clerk.example.com/.well-known/jwks.json",
            ),
        ];
        for (value, refused) in [("true", true), ("on", true), ("1", true), ("false", false)] {
            let vars = [&base[..], &[("CLERK_REFUSE_PENDING_SESSIONS", value)]].concat();
            let c = ApiConfig::from(&env(&vars)).unwrap();
            assert_eq!(c.policy.refuse_pending_sessions, refused, "{value}");
        }
        let typo = [&base[..], &[("CLERK_REFUSE_PENDING_SESSIONS", "yes")]].concat();
        assert!(matches!(
            ApiConfig::from(&env(&typo)),
            Err(ConfigError::Invalid {
                name: "CLERK_REFUSE_PENDING_SESSIONS",
                ..
            })
        ));
    }
}
