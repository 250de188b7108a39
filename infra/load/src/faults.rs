//! A fault-injecting proxy between a stack and the emulator: it forwards each AWS request as the
//! emulator's front does, except that, by a plan that can change mid-run, it answers some
//! DynamoDB and SQS requests with throttling or a 5xx as AWS does, resets connections before or
//! after forwarding (the request lost, or applied with its answer lost), refuses one user's writes
//! as invalid (a poison message), or goes dark for an outage window.
//!
//! It counts what it injected, and the `SendMessage` calls it answered with success: each is an
//! event queued that the pipeline must apply.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Body;
use axum::response::Response;
use devkit::emulator::front::{Buffered, forward, forwarding_client};
use http::{HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

/// What to inject; percentages are of the requests each applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// DynamoDB `ProvisionedThroughputExceededException`, SQS `ThrottlingException` (HTTP 400):
    /// the SDK backs off and retries.
    pub throttle_percent: u32,
    /// HTTP 500 `InternalFailure` / `InternalError`.
    pub server_error_percent: u32,
    /// The connection closed before forwarding: the request never reached the emulator.
    pub reset_before_percent: u32,
    /// Forwarded, then the connection closed before the answer: applied, but the caller cannot
    /// know.
    pub reset_after_percent: u32,
    /// Every request's connection closed unanswered (a full outage).
    pub outage: bool,
    /// DynamoDB writes of one user to one table refused as invalid (`ValidationException`), as
    /// a malformed item would be: retrying cannot help, the message is poison.
    pub refuse: Option<Refuse>,
}

/// Whose writes to refuse, and in which table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refuse {
    pub table: String,
    pub user_id: String,
}

impl Refuse {
    /// Whether a `PutItem` body is this user's write to this table (the SDK writes compact JSON).
    fn matches(&self, body: &[u8]) -> bool {
        let table = format!("\"TableName\":\"{}\"", self.table);
        contains(body, table.as_bytes()) && contains(body, self.user_id.as_bytes())
    }
}

impl Plan {
    /// The issue's mix: 5 % throughput errors, 2 % 5xx, 2 % resets before and 2 % after
    /// forwarding, for DynamoDB and SQS alike.
    pub fn mixed() -> Self {
        Self {
            throttle_percent: 5,
            server_error_percent: 2,
            reset_before_percent: 2,
            reset_after_percent: 2,
            ..Self::default()
        }
    }
}

/// The service a request is for, as far as faults go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    DynamoDb,
    Sqs,
    /// Secrets Manager and the rest: only an outage touches them.
    Other,
}

fn service_of(request: &Buffered) -> (Service, String) {
    let target = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let service = if target.starts_with("DynamoDB_") {
        Service::DynamoDb
    } else if devkit::emulator::front::backend_of(&request.headers)
        == devkit::emulator::front::Backend::Sqs
    {
        Service::Sqs
    } else {
        Service::Other
    };
    (service, target)
}

/// What the proxy did to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Throttled,
    ServerError,
    ResetBefore,
    ResetAfter,
    Outage,
    Refused,
}

impl Fault {
    fn name(self, service: Service) -> String {
        let service = match service {
            Service::DynamoDb => "dynamodb",
            Service::Sqs => "sqs",
            Service::Other => "other",
        };
        let what = match self {
            Self::Throttled => "throttled",
            Self::ServerError => "500",
            Self::ResetBefore => "reset before forwarding",
            Self::ResetAfter => "reset after forwarding",
            Self::Outage => "outage",
            Self::Refused => "refused as invalid",
        };
        format!("{service} {what}")
    }
}

/// The connection dropped on purpose (hyper closes a connection whose service fails).
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the fault proxy")
    }
}

impl std::error::Error for Reset {}

struct State {
    upstream: String,
    client: reqwest::Client,
    plan: watch::Receiver<Plan>,
    rng: Mutex<fastrand::Rng>,
    injected: Mutex<BTreeMap<String, u64>>,
    sends_answered_ok: AtomicU64,
}

impl State {
    fn roll(&self, percent: u32) -> bool {
        percent > 0 && self.rng.lock().expect("not poisoned").u32(0..100) < percent
    }

    fn count(&self, fault: Fault, service: Service) {
        *self
            .injected
            .lock()
            .expect("not poisoned")
            .entry(fault.name(service))
            .or_default() += 1;
    }

    /// The fault to inject into a request, if any.
    fn choose(&self, service: Service, target: &str, body: &[u8]) -> Option<Fault> {
        let plan = self.plan.borrow().clone();
        if plan.outage {
            return Some(Fault::Outage);
        }
        if service == Service::Other {
            return None;
        }
        if let Some(refuse) = &plan.refuse
            && service == Service::DynamoDb
            && target.ends_with(".PutItem")
            && refuse.matches(body)
        {
            return Some(Fault::Refused);
        }
        [
            (plan.throttle_percent, Fault::Throttled),
            (plan.server_error_percent, Fault::ServerError),
            (plan.reset_before_percent, Fault::ResetBefore),
            (plan.reset_after_percent, Fault::ResetAfter),
        ]
        .into_iter()
        .find(|(percent, _)| self.roll(*percent))
        .map(|(_, fault)| fault)
    }

