//! CodeDeploy's pre-traffic hook: invokes the new version of each function with a self-check
//! event, judges the answers, and reports `Succeeded` or `Failed` for the lifecycle hook.
//!
//! The judging (which event each function gets, what a healthy answer is) is plain Rust with no
//! AWS calls; [`Hook`] carries it out through the real Lambda and CodeDeploy clients.

use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::sqs::SqsBatchResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

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

/// The webhook's route and the code it answers a forged signature with (functions/webhook).
pub const WEBHOOK_ROUTE: &str = "/webhooks/clerk";
pub const INVALID_SIGNATURE: &str = "invalid_signature";

/// One self-check: the event a function's new version is invoked with and how its answer is
/// judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A well-formed Clerk webhook with a forged Svix signature: a healthy webhook read its
    /// signing secret and refuses it with 401 `invalid_signature` (it queues nothing).
    Webhook,
    /// An empty SQS batch: applied with no failures, nothing written.
    Sync,
    /// `GET /health`: 200 when the table, the signing keys and the queue are reachable.
    Api,
}

/// What an invocation returned: Lambda's `FunctionError` (set when the function failed) and the
/// payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Sync => "sync",
            Self::Api => "api",
        }
    }

    /// The event to invoke the function with, `now_seconds` being the Unix time (the webhook
    /// refuses timestamps more than 5 minutes away before it looks at the signature).
    pub fn event(self, now_seconds: u64) -> Value {
        match self {
            Self::Webhook => {
                let body = json!({
                    "type": "user.updated",
                    "object": "event",
                    "timestamp": now_seconds * 1000,
                    "data": {"id": "user_deploycheck", "object": "user"},
                })
                .to_string();
                // Syntactically a v1 signature (base64 of 32 bytes), made with no secret at all.
                let forged = format!("v1,{}", STANDARD.encode([0u8; 32]));
                let headers = [
                    ("content-type", "application/json".to_owned()),
                    ("svix-id", format!("msg_deploycheck{now_seconds}")),
                    ("svix-timestamp", now_seconds.to_string()),
                    ("svix-signature", forged),
                    ("user-agent", "clerk-sync-deploy-check".to_owned()),
                ];
                http_event("POST", WEBHOOK_ROUTE, &headers, Some(body))
            }
            Self::Sync => json!({"Records": []}),
            Self::Api => http_event(
                "GET",
                "/health",
                &[("user-agent", "clerk-sync-deploy-check".to_owned())],
                None,
            ),
        }
    }

    /// Whether the answer is a healthy version's; `Err` says what was wrong.
    pub fn judge(self, invocation: &Invocation) -> Result<(), String> {
        if let Some(error) = &invocation.function_error {
            return Err(format!(
                "the function failed ({error}): {}",
                String::from_utf8_lossy(&invocation.payload)
            ));
        }
        match self {
            Self::Webhook => {
                let response = http_response(&invocation.payload)?;
                let code = response.error_code();
                match (response.status_code, code.as_deref()) {
                    (401, Some(INVALID_SIGNATURE)) => Ok(()),
                    (503, Some("secrets_unavailable")) => Err(
                        "the webhook cannot read its signing secret (secrets_unavailable): put the \
                         whsec_ value in the WebhookSecretArn secret (aws secretsmanager \
                         put-secret-value) before deploying a new version"
                            .to_owned(),
                    ),
                    (status, code) => Err(format!(
                        "a forged webhook was answered {status} {}, not 401 {INVALID_SIGNATURE}",
                        code.unwrap_or("(no error code)")
                    )),
                }
            }
            Self::Sync => {
                let response: SqsBatchResponse = serde_json::from_slice(&invocation.payload)
                    .map_err(|e| {
                        format!("the answer to an empty batch is not a batch response: {e}")
                    })?;
                if response.batch_item_failures.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "an empty batch was answered with {} item failures",
                        response.batch_item_failures.len()
                    ))
                }
            }
            Self::Api => {
                let response = http_response(&invocation.payload)?;
                if response.status_code == 200 {
                    Ok(())
                } else {
                    Err(format!(
                        "GET /health answered {}: {}",
                        response.status_code,
                        response.body_text()
                    ))
                }
            }
        }
    }
}

