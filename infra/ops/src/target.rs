//! Which stack the commands work on, and how to reach it: a deployed one (`--env dev|staging|prod`:
//! its CloudFormation outputs, read with the SDK) or the local one `make local` is running (the
//! default: `.local/stack-outputs.json` and `.local/lambda.env`). Either way the Clerk secret key
//! is the stack's own secret, unless `CLERK_SECRET_KEY` is set; `CLERK_API_URL` picks the Clerk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::adapters::secrets_manager::SecretsManagerSource;
use clerk_sync::ports::SecretSource;
use secrecy::{ExposeSecret, SecretString};

use crate::clerk::ClerkClient;

/// Clerk's production Backend API.
pub const DEFAULT_CLERK_API_URL: &str = "https://api.clerk.com/v1";
/// The event log's retention when the stack does not say (the template's default).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// The output the local stack adds: its emulator's endpoint.
pub const LOCAL_ENDPOINT_OUTPUT: &str = "LocalAwsEndpointUrl";

/// How the target was chosen on the command line.
#[derive(Debug, Clone)]
pub enum Selector {
    /// The local stack, from the outputs file it wrote (its `lambda.env` sits next to it).
    Local { outputs: PathBuf },
    /// A deployed stack: the environment's section of `samconfig` names the stack and region.
    Env {
        env: String,
        stack: Option<String>,
        samconfig: PathBuf,
    },
}

/// The stack's resources, by the template's output keys.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub users_table: String,
    pub event_log_table: String,
    pub events_queue_url: String,
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: Option<String>,
    pub clerk_secret_key_arn: Option<String>,
}

impl Outputs {
    /// From `OutputKey → OutputValue`.
    pub fn from_map(map: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let need = |key: &str| {
            map.get(key)
                .cloned()
                .with_context(|| format!("the stack has no {key} output"))
        };
        Ok(Self {
            users_table: need("UsersTableName")?,
            event_log_table: need("EventLogTableName")?,
            events_queue_url: need("EventsQueueUrl")?,
            dead_letter_queue_url: need("DeadLetterQueueUrl")?,
            dead_letter_queue_arn: map.get("DeadLetterQueueArn").cloned(),
            clerk_secret_key_arn: map.get("ClerkSecretKeyArn").cloned(),
        })
    }
}

/// A resolved target: SDK configuration, resources, and where Clerk is.
#[derive(Clone)]
pub struct Target {
    /// `local`, or the environment and stack name, for messages.
    pub label: String,
    pub sdk: SdkConfig,
    pub outputs: Outputs,
    pub clerk_api_url: String,
    /// `CLERK_SECRET_KEY`, when set; otherwise the stack's secret is read on first use.
    pub clerk_secret_key: Option<SecretString>,
    pub retention_days: u32,
}

impl Target {
    pub fn users(&self) -> DynamoUserStore {
        DynamoUserStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.outputs.users_table,
        )
    }

    pub fn event_log(&self) -> DynamoEventLog {
        DynamoEventLog::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.outputs.event_log_table,
        )
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// The Clerk secret key: `CLERK_SECRET_KEY`, or the stack's `ClerkSecretKeyArn` secret.
    pub async fn clerk_secret_key(&self) -> anyhow::Result<SecretString> {
        if let Some(key) = &self.clerk_secret_key {
            return Ok(key.clone());
        }
        let arn = self
            .outputs
            .clerk_secret_key_arn
            .as_deref()
            .context("the stack has no ClerkSecretKeyArn output; set CLERK_SECRET_KEY")?;
        let source: Arc<dyn SecretSource> = Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&self.sdk),
            arn,
        ));
        let key = source
            .fetch()
            .await
            .map_err(|e| anyhow::anyhow!(clerk_sync::telemetry::error_chain(&e)))
            .context("reading the Clerk secret key from the stack's secret")?;
        if !key.expose_secret().trim().starts_with("sk_") {
            bail!(
                "the stack's Clerk secret key secret does not hold an sk_… key yet (docs/operations.md: connect Clerk)"
            );
        }
        Ok(key)
    }

    /// A Backend API client for this target's Clerk, at `per_second` requests a second.
    pub async fn clerk(&self, per_second: f64) -> anyhow::Result<ClerkClient> {
        ClerkClient::new(
            &self.clerk_api_url,
            self.clerk_secret_key().await?,
            per_second,
        )
    }
}

