//! The hook's configuration: CodeDeploy's event, and the new version of each function to check.

use serde::Deserialize;

use crate::check::Check;

/// What CodeDeploy sends a lifecycle hook (Lambda deployments).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookEvent {
    #[serde(rename = "DeploymentId")]
    pub deployment_id: String,
    #[serde(rename = "LifecycleEventHookExecutionId")]
    pub lifecycle_event_hook_execution_id: String,
}

/// A variable is missing or is not a version ARN.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is not a function version ARN (arn:...:function:<name>:<version>): {value}")]
    NotAVersion { name: &'static str, value: String },
}

/// The function under check: its unqualified ARN and the version this deploy published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub check: Check,
    pub function: String,
    pub version: String,
}

impl Target {
    /// Splits a version ARN (`arn:aws:lambda:<region>:<account>:function:<name>:<version>`, what
    /// the template's `!Ref <Function>.Version` gives) into function and version. An alias or
    /// `$LATEST` is refused: the hook judges exactly the version about to get traffic.
    pub fn parse(check: Check, variable: &'static str, arn: &str) -> Result<Self, ConfigError> {
        let not_a_version = || ConfigError::NotAVersion {
            name: variable,
            value: arn.to_owned(),
        };
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "lambda", _, _, "function", name, version]
                if !name.is_empty()
                    && !version.is_empty()
                    && version.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(Self {
                    check,
                    function: arn[..arn.len() - version.len() - 1].to_owned(),
                    version: (*version).to_owned(),
                })
            }
            _ => Err(not_a_version()),
        }
    }
}

/// The three functions' new versions, read from the environment once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub targets: Vec<Target>,
}

impl Config {
    pub const WEBHOOK: &'static str = "WEBHOOK_FUNCTION_VERSION";
    pub const SYNC: &'static str = "SYNC_FUNCTION_VERSION";
    pub const API: &'static str = "API_FUNCTION_VERSION";

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let targets = [
            (Check::Webhook, Self::WEBHOOK),
            (Check::Sync, Self::SYNC),
            (Check::Api, Self::API),
        ]
        .into_iter()
        .map(|(check, name)| {
            let value = get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))?;
            Target::parse(check, name, value.trim())
        })
        .collect::<Result<_, _>>()?;
        Ok(Self { targets })
    }
}
