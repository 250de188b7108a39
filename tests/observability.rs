//! A scenario through the local stack with known counts, every log line and metrics document
//! captured: the EMF documents parse and count what happened, sync lag is reported, every line
//! of the functions carries its invocation's ids, and no line holds a secret, a token, a
//! signature or the scenario users' personal data.
//!
//! Its own test binary: it installs the process's global log subscriber, with the production
//! JSON line format (`clerk_sync::telemetry::json_layer`).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devkit::resources::Names;
use devkit::signing::{DEV_WEBHOOK_SECRET, new_svix_id, now, sign};
use local_stack::{ClerkOptions, Stack, StackOptions};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Every log line, as the functions write them in Lambda.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install() -> Self {
        let captured = Self::default();
        let writer = captured.clone();
        tracing_subscriber::registry()
            // The functions at debug: what an operator who turns the level up would see.
            .with(tracing_subscriber::EnvFilter::new(
                "info,webhook=debug,sync=debug,api=debug,clerk_sync=debug",
            ))
            .with(clerk_sync::telemetry::json_layer(move || writer.clone()))
            .init();
        captured
    }

    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .expect("log lines are UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

const ALICE: &str = "user_2ScenarioAlice00000000000";
const OLIVER: &str = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa"; // the local Clerk's fixture user
const FORGED_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Alice at `updated_at`, with personal data the logs must never show.
fn alice(event_type: &str, updated_at: i64) -> String {
    let mut event: Value = serde_json::from_str(&devkit::fixture("user.updated")).unwrap();
    event["type"] = json!(event_type);
    let data = &mut event["data"];
    data["id"] = json!(ALICE);
    data["first_name"] = json!("Zephyrine");
    data["last_name"] = json!("Quillfeather");
    data["username"] = json!("zquill");
    data["email_addresses"][0]["email_address"] = json!("zephyrine.quill@example.test");
    data["private_metadata"] = json!({"plan": "pm-canary-7781"});
    data["unsafe_metadata"] = json!({"note": "um-canary-9924"});
    data["public_metadata"] = json!({});
    data["updated_at"] = json!(updated_at);
    event.to_string()
}

/// Every string under `value` (for the metadata's leaves).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// What no line may contain: of a user event's body, the emails, names and metadata values.
fn personal_data(body: &str) -> Vec<String> {
    let event: Value = serde_json::from_str(body).unwrap();
    let data = &event["data"];
    let mut out = Vec::new();
    for address in data["email_addresses"].as_array().into_iter().flatten() {
        strings(&address["email_address"], &mut out);
    }
    for field in ["first_name", "last_name", "username"] {
        strings(&data[field], &mut out);
    }
    strings(&data["private_metadata"], &mut out);
    strings(&data["unsafe_metadata"], &mut out);
    out.retain(|s| s.len() >= 4);
    out
}

struct Scenario {
    stack: Stack,
    sdk: aws_config::SdkConfig,
    http: reqwest::Client,
    /// Secrets, tokens and signatures sent; none may be logged.
    secrets: Vec<String>,
}

impl Scenario {
    /// Posts a webhook signed with `secret` under a new svix id; the status and the svix id.
    async fn post(&mut self, secret: &str, body: &str) -> (u16, String) {
        let svix_id = new_svix_id();
        let headers = sign(secret, &svix_id, now(), body);
        let signature = headers["svix-signature"].to_str().unwrap().to_owned();
        self.secrets.push(signature.clone());
        self.secrets.extend(
            signature
                .split(' ')
                .filter_map(|s| s.split_once(','))
                .map(|(_, s)| s.to_owned()),
        );
        let response = self
            .http
            .post(format!("{}/webhooks/clerk", self.stack.base_url()))
            .headers(headers)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), svix_id)
    }

    /// `GET path` with `authorization` (none when `None`); the status.
    async fn get(&mut self, path: &str, authorization: Option<String>) -> u16 {
        let mut request = self.http.get(format!("{}{path}", self.stack.base_url()));
        if let Some(value) = authorization {
            self.secrets.push(value.clone());
            if let Some(token) = value.strip_prefix("Bearer ") {
                self.secrets.push(token.to_owned());
                self.secrets
                    .extend(token.rsplit('.').next().map(str::to_owned));
            }
            request = request.header("authorization", value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    fn token(&self, user_id: &str) -> String {
        let keys = &self.stack.local_clerk.as_ref().expect("local Clerk").keys;
        format!("Bearer {}", keys.mint(user_id))
    }

    /// Waits until the event log records `svix_id` with an outcome; returns it.
    async fn outcome(&self, svix_id: &str) -> String {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.sdk);
        let start = Instant::now();
        loop {
            let item = dynamodb
                .get_item()
                .table_name(&self.stack.resources.names.event_log_table)
                .key(
                    "svix_id",
                    aws_sdk_dynamodb::types::AttributeValue::S(svix_id.to_owned()),
                )
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            if let Some(outcome) = item.item().and_then(|i| i.get("outcome")) {
                return outcome.as_s().unwrap().clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{svix_id} was never processed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The sum of `metric` over the documents of `function`.
fn total(documents: &[Value], function: &str, metric: &str) -> f64 {
    documents
        .iter()
        .filter(|d| d["Function"] == function)
        .filter_map(|d| match &d[metric] {
            Value::Number(n) => n.as_f64(),
            Value::Array(values) => Some(values.iter().filter_map(Value::as_f64).sum()),
            _ => None,
        })
        .sum()
}

/// The sum of `metric` over the documents of `function` whose `dimension` is `value`.
fn total_by(
    documents: &[Value],
    function: &str,
    metric: &str,
    dimension: &str,
    value: &str,
) -> f64 {
    let matching: Vec<Value> = documents
        .iter()
        .filter(|d| d[dimension] == value)
        .cloned()
        .collect();
    total(&matching, function, metric)
}

/// Every metric a document's directives name is a number or numbers in it, and every dimension
/// a directive names is a string in it.
fn assert_well_formed(document: &Value) {
    let directives = document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .unwrap_or_else(|| panic!("not an EMF document: {document}"));
    assert!(document["_aws"]["Timestamp"].is_i64(), "{document}");
    for directive in directives {
        assert_eq!(directive["Namespace"], "ClerkSync");
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                assert!(
                    document[key.as_str().unwrap()].is_string(),
                    "dimension {key} missing: {document}"
                );
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let value = &document[metric["Name"].as_str().unwrap()];
            assert!(
                value.is_number()
                    || value
                        .as_array()
                        .is_some_and(|v| v.iter().all(Value::is_number)),
                "metric {metric} has no value: {document}"
            );
        }
    }
}

#[tokio::test]
async fn a_scenario_counts_what_happened_correlates_every_line_and_logs_nothing_secret() {
    let captured = Captured::install();
    let metrics_file = std::env::temp_dir().join(format!("metrics-{}.jsonl", new_svix_id()));
    let stack = Stack::start(StackOptions {
        port: 0,
        webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
        names: Names::unique("obs"),
        sync: true,
        clerk: ClerkOptions::default(),
        local_clerk: Default::default(),
        metrics_file: Some(metrics_file.clone()),
        aws_endpoint: None,
        sync_pollers: devkit::poller::DEFAULT_POLLERS,
    })
    .await
    .expect("local stack starts");
    let sdk = devkit::emulator::sdk_config_for(stack.endpoint()).await;
    let mut s = Scenario {
        stack,
        sdk,
        http: devkit::http_client(),
        secrets: vec![
            DEV_WEBHOOK_SECRET.to_owned(),
            DEV_WEBHOOK_SECRET.trim_start_matches("whsec_").to_owned(),
            FORGED_SECRET.trim_start_matches("whsec_").to_owned(),
        ],
    };
    let t = now() * 1000;

    // The webhook: 5 queued (2 applied, 1 stale, 1 duplicate, 1 poison), 1 forged, 1 ignored.
    let (status, created) = s.post(DEV_WEBHOOK_SECRET, &alice("user.created", t)).await;
    assert_eq!(status, 202);
    assert_eq!(s.outcome(&created).await, "applied");
    let (status, updated) = s
        .post(DEV_WEBHOOK_SECRET, &alice("user.updated", t + 2000))
        .await;
    assert_eq!(status, 202);
    assert_eq!(s.outcome(&updated).await, "applied");
    let (status, older) = s
        .post(DEV_WEBHOOK_SECRET, &alice("user.updated", t + 1000))
        .await;
    assert_eq!(status, 202);
    assert_eq!(s.outcome(&older).await, "stale");
    let (status, again) = s
        .post(DEV_WEBHOOK_SECRET, &alice("user.updated", t + 2000))
        .await;
    assert_eq!(status, 202);
    assert_eq!(s.outcome(&again).await, "duplicate");
    let (status, _) = s
        .post(FORGED_SECRET, &alice("user.updated", t + 3000))
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .post(DEV_WEBHOOK_SECRET, &devkit::fixture("session.created"))
        .await;
    assert_eq!(status, 200);
    let poison = json!({"type": "user.updated", "object": "event", "data": {"object": "user"}});
    let (status, poisoned) = s.post(DEV_WEBHOOK_SECRET, &poison.to_string()).await;
    assert_eq!(status, 202, "the webhook queues what Clerk signed");
    assert_eq!(s.outcome(&poisoned).await, "failed");

    // The api: 5 requests, 2 token refusals, 1 lazy sync.
    let alice_token = s.token(ALICE);
    assert_eq!(s.get("/v1/users/me", Some(alice_token)).await, 200);
    assert_eq!(s.get("/v1/users/me", None).await, 401);
    assert_eq!(
        s.get("/v1/users/me", Some("Bearer not.a-token".into()))
            .await,
        401
    );
    let oliver_token = s.token(OLIVER);
    assert_eq!(s.get("/v1/users/me", Some(oliver_token)).await, 200);
    assert_eq!(s.get("/health", None).await, 200);

    let Scenario { stack, secrets, .. } = s;
    stack.stop().await;
    let documents: Vec<Value> = std::fs::read_to_string(&metrics_file)
        .expect("the stack wrote its metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an EMF document is JSON"))
        .collect();
    let _ = std::fs::remove_file(&metrics_file);
    documents.iter().for_each(assert_well_formed);

    // One document per invocation; one cold start per function.
    let count = |function: &str| {
        documents
            .iter()
            .filter(|d| d["Function"] == function)
            .count()
    };
    assert_eq!(count("webhook"), 7, "one document per webhook request");
    assert_eq!(count("api"), 5, "one document per api request");
    for function in ["webhook", "sync", "api"] {
        assert_eq!(total(&documents, function, "ColdStart"), 1.0, "{function}");
    }
    // The webhook.
    assert_eq!(total(&documents, "webhook", "Requests"), 7.0);
    assert_eq!(total(&documents, "webhook", "Queued"), 5.0);
    assert_eq!(total(&documents, "webhook", "Ignored"), 1.0);
    assert_eq!(total(&documents, "webhook", "ClientErrors"), 1.0);
    assert_eq!(total(&documents, "webhook", "ServerErrors"), 0.0);
    assert_eq!(
        total_by(
            &documents,
            "webhook",
            "Requests",
            "Code",
            "invalid_signature"
        ),
        1.0
    );
    assert_eq!(
        total_by(&documents, "webhook", "Requests", "Code", "queued"),
        5.0
    );
    // The sync function: the poison message may have been retried meanwhile, never applied.
    assert_eq!(total(&documents, "sync", "MessagesApplied"), 2.0);
    assert_eq!(total(&documents, "sync", "MessagesStale"), 1.0);
    assert_eq!(total(&documents, "sync", "MessagesDuplicate"), 1.0);
    assert_eq!(total(&documents, "sync", "MessagesIgnored"), 0.0);
    assert_eq!(total(&documents, "sync", "TransientFailures"), 0.0);
    let poison_failures = total(&documents, "sync", "PoisonFailures");
    assert!(poison_failures >= 1.0);
    assert_eq!(total(&documents, "sync", "MessagesFailed"), poison_failures);
    assert_eq!(
        total(&documents, "sync", "Messages"),
        4.0 + poison_failures,
        "every delivery is counted once"
    );
    let lags: Vec<f64> = documents
        .iter()
        .filter(|d| d["Function"] == "sync")
        .flat_map(|d| match &d["SyncLag"] {
            Value::Number(n) => vec![n.as_f64().unwrap()],
            Value::Array(v) => v.iter().filter_map(Value::as_f64).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(lags.len(), 2, "a lag for each applied message: {lags:?}");
    assert!(
        lags.iter().all(|&l| (0.0..20_000.0).contains(&l)),
        "{lags:?}"
    );
    // The api.
    assert_eq!(total(&documents, "api", "Requests"), 5.0);
    assert_eq!(total(&documents, "api", "ClientErrors"), 2.0);
    assert_eq!(total(&documents, "api", "ServerErrors"), 0.0);
    assert_eq!(
        total_by(
            &documents,
            "api",
            "TokenRefusals",
            "Reason",
            "missing_token"
        ),
        1.0
    );
    assert_eq!(
        total_by(&documents, "api", "TokenRefusals", "Reason", "malformed"),
        1.0
    );
    assert_eq!(
        total_by(&documents, "api", "LazySyncs", "Outcome", "applied"),
        1.0
    );
    assert_eq!(total_by(&documents, "api", "Requests", "Route", "me"), 4.0);
    assert_eq!(
        total_by(&documents, "api", "Requests", "Status", "401"),
        2.0
    );
    let latencies = documents
        .iter()
        .filter(|d| d["Function"] == "api" && d["Latency"].is_number())
        .count();
    assert_eq!(latencies, 5);

    // Every line the functions write carries its invocation's ids.
    let lines = captured.lines();
    if std::env::var_os("OBS_DUMP").is_some() {
        lines
            .iter()
            .chain(&documents)
            .for_each(|l| eprintln!("{l}"));
    }
    let ours = |l: &&Value| {
        let target = l["target"].as_str().unwrap_or_default();
        ["webhook", "sync", "api", "clerk_sync"]
            .iter()
            .any(|t| target == *t || target.starts_with(&format!("{t}::")))
    };
    let function_lines: Vec<&Value> = lines.iter().filter(ours).collect();
    assert!(function_lines.len() >= 15, "{} lines", function_lines.len());
    let mut by_target = BTreeMap::<String, usize>::new();
    for line in &function_lines {
        for id in ["requestId", "xrayTraceId"] {
            assert!(line[id].is_string(), "no {id}: {line}");
        }
        let target = line["target"].as_str().unwrap().to_owned();
        let root = target.split("::").next().unwrap().to_owned();
        match root.as_str() {
            "webhook" | "api" => assert!(line["apigw_request_id"].is_string(), "{line}"),
            _ => {}
        }
        *by_target.entry(root).or_default() += 1;
    }
    for function in ["webhook", "sync", "api"] {
        assert!(
            by_target.contains_key(function),
            "no {function} lines: {by_target:?}"
        );
    }
    let event_lines = function_lines
        .iter()
        .filter(|l| l["message"] == "event processed" || l["message"] == "event failed");
    for line in event_lines {
        assert!(
            line["svix_id"].is_string() && line["message_id"].is_string(),
            "{line}"
        );
    }
    // An event is findable by its svix id in the webhook's and the sync's lines.
    for svix_id in [&created, &poisoned] {
        let targets: Vec<_> = function_lines
            .iter()
            .filter(|l| l["svix_id"] == svix_id.as_str())
            .map(|l| {
                l["target"]
                    .as_str()
                    .unwrap()
                    .split("::")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert!(
            targets.iter().any(|t| t == "webhook"),
            "{svix_id}: {targets:?}"
        );
        assert!(
            targets.iter().any(|t| t == "sync"),
            "{svix_id}: {targets:?}"
        );
    }

    // Nothing secret or personal in any line or document.
    let mut forbidden = secrets;
    forbidden.extend(personal_data(&alice("user.updated", t)));
    forbidden.extend(personal_data(&devkit::fixture("user.updated")));
    forbidden.extend(personal_data(&devkit::fixture("user.created")));
    let everything: Vec<String> = lines
        .iter()
        .chain(&documents)
        .map(Value::to_string)
        .collect();
    for needle in &forbidden {
        if let Some(line) = everything.iter().find(|l| l.contains(needle.as_str())) {
            panic!("a line holds {needle:?}: {line}");
        }
    }
    assert!(forbidden.len() >= 15, "{forbidden:?}");
}