/// An API Gateway HTTP API (payload 2.0) event, as API Gateway invokes the function.
fn http_event(
    method: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<String>,
) -> Value {
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(format!("{method} {path}"));
    event.raw_path = Some(path.to_owned());
    event.raw_query_string = Some(String::new());
    for (name, value) in headers {
        event.headers.insert(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_str(value).expect("header-safe values"),
        );
    }
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = event.route_key.clone();
    context.stage = Some("$default".to_owned());
    context.request_id = Some("deploy-check".to_owned());
    let mut description = ApiGatewayV2httpRequestContextHttpDescription::default();
    description.method = method.parse().expect("a valid method");
    description.path = Some(path.to_owned());
    description.protocol = Some("HTTP/1.1".to_owned());
    description.source_ip = Some("127.0.0.1".to_owned());
    description.user_agent = Some("clerk-sync-deploy-check".to_owned());
    context.http = description;
    event.request_context = context;
    event.body = body;
    event.is_base64_encoded = false;
    serde_json::to_value(event).expect("events serialise")
}

/// The parts of an HTTP API (payload 2.0) response the checks read; whatever else the function
/// sets (headers, cookies) is not judged.
#[derive(Debug, Deserialize)]
struct HttpAnswer {
    #[serde(rename = "statusCode")]
    status_code: u16,
    #[serde(default)]
    body: Option<String>,
    #[serde(rename = "isBase64Encoded", default)]
    is_base64_encoded: bool,
}

impl HttpAnswer {
    fn body_text(&self) -> String {
        let body = self.body.as_deref().unwrap_or_default();
        if self.is_base64_encoded {
            STANDARD
                .decode(body)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        } else {
            body.to_owned()
        }
    }

    /// `error.code` of a `{"error":{"code","message"}}` body.
    fn error_code(&self) -> Option<String> {
        let body: Value = serde_json::from_str(&self.body_text()).ok()?;
        body["error"]["code"].as_str().map(str::to_owned)
    }
}

fn http_response(payload: &[u8]) -> Result<HttpAnswer, String> {
    serde_json::from_slice(payload).map_err(|e| {
        format!(
            "the answer is not an HTTP API response ({e}): {}",
            String::from_utf8_lossy(payload)
        )
    })
}

