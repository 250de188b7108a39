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
        let retention = match env.optional(Self::RETENTION_DAYS) {
            None => Self::DEFAULT_RETENTION_DAYS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| ConfigError::Invalid {
                    name: Self::RETENTION_DAYS,
                    reason: format!("{v:?} is not a number of days between 1 and 3650"),
                })?,
        };
        Ok(Self {
            users_table: env.required(Self::USERS_TABLE)?,
            event_log_table: env.required(Self::EVENT_LOG_TABLE)?,
            event_log_retention_days: retention,
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
}
