//! The scheduled reconcile: on each EventBridge schedule event, `clerk-sync-ops reconcile` run
//! in Lambda, with the same library code ([`clerk_sync_ops::reconcile::run`]). The per-run
//! budget (`RECONCILE_SAMPLE`: N random table users checked by id, or `all`) and whether it
//! repairs (`RECONCILE_FIX`, off by default: report only) come from the environment; a manual
//! invocation may narrow them (`{"sample": 50}`, `{"fix": false}`), never widen `fix`. One EMF
//! document per run counts each drift class; one log line carries the summary.

pub mod measure;

use std::sync::Arc;

use clerk_sync::config::{ConfigError, Env, SyncConfig};
use clerk_sync::domain::event_log::Source;
use clerk_sync::ports::SecretSource;
use clerk_sync::telemetry::metrics::Metrics;
use clerk_sync_ops::clerk::ClerkClient;
use clerk_sync_ops::reconcile::{self, Options, Report};
use clerk_sync_ops::write::Writer;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// Configuration of the reconcile function.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// The users table, the event log and its retention: as the sync function's.
    pub store: SyncConfig,
    /// Clerk's Backend API base URL, including `/v1`.
    pub clerk_api_url: String,
    /// Secrets Manager id of the Clerk secret key (`sk_…`).
    pub clerk_secret_key_id: String,
    /// Table users checked by id per run; `None`: all of Clerk against all of the table.
    pub sample: Option<usize>,
    /// Repair what is found (the backfill's conditional write; absent users become tombstones).
    pub fix: bool,
}

impl ReconcileConfig {
    pub const USERS_TABLE: &'static str = SyncConfig::USERS_TABLE;
    pub const EVENT_LOG_TABLE: &'static str = SyncConfig::EVENT_LOG_TABLE;
    pub const RETENTION_DAYS: &'static str = SyncConfig::RETENTION_DAYS;
    pub const API_URL: &'static str = "CLERK_API_URL";
    pub const SECRET_KEY_ID: &'static str = "CLERK_SECRET_KEY_ID";
    pub const SAMPLE: &'static str = "RECONCILE_SAMPLE";
    pub const FIX: &'static str = "RECONCILE_FIX";
    pub const DEFAULT_SAMPLE: usize = 500;
    pub const DEFAULT_API_URL: &'static str = "https://api.clerk.com/v1";
    /// Backend API requests per second, as `clerk-sync-ops`' default `--rate`: well under a
    /// development instance's 10/s, so the run never starves the api's lazy sync.
    pub const RATE: f64 = 5.0;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    pub fn from<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let sample = match env.optional(Self::SAMPLE) {
            None => Some(Self::DEFAULT_SAMPLE),
            Some(v) => parse_sample(&Value::String(v)).map_err(|reason| ConfigError::Invalid {
                name: Self::SAMPLE,
                reason,
            })?,
        };
        Ok(Self {
            store: SyncConfig::from(env)?,
            clerk_api_url: env
                .optional(Self::API_URL)
                .unwrap_or_else(|| Self::DEFAULT_API_URL.to_owned()),
            clerk_secret_key_id: env.required(Self::SECRET_KEY_ID)?,
            sample,
            fix: env.flag(Self::FIX, false)?,
        })
    }
}

/// A budget: a positive number of users, or `all`.
fn parse_sample(value: &Value) -> Result<Option<usize>, String> {
    let n = match value {
        Value::String(s) if s.trim().eq_ignore_ascii_case("all") => return Ok(None),
        Value::String(s) => s.trim().parse::<usize>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    };
    n.filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| format!("{value} is not a positive number of users or \"all\""))
}

/// The run an invocation asks for: the configuration's, narrowed by the event. A schedule event
/// (`"detail-type": "Scheduled Event"`, empty `detail`) takes the configuration as it is; a
/// manual invocation's `sample` / `fix` (at the top level or in `detail`) override it, except
/// that `fix` cannot be turned on where the stack turned it off (the role may not write then).
pub fn options(config: &ReconcileConfig, event: &Value) -> Result<Options, String> {
    let field = |name: &str| {
        event
            .get("detail")
            .and_then(|d| d.get(name))
            .or_else(|| event.get(name))
            .filter(|v| !v.is_null())
    };
    let sample = match field("sample") {
        None => config.sample,
        Some(v) => parse_sample(v)?,
    };
    let fix = match field("fix") {
        None => config.fix,
        Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) if config.fix => true,
        Some(Value::Bool(true)) => {
            return Err("fix is off for this function (the stack's ReconcileFix parameter)".into());
        }
        Some(other) => return Err(format!("fix is {other}, not true/false")),
    };
    Ok(Options {
        sample,
        fix,
        progress: false,
        show: SHOWN_IDS,
    })
}

