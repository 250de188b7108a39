//! The self-checks: which event each function's new version gets, and how its answer is judged.
//! Plain Rust, no AWS calls.

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::sqs::SqsBatchResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

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
