//! The hook itself: invokes each new version through the real Lambda client and reports the
//! verdict to CodeDeploy.

use std::time::Duration;

use serde_json::Value;

use crate::check::{Invocation, verdict};
use crate::config::{Config, HookEvent, Target};

/// The hook: the functions to check and the clients that invoke them and report the verdict.
pub struct Hook {
    config: Config,
    lambda: aws_sdk_lambda::Client,
    codedeploy: aws_sdk_codedeploy::Client,
}

/// Reporting the verdict failed; the invocation fails so Lambda retries it (CodeDeploy invokes
/// hooks asynchronously) instead of CodeDeploy waiting an hour for a status.
#[derive(Debug, thiserror::Error)]
#[error("could not report the hook's status to CodeDeploy")]
pub struct ReportFailed(#[source] Box<dyn std::error::Error + Send + Sync>);

impl Hook {
    /// Clients built once per cold start. An invocation may take as long as the function's own
    /// timeout plus a cold start, longer than the shared 8 s SDK bound, and is not retried (a
    /// retry would send the webhook a second forged request); reporting keeps the shared bounds.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        let invoke = aws_sdk_lambda::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(25))
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self {
            config,
            lambda: aws_sdk_lambda::Client::from_conf(invoke),
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
        }
    }

    /// Runs every check concurrently and reports the verdict for `event`.
    pub async fn handle(&self, event: HookEvent) -> Result<(), ReportFailed> {
        let now = std::time::UNIX_EPOCH
            .elapsed()
            .expect("clock after 1970")
            .as_secs();
        let results = futures_util::future::join_all(self.config.targets.iter().map(|target| {
            let payload = target.check.event(now);
            async move {
                let result = match self.invoke(target, &payload).await {
                    Ok(invocation) => target.check.judge(&invocation),
                    Err(e) => Err(e),
                };
                match &result {
                    Ok(()) => tracing::info!(
                        function = %target.function, version = %target.version,
                        check = target.check.name(), "self-check passed"
                    ),
                    Err(why) => tracing::error!(
                        function = %target.function, version = %target.version,
                        check = target.check.name(), reason = %why, "self-check failed"
                    ),
                }
                (target.check, result)
            }
        }))
        .await;
        let status = match verdict(&results) {
            Ok(()) => aws_sdk_codedeploy::types::LifecycleEventStatus::Succeeded,
            Err(failures) => {
                tracing::error!(failures = ?failures, "the new versions failed their self-checks; failing the deployment");
                aws_sdk_codedeploy::types::LifecycleEventStatus::Failed
            }
        };
        self.codedeploy
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&event.deployment_id)
            .lifecycle_event_hook_execution_id(&event.lifecycle_event_hook_execution_id)
            .status(status.clone())
            .send()
            .await
            .map_err(|e| ReportFailed(Box::new(e)))?;
        tracing::info!(deployment_id = %event.deployment_id, status = status.as_str(), "reported");
        Ok(())
    }

    async fn invoke(&self, target: &Target, payload: &Value) -> Result<Invocation, String> {
        let output = self
            .lambda
            .invoke()
            .function_name(&target.function)
            .qualifier(&target.version)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "could not invoke version {}: {}",
                    target.version,
                    clerk_sync::telemetry::error_chain(&e)
                )
            })?;
        Ok(Invocation {
            function_error: output.function_error,
            payload: output.payload.map(|p| p.into_inner()).unwrap_or_default(),
        })
    }
}