/// Ids per drift class in the run's log line.
pub const SHOWN_IDS: usize = 20;

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the invocation's event is not a reconcile request: {0}")]
    BadEvent(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
    #[error("{0} drifted users could not be repaired")]
    NotRepaired(u64),
}

/// Everything one run needs; built once per cold start.
pub struct Reconciler {
    pub config: ReconcileConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secret: Arc<dyn SecretSource>,
    pub metrics: Metrics,
}

impl Reconciler {
    pub fn from_config(config: ReconcileConfig, sdk: &aws_config::SdkConfig) -> Self {
        use clerk_sync::adapters::secrets_manager::SecretsManagerSource;
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let secret = Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            &config.clerk_secret_key_id,
        ));
        Self {
            config,
            dynamodb,
            secret,
            metrics: Metrics::lambda("reconcile"),
        }
    }

    /// The Clerk secret key, read on every run (a schedule runs rarely; a rotated key is used
    /// at once). Never logged.
    async fn clerk(&self) -> anyhow::Result<ClerkClient> {
        let key: SecretString = self
            .secret
            .fetch()
            .await
            .map_err(|e| anyhow::anyhow!(clerk_sync::telemetry::error_chain(&e)))
            .map_err(|e| e.context("reading the Clerk secret key"))?;
        if !key.expose_secret().trim().starts_with("sk_") {
            anyhow::bail!(
                "the Clerk secret key secret does not hold an sk_… key yet (docs/operations.md: connect Clerk)"
            );
        }
        let key = SecretString::from(key.expose_secret().trim().to_owned());
        ClerkClient::new(&self.config.clerk_api_url, key, ReconcileConfig::RATE)
    }

    /// One run: compare (and with `fix` repair), emit its metrics document, log its summary.
    pub async fn run(&self, event: &Value) -> Result<Value, RunError> {
        let options = options(&self.config, event).map_err(RunError::BadEvent)?;
        let clerk = self.clerk().await.map_err(RunError::Failed)?;
        let writer = self.writer_for_run();
        let result = reconcile::run(
            &clerk,
            &self.dynamodb,
            &self.config.store.users_table,
            &writer,
            &options,
        )
        .await;
        let mut document = self.metrics.document();
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                document.count(measure::RUN_FAILED, 1);
                document.emit();
                return Err(RunError::Failed(e));
            }
        };
        measure::run(&mut document, &report);
        document.emit();
        log(&report);
        match &report.fixed {
            Some(f) if f.failed > 0 => Err(RunError::NotRepaired(f.failed)),
            _ => Ok(summary(&report)),
        }
    }

    /// A writer under a fresh run id: each run's writes are its own in the event log.
    fn writer_for_run(&self) -> Writer {
        use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
        Writer::new(
            Arc::new(DynamoUserStore::new(
                self.dynamodb.clone(),
                &self.config.store.users_table,
            )),
            Arc::new(DynamoEventLog::new(
                self.dynamodb.clone(),
                &self.config.store.event_log_table,
            )),
            Source::Reconcile,
            Writer::new_run_id(),
            self.config.store.event_log_retention_days,
        )
    }
}

fn log(report: &Report) {
    let d = &report.drift;
    let classes = report.lines(SHOWN_IDS).join("; ");
    tracing::info!(
        missing = report.sampled.is_none().then_some(d.missing.len()),
        older = d.older.len(),
        absent_from_clerk = d.absent_from_clerk.len(),
        tombstoned_but_in_clerk = d.tombstoned_but_in_clerk.len(),
        repaired = report.fixed.as_ref().map(|f| f.written),
        not_repaired = report.fixed.as_ref().map(|f| f.failed),
        classes,
        "{}",
        report.summary()
    );
}

/// What the invocation answers (for a manual `aws lambda invoke`).
pub fn summary(report: &Report) -> Value {
    let d = &report.drift;
    json!({
        "summary": report.summary(),
        "sampled": report.sampled,
        "checked": measure::checked(report),
        "missing": report.sampled.is_none().then_some(d.missing.len()),
        "older": d.older.len(),
        "absent_from_clerk": d.absent_from_clerk.len(),
        "tombstoned_but_in_clerk": d.tombstoned_but_in_clerk.len(),
        "repaired": report.fixed.as_ref().map(|f| f.written),
        "not_repaired": report.fixed.as_ref().map(|f| f.failed),
    })
}

#[cfg(test)]
mod tests;