    async fn handle(&self, request: Buffered) -> Result<Response, Reset> {
        let (service, target) = service_of(&request);
        let fault = self.choose(service, &target, &request.body);
        if let Some(fault) = fault {
            self.count(fault, service);
        }
        match fault {
            Some(Fault::Outage | Fault::ResetBefore) => return Err(Reset),
            Some(Fault::Throttled) => return Ok(aws_error(service, StatusCode::BAD_REQUEST, true)),
            Some(Fault::ServerError) => {
                return Ok(aws_error(service, StatusCode::INTERNAL_SERVER_ERROR, false));
            }
            Some(Fault::Refused) => return Ok(validation_error()),
            Some(Fault::ResetAfter) | None => {}
        }
        let response = forward(&self.client, &self.upstream, request)
            .await
            .map_err(|_| Reset)?;
        if fault == Some(Fault::ResetAfter) {
            return Err(Reset);
        }
        if target == "AmazonSQS.SendMessage" && response.status().is_success() {
            self.sends_answered_ok.fetch_add(1, Ordering::Relaxed);
        }
        Ok(response)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// An error answer in the service's JSON protocol.
fn aws_error(service: Service, status: StatusCode, throttling: bool) -> Response {
    let (kind, query_code) = match (service, throttling) {
        (Service::Sqs, true) => (
            "com.amazonaws.sqs#ThrottlingException",
            "ThrottlingException;Sender",
        ),
        (Service::Sqs, false) => ("com.amazonaws.sqs#InternalError", "InternalError;Receiver"),
        (_, true) => (
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "",
        ),
        (_, false) => ("com.amazon.coral.service#InternalFailure", ""),
    };
    let body = serde_json::json!({ "__type": kind, "message": "injected by the fault proxy" });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if !query_code.is_empty() {
        headers.insert("x-amzn-query-error", HeaderValue::from_static(query_code));
    }
    response
}

fn validation_error() -> Response {
    let body = serde_json::json!({
        "__type": "com.amazon.coral.validate#ValidationException",
        "message": "One or more parameter values were invalid (injected by the fault proxy)"
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// A running fault proxy; dropping it stops accepting connections.
pub struct FaultProxy {
    addr: SocketAddr,
    plan: watch::Sender<Plan>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy of `upstream` (the emulator's endpoint) on a free loopback port, injecting
    /// nothing until [`Self::set_plan`]; `seed` makes the faults repeatable.
    pub async fn start(upstream: &str, seed: u64) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fault proxy")?;
        let addr = listener.local_addr()?;
        let (plan, plan_rx) = watch::channel(Plan::default());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: forwarding_client(),
            plan: plan_rx,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            injected: Mutex::new(BTreeMap::new()),
            sends_answered_ok: AtomicU64::new(0),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors, say: wait rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move {
                            let request = Buffered::read(request.map(Body::new))
                                .await
                                .map_err(|_| Reset)?;
                            state.handle(request).await
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            plan,
            state,
            task,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects by `plan` from now on.
    pub fn set_plan(&self, plan: Plan) {
        self.plan.send_replace(plan);
    }

    /// Faults injected so far, by kind (`dynamodb throttled`, `sqs reset after forwarding`, …).
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state.injected.lock().expect("not poisoned").clone()
    }

    /// `SendMessage` calls answered with success: events the emulator queued and told of.
    pub fn sends_answered_ok(&self) -> u64 {
        self.state.sends_answered_ok.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_needle_is_found_in_a_body_and_an_empty_one_never_is() {
        assert!(contains(br#"{"id":{"S":"user_a1"}}"#, b"user_a1"));
        assert!(!contains(br#"{"id":{"S":"user_a1"}}"#, b"user_b2"));
        assert!(!contains(b"anything", b""));
    }

    #[test]
    fn a_refusal_matches_only_its_users_writes_to_its_table() {
        let refuse = Refuse {
            table: "users".into(),
            user_id: "user_a1".into(),
        };
        assert!(refuse.matches(br#"{"TableName":"users","Item":{"id":{"S":"user_a1"}}}"#));
        assert!(!refuse.matches(br#"{"TableName":"log","Item":{"user_id":{"S":"user_a1"}}}"#));
        assert!(!refuse.matches(br#"{"TableName":"users","Item":{"id":{"S":"user_b2"}}}"#));
    }

    #[test]
    fn throttling_answers_are_what_the_sdk_retries() {
        let r = aws_error(Service::DynamoDb, StatusCode::BAD_REQUEST, true);
        assert_eq!(r.status(), 400);
        let r = aws_error(Service::Sqs, StatusCode::BAD_REQUEST, true);
        assert_eq!(
            r.headers()["x-amzn-query-error"],
            "ThrottlingException;Sender"
        );
    }
}