/// The verdict over every check: `Ok` when all passed, else each failure by function.
pub fn verdict(results: &[(Check, Result<(), String>)]) -> Result<(), Vec<String>> {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(check, result)| {
            result
                .as_ref()
                .err()
                .map(|why| format!("{}: {why}", check.name()))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:clerk-sync-dev-webhook";

    fn http_answer(status: i64, body: &str) -> Invocation {
        Invocation {
            function_error: None,
            payload:
                json!({"statusCode": status, "headers": {}, "body": body, "isBase64Encoded": false})
                    .to_string()
                    .into_bytes(),
        }
    }

    #[test]
    fn a_version_arn_splits_into_the_function_and_its_version_number() {
        let target = Target::parse(Check::Webhook, "V", &format!("{ARN}:17")).unwrap();
        assert_eq!(target.function, ARN);
        assert_eq!(target.version, "17");
    }

    #[test]
    fn an_alias_latest_or_unqualified_arn_is_not_a_version() {
        for arn in [
            ARN.to_owned(),
            format!("{ARN}:live"),
            format!("{ARN}:$LATEST"),
            format!("{ARN}:"),
            "clerk-sync-dev-webhook:3".to_owned(),
        ] {
            assert!(
                matches!(
                    Target::parse(Check::Webhook, "V", &arn),
                    Err(ConfigError::NotAVersion { .. })
                ),
                "{arn}"
            );
        }
    }

    #[test]
    fn the_config_names_the_missing_variable() {
        let err = Config::from_lookup(|name| (name != Config::SYNC).then(|| format!("{ARN}:1")))
            .unwrap_err();
        assert_eq!(err.to_string(), "SYNC_FUNCTION_VERSION is not set");
        let config = Config::from_lookup(|_| Some(format!("{ARN}:2"))).unwrap();
        let checks: Vec<Check> = config.targets.iter().map(|t| t.check).collect();
        assert_eq!(checks, [Check::Webhook, Check::Sync, Check::Api]);
    }

    #[test]
    fn the_hooks_event_is_what_codedeploy_sends() {
        let event: HookEvent = serde_json::from_value(json!({
            "DeploymentId": "d-ABCDEF123",
            "LifecycleEventHookExecutionId": "eyJlbmNyeXB0ZWREYXRhIjoi"
        }))
        .unwrap();
        assert_eq!(event.deployment_id, "d-ABCDEF123");
        assert_eq!(
            event.lifecycle_event_hook_execution_id,
            "eyJlbmNyeXB0ZWREYXRhIjoi"
        );
    }

    #[test]
    fn the_webhook_passes_only_by_refusing_the_forgery_as_an_invalid_signature() {
        let refused = r#"{"error":{"code":"invalid_signature","message":"signature mismatch"}}"#;
        assert_eq!(Check::Webhook.judge(&http_answer(401, refused)), Ok(()));
        let queued = http_answer(202, r#"{"status":"queued","id":"msg_deploycheck1"}"#);
        assert!(Check::Webhook.judge(&queued).unwrap_err().contains("202"));
        let stale = r#"{"error":{"code":"timestamp_out_of_tolerance","message":"old"}}"#;
        assert!(Check::Webhook.judge(&http_answer(401, stale)).is_err());
        let no_secret = r#"{"error":{"code":"secrets_unavailable","message":"x"}}"#;
        let why = Check::Webhook
            .judge(&http_answer(503, no_secret))
            .unwrap_err();
        assert!(why.contains("put-secret-value"), "{why}");
    }

    #[test]
    fn a_function_error_fails_any_check() {
        let crashed = Invocation {
            function_error: Some("Unhandled".to_owned()),
            payload: br#"{"errorType":"Runtime.ExitError"}"#.to_vec(),
        };
        for check in [Check::Webhook, Check::Sync, Check::Api] {
            assert!(check.judge(&crashed).unwrap_err().contains("Unhandled"));
        }
    }

    #[test]
    fn the_sync_passes_an_empty_batch_with_no_item_failures() {
        let answer = |body: &str| Invocation {
            function_error: None,
            payload: body.as_bytes().to_vec(),
        };
        assert_eq!(
            Check::Sync.judge(&answer(r#"{"batchItemFailures":[]}"#)),
            Ok(())
        );
        assert!(
            Check::Sync
                .judge(&answer(r#"{"batchItemFailures":[{"itemIdentifier":"x"}]}"#))
                .is_err()
        );
        assert!(Check::Sync.judge(&answer("null")).is_err());
        assert_eq!(Check::Sync.event(0), json!({"Records": []}));
    }

    #[test]
    fn the_api_passes_on_a_healthy_health_check_only() {
        assert_eq!(
            Check::Api.judge(&http_answer(200, r#"{"status":"ok"}"#)),
            Ok(())
        );
        let why = Check::Api
            .judge(&http_answer(503, r#"{"status":"degraded"}"#))
            .unwrap_err();
        assert!(why.contains("503") && why.contains("degraded"), "{why}");
        assert!(Check::Api.judge(&http_answer(404, "")).is_err());
    }

    #[test]
    fn the_verdict_fails_when_any_check_fails_and_names_it() {
        assert_eq!(
            verdict(&[(Check::Webhook, Ok(())), (Check::Api, Ok(()))]),
            Ok(())
        );
        assert_eq!(
            verdict(&[
                (Check::Webhook, Ok(())),
                (Check::Sync, Err("boom".to_owned())),
            ]),
            Err(vec!["sync: boom".to_owned()])
        );
    }
}