/// Resolves `selector` into a [`Target`]; `env` reads `CLERK_API_URL` and `CLERK_SECRET_KEY`.
pub async fn resolve(
    selector: &Selector,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Target> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let secret = var("CLERK_SECRET_KEY").map(|k| SecretString::from(k.trim().to_owned()));
    match selector {
        Selector::Local { outputs } => {
            let map = read_outputs_file(outputs)?;
            let lambda_env = outputs.with_file_name("lambda.env");
            let local = read_env_file(&lambda_env)?;
            let endpoint = map.get(LOCAL_ENDPOINT_OUTPUT).with_context(|| {
                format!(
                    "{} has no {LOCAL_ENDPOINT_OUTPUT}: not a local stack's outputs",
                    outputs.display()
                )
            })?;
            let get = |k: &str| {
                local
                    .get(k)
                    .cloned()
                    .with_context(|| format!("{} has no {k}", lambda_env.display()))
            };
            let sdk = local_sdk_config(
                endpoint,
                &get("AWS_REGION")?,
                &get("AWS_ACCESS_KEY_ID")?,
                &get("AWS_SECRET_ACCESS_KEY")?,
            )
            .await;
            let retention_days = local
                .get("EVENT_LOG_RETENTION_DAYS")
                .and_then(|d| d.parse().ok())
                .unwrap_or(DEFAULT_RETENTION_DAYS);
            Ok(Target {
                label: "local".into(),
                sdk,
                outputs: Outputs::from_map(&map)?,
                clerk_api_url: var("CLERK_API_URL")
                    .or_else(|| local.get("CLERK_API_URL").cloned())
                    .unwrap_or_else(|| DEFAULT_CLERK_API_URL.into()),
                clerk_secret_key: secret,
                retention_days,
            })
        }
        Selector::Env {
            env: name,
            stack,
            samconfig,
        } => {
            let section = samconfig_section(samconfig, name);
            let stack_name = stack
                .clone()
                .or_else(|| section.get("stack_name").cloned())
                .unwrap_or_else(|| format!("clerk-sync-{name}"));
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(3))
                        .operation_timeout(Duration::from_secs(30))
                        .build(),
                )
                .retry_config(RetryConfig::adaptive().with_max_attempts(8));
            if let Some(region) = section.get("region") {
                loader = loader.region(Region::new(region.clone()));
            }
            let sdk = loader.load().await;
            let map = stack_outputs(&sdk, &stack_name).await?;
            Ok(Target {
                label: format!("{name} (stack {stack_name})"),
                sdk,
                outputs: Outputs::from_map(&map)?,
                clerk_api_url: var("CLERK_API_URL").unwrap_or_else(|| DEFAULT_CLERK_API_URL.into()),
                clerk_secret_key: secret,
                retention_days: DEFAULT_RETENTION_DAYS,
            })
        }
    }
}

/// SDK configuration for the local emulator.
pub async fn local_sdk_config(
    endpoint: &str,
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "local-stack",
        ))
        .endpoint_url(endpoint)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}

/// A deployed stack's outputs, from CloudFormation's `DescribeStacks`.
async fn stack_outputs(sdk: &SdkConfig, stack: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let out = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(clerk_sync::telemetry::error_chain(&e)))
        .with_context(|| format!("CloudFormation DescribeStacks {stack}"))?;
    let stack = out
        .stacks()
        .first()
        .with_context(|| format!("no stack named {stack}"))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// The outputs file `make local` writes, as `sam list stack-outputs --output json` prints.
pub fn read_outputs_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        output_key: String,
        output_value: String,
    }
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (is `make local` running? Or pass --env dev|staging|prod)",
            path.display()
        )
    })?;
    let outputs: Vec<Output> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(outputs
        .into_iter()
        .map(|o| (o.output_key, o.output_value))
        .collect())
}

/// `KEY='value'` lines, as the local stack writes `lambda.env`.
pub fn read_env_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (is `make local` running?)", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect())
}

/// `key = "value"` pairs of `[<env>.global.parameters]` in a samconfig.toml (`default` for `dev`
/// when there is no `dev` section); empty when the file or section is missing.
pub fn samconfig_section(path: &Path, env: &str) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let section = |name: &str| {
        let header = format!("[{name}.global.parameters]");
        let mut found = BTreeMap::new();
        let mut inside = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                inside = line == header;
                continue;
            }
            if inside && let Some((k, v)) = line.split_once('=') {
                found.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
        found
    };
    let found = section(env);
    if found.is_empty() && env == "dev" {
        section("default")
    } else {
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_section_of_samconfig_names_the_stack_and_region() {
        let path = devkit::workspace_root().join("samconfig.toml");
        let prod = samconfig_section(&path, "prod");
        assert_eq!(prod["stack_name"], "clerk-sync-prod");
        assert_eq!(prod["region"], "us-east-1");
        assert!(samconfig_section(&path, "nowhere").is_empty());
        assert!(samconfig_section(Path::new("/nonexistent"), "prod").is_empty());
    }

    #[test]
    fn outputs_name_every_resource_the_commands_use_or_say_which_is_missing() {
        let mut map: BTreeMap<String, String> = [
            ("UsersTableName", "u"),
            ("EventLogTableName", "l"),
            ("EventsQueueUrl", "q"),
            ("DeadLetterQueueUrl", "d"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let outputs = Outputs::from_map(&map).unwrap();
        assert_eq!(outputs.users_table, "u");
        assert!(outputs.clerk_secret_key_arn.is_none());
        map.remove("EventsQueueUrl");
        let e = Outputs::from_map(&map).unwrap_err();
        assert!(e.to_string().contains("EventsQueueUrl"), "{e}");
    }
}
