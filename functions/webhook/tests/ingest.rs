//! The webhook function against the local AWS emulator: one test per row of the response table,
//! each checking the status and what is (not) on the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use base64::Engine;
use clerk_sync::adapters::secrets_manager::SecretsManagerSource;
use clerk_sync::adapters::sqs::SqsEventQueue;
use clerk_sync::config::{Env, WebhookConfig};
use clerk_sync::domain::webhook::EventTypeFilter;
use clerk_sync::ports::{DependencyError, SecretSource};
use clerk_sync::secret_cache::{CachePolicy, SecretCache};
use devkit::apigw::{HttpResponse, read_response, request_event};
use devkit::emulator::{Emulator, sdk_config_for};
use devkit::lambda::{JsonFn, http_fn};
use devkit::resources::{Names, Resources, provision, put_secret};
use devkit::signing::{new_svix_id, now, sign, sign_now};
use http::{HeaderMap, HeaderValue};
use secrecy::SecretString;
use serde_json::{Value, json};
use webhook::{Ingest, ROUTE};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

struct Harness {
    sdk: aws_config::SdkConfig,
    resources: Resources,
    function: JsonFn,
}

async fn harness(label: &str) -> Harness {
    clerk_sync::telemetry::init_for_tests();
    let sdk = Emulator::shared().sdk_config().await;
    let resources = provision(&sdk, Names::unique(label), SECRET).await.unwrap();
    let env = resources.webhook_env();
    let config = WebhookConfig::from(&Env::from_fn(|k| env.get(k).cloned())).unwrap();
    let app = Ingest::from_config(&config, &sdk);
    Harness {
        function: function(app),
        sdk,
        resources,
    }
}

fn function(app: Ingest) -> JsonFn {
    http_fn(clerk_sync::edge::service(Arc::new(app)))
}

impl Harness {
    /// The real Secrets Manager adapter for this harness's secret.
    fn secret_source(&self) -> SecretsManagerSource {
        SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&self.sdk),
            &self.resources.webhook_secret_id,
        )
    }

    /// The same resources, served by a webhook wired with the given secret source, cache policy
    /// and SQS configuration.
    fn rewired(
        &self,
        source: Arc<dyn SecretSource>,
        policy: CachePolicy,
        sqs_sdk: &aws_config::SdkConfig,
    ) -> Self {
        let app = Ingest::new(
            SecretCache::new(source, policy),
            Arc::new(SqsEventQueue::new(
                aws_sdk_sqs::Client::new(sqs_sdk),
                &self.resources.queue_url,
            )),
            EventTypeFilter::default(),
        );
        Self {
            function: function(app),
            sdk: self.sdk.clone(),
            resources: self.resources.clone(),
        }
    }

    async fn invoke(&self, event: Value) -> HttpResponse {
        read_response(&(self.function)(event).await.unwrap()).unwrap()
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> HttpResponse {
        self.invoke(request_event(method, path, headers, body))
            .await
    }

    async fn post(&self, headers: &HeaderMap, body: &str) -> HttpResponse {
        self.send("POST", ROUTE, headers, body.as_bytes()).await
    }

    async fn post_signed(&self, body: &str) -> HttpResponse {
        self.post(&sign_now(SECRET, body), body).await
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// Every message on the queue (received, so invisible afterwards).
    async fn drain(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let out = self
            .sqs()
            .receive_message()
            .queue_url(&self.resources.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages.unwrap_or_default()
    }

    async fn assert_queue_empty(&self) {
        let attrs = self
            .sqs()
            .get_queue_attributes()
            .queue_url(&self.resources.queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        for name in [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ] {
            assert_eq!(
                attrs.get(&name).map(String::as_str),
                Some("0"),
                "{name:?} on the queue"
            );
        }
    }
}

fn error_code(response: &HttpResponse) -> String {
    let body = response.json();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Asserts an error response: its status, its `code`, a non-empty message, JSON content type.
#[track_caller]
fn assert_error(response: &HttpResponse, status: u16, code: &str, context: impl std::fmt::Display) {
    let actual = (response.status, error_code(response));
    assert_eq!(
        actual,
        (status, code.to_owned()),
        "{context}: {}",
        response.json()
    );
}

fn attr(message: &aws_sdk_sqs::types::Message, name: &str) -> String {
    message.message_attributes().unwrap()[name]
        .string_value()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn genuine_event_is_queued_once_with_its_raw_body_and_attributes_then_202() {
    let h = harness("queued").await;
    let body = devkit::fixture("user.created");
    let id = new_svix_id();
    let ts = now();
    let response = h.post(&sign(SECRET, &id, ts, &body), &body).await;

    assert_eq!(response.status, 202);
    assert_eq!(response.json(), json!({"status": "queued", "id": id}));
    let messages = h.drain().await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(
        message.body(),
        Some(body.as_str()),
        "the exact signed bytes"
    );
    assert_eq!(attr(message, "svix_id"), id);
    assert_eq!(attr(message, "event_type"), "user.created");
    assert_eq!(
        message.message_attributes().unwrap().len(),
        2,
        "svix_id and event_type only"
    );
    assert!(
        !message
            .message_attributes()
            .unwrap()
            .contains_key("content_encoding")
    );
}

#[tokio::test]
async fn base64_encoded_body_and_white_label_headers_are_verified_over_the_decoded_bytes() {
    let h = harness("b64").await;
    let body = devkit::fixture("user.updated");
    let mut headers = HeaderMap::new();
    for (name, value) in &sign_now(SECRET, &body) {
        let white_label = name.as_str().replace("svix-", "webhook-");
        headers.insert(
            http::HeaderName::from_bytes(white_label.as_bytes()).unwrap(),
            value.clone(),
        );
    }
    let mut event = request_event("POST", ROUTE, &headers, body.as_bytes());
    event["body"] = base64::engine::general_purpose::STANDARD
        .encode(&body)
        .into();
    event["isBase64Encoded"] = true.into();

    let response = h.invoke(event).await;

    assert_eq!(response.status, 202, "{:?}", response.json());
    let messages = h.drain().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body(), Some(body.as_str()));
}

#[tokio::test]
async fn genuine_event_of_a_type_not_synced_is_acknowledged_200_and_not_queued() {
    let h = harness("ignored").await;
    for fixture in ["session.created", "organization.created"] {
        let response = h.post_signed(&devkit::fixture(fixture)).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.json(), json!({"status": "ignored"}));
    }
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn missing_or_empty_svix_headers_are_400_and_nothing_is_queued() {
    let h = harness("headers").await;
    let body = devkit::fixture("user.created");
    let signed = sign_now(SECRET, &body);
    for name in ["svix-id", "svix-timestamp", "svix-signature"] {
        let mut missing = signed.clone();
        missing.remove(name);
        let response = h.post(&missing, &body).await;
        assert_error(&response, 400, "missing_header", format_args!("{name}"));

        let mut empty = signed.clone();
        empty.insert(
            http::HeaderName::from_static(name),
            HeaderValue::from_static(""),
        );
        let response = h.post(&empty, &body).await;
        assert_error(&response, 400, "invalid_header", format_args!("{name}"));
    }
    let response = h.post(&HeaderMap::new(), &body).await;
    assert_eq!(response.status, 400);
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn non_utf8_body_is_400_and_nothing_is_queued() {
    let h = harness("utf8").await;
    let headers = sign_now(SECRET, "{}");
    let response = h
        .send("POST", ROUTE, &headers, &[b'{', 0xff, 0xfe, b'}'])
        .await;
    assert_error(&response, 400, "invalid_body", "");
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn genuinely_signed_non_json_body_is_400_and_nothing_is_queued() {
    let h = harness("json").await;
    for body in [
        "this is not json",
        r#"{"type":"user.created","data":{}"#,
        "",
    ] {
        let response = h.post_signed(body).await;
        assert_error(&response, 400, "invalid_body", format_args!("{body:?}"));
    }
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn genuinely_signed_envelope_without_type_or_data_is_400_and_nothing_is_queued() {
    let h = harness("envelope").await;
    let mut without_type: Value = serde_json::from_str(&devkit::fixture("user.created")).unwrap();
    without_type.as_object_mut().unwrap().remove("type");
    let mut without_data: Value = serde_json::from_str(&devkit::fixture("user.created")).unwrap();
    without_data.as_object_mut().unwrap().remove("data");
    for body in [
        without_type.to_string(),
        without_data.to_string(),
        "[1,2]".to_owned(),
    ] {
        let response = h.post_signed(&body).await;
        assert_eq!(response.status, 400, "{body}");
        assert!(["invalid_envelope", "invalid_body"].contains(&error_code(&response).as_str()));
    }
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn signature_from_an_unknown_secret_is_401_and_nothing_is_queued() {
    let h = harness("forged").await;
    let body = devkit::fixture("user.created");
    let response = h.post(&sign_now(OTHER_SECRET, &body), &body).await;
    assert_error(&response, 401, "invalid_signature", "");

    let mut tampered_headers = sign_now(SECRET, &body);
    tampered_headers.insert("svix-id", HeaderValue::from_static("msg_other"));
    let response = h.post(&tampered_headers, &body).await;
    assert_eq!(response.status, 401);
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn timestamp_more_than_five_minutes_old_or_ahead_is_401_and_nothing_is_queued() {
    let h = harness("tolerance").await;
    let body = devkit::fixture("user.created");
    for ts in [now() - 301, now() + 301] {
        let response = h
            .post(&sign(SECRET, &new_svix_id(), ts, &body), &body)
            .await;
        assert_error(
            &response,
            401,
            "timestamp_out_of_tolerance",
            format_args!("{ts}"),
        );
    }
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn body_over_256_kib_is_413_and_nothing_is_queued() {
    let h = harness("large").await;
    let padding = "x".repeat(256 * 1024);
    let body = format!(r#"{{"type":"user.created","data":{{"id":"user_1","pad":"{padding}"}}}}"#);
    let response = h.post_signed(&body).await;
    assert_error(&response, 413, "payload_too_large", "");
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn a_genuine_event_nested_deeper_than_any_json_parser_default_is_queued_byte_for_byte() {
    let h = harness("deep").await;
    let mut event: Value = serde_json::from_str(&devkit::fixture("user.created")).unwrap();
    event["data"]["unsafe_metadata"] = "DEEP".into();
    let deep = format!("{}1e200{}", "[".repeat(1000), "]".repeat(1000));
    let body = event.to_string().replace("\"DEEP\"", &deep);

    let response = h.post_signed(&body).await;

    assert_eq!(response.status, 202, "{}", response.json());
    let queued = h.drain().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].body(), Some(body.as_str()));
}

#[tokio::test]
async fn a_body_under_256_kib_that_would_not_fit_the_queue_is_413_and_nothing_is_queued() {
    let h = harness("large-encoded").await;
    // Within the body limit, but over the queue's once base64-encoded (U+FFFF cannot travel
    // raw), or once its attributes are counted.
    let encoded = format!(
        r#"{{"type":"user.created","data":{{"id":"user_1","pad":"{}{}"}}}}"#,
        "x".repeat(200 * 1024),
        '\u{FFFF}'
    );
    let raw = format!(
        r#"{{"type":"user.created","data":{{"id":"user_1","pad":"{}"}}}}"#,
        "x".repeat(256 * 1024 - 60)
    );
    assert!(raw.len() <= 256 * 1024);
    for body in [encoded, raw] {
        let response = h.post_signed(&body).await;
        assert_error(&response, 413, "payload_too_large", "");
        assert!(
            response.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("too large for the queue"),
            "{}",
            response.json()
        );
    }
    h.assert_queue_empty().await;

    // The largest body that fits is queued, not refused.
    let fits = format!(
        r#"{{"type":"user.created","data":{{"id":"user_1","pad":"{}"}}}}"#,
        "x".repeat(256 * 1024 - 200)
    );
    assert_eq!(h.post_signed(&fits).await.status, 202);
    assert_eq!(h.drain().await.len(), 1);
}

#[tokio::test]
async fn other_methods_are_405_with_allow_and_other_paths_404() {
    let h = harness("routes").await;
    let body = devkit::fixture("user.created");
    let headers = sign_now(SECRET, &body);
    for method in ["GET", "PUT", "DELETE"] {
        let response = h.send(method, ROUTE, &headers, body.as_bytes()).await;
        assert_error(&response, 405, "method_not_allowed", "");
        assert_eq!(response.header("allow"), Some("POST"));
    }
    for path in ["/", "/webhooks", "/webhooks/clerk/extra", "/v1/users/me"] {
        let response = h.send("POST", path, &headers, body.as_bytes()).await;
        assert_error(&response, 404, "not_found", format_args!("{path}"));
    }
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn deleted_queue_makes_a_genuine_event_503_so_svix_retries() {
    let h = harness("noqueue").await;
    h.sqs()
        .delete_queue()
        .queue_url(&h.resources.queue_url)
        .send()
        .await
        .unwrap();

    let response = h.post_signed(&devkit::fixture("user.created")).await;

    assert_error(&response, 503, "queue_unavailable", "");
    let message = response.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !message.contains("NonExistentQueue") && !message.contains("http"),
        "{message}"
    );
}

#[tokio::test]
async fn unreachable_queue_endpoint_makes_a_genuine_event_503_and_nothing_is_queued() {
    let h = harness("unreachable").await;
    // The secret comes from the emulator; SQS calls go to a port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_endpoint = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let dead_sdk = sdk_config_for(&dead_endpoint).await;
    let broken = h.rewired(
        Arc::new(h.secret_source()),
        CachePolicy::default(),
        &dead_sdk,
    );

    let started = std::time::Instant::now();
    let response = broken.post_signed(&devkit::fixture("user.created")).await;

    assert_error(&response, 503, "queue_unavailable", "");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered within Svix's timeout"
    );
    h.assert_queue_empty().await;
}

/// The real Secrets Manager adapter, counting its reads.
struct Counting {
    inner: SecretsManagerSource,
    reads: Arc<AtomicUsize>,
}

#[async_trait]
impl SecretSource for Counting {
    async fn fetch(&self) -> Result<SecretString, DependencyError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch().await
    }
}

#[tokio::test]
async fn rotated_secret_is_picked_up_without_restart_and_forgeries_cannot_hammer_secrets_manager() {
    let h = harness("rotation").await;
    let reads = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_millis(1500);
    let source = Arc::new(Counting {
        inner: h.secret_source(),
        reads: reads.clone(),
    });
    let policy = CachePolicy {
        min_refresh_interval: interval,
        max_age: Duration::from_secs(3600),
    };
    let h = h.rewired(source, policy, &h.sdk);
    let body = devkit::fixture("user.updated");

    assert_eq!(h.post_signed(&body).await.status, 202);
    assert_eq!(
        reads.load(Ordering::SeqCst),
        1,
        "first request reads the secret once"
    );

    // Rotate: the endpoint now signs with OTHER_SECRET only.
    put_secret(&h.sdk, &h.resources.webhook_secret_id, OTHER_SECRET)
        .await
        .unwrap();
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let response = h.post(&sign_now(OTHER_SECRET, &body), &body).await;
    assert_eq!(
        response.status, 202,
        "newly signed event passes after rotation"
    );
    assert_eq!(reads.load(Ordering::SeqCst), 2);

    // A flood of forgeries: each one fails verification, but reads stay bounded by the interval.
    let started = std::time::Instant::now();
    for _ in 0..100 {
        let response = h.post(&sign_now(SECRET, &body), &body).await;
        assert_eq!(response.status, 401);
    }
    let flood_reads = reads.load(Ordering::SeqCst) - 2;
    let allowed = 1 + (started.elapsed().as_millis() / interval.as_millis()) as usize;
    assert!(
        flood_reads <= allowed,
        "{flood_reads} reads during the flood, at most {allowed} allowed"
    );
    assert!(flood_reads <= 2, "{flood_reads} reads for 100 forgeries");

    assert_eq!(
        h.drain().await.len(),
        2,
        "only the two genuine events were queued"
    );
}

#[tokio::test]
async fn unreadable_signing_secret_makes_a_genuine_event_503_and_nothing_is_queued() {
    let h = harness("nosecret").await;
    aws_sdk_secretsmanager::Client::new(&h.sdk)
        .delete_secret()
        .secret_id(&h.resources.webhook_secret_id)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();

    let response = h.post_signed(&devkit::fixture("user.created")).await;

    assert_error(&response, 503, "secrets_unavailable", "");
    h.assert_queue_empty().await;
}

#[tokio::test]
async fn retired_secret_stops_being_accepted_once_the_cached_keys_reach_their_max_age() {
    let h = harness("maxage").await;
    let max_age = Duration::from_millis(800);
    let policy = CachePolicy {
        min_refresh_interval: Duration::from_secs(3600),
        max_age,
    };
    let h = h.rewired(Arc::new(h.secret_source()), policy, &h.sdk);
    let body = devkit::fixture("user.updated");
    assert_eq!(h.post_signed(&body).await.status, 202);

    // The old endpoint is deleted in Clerk; only the new secret remains.
    put_secret(&h.sdk, &h.resources.webhook_secret_id, OTHER_SECRET)
        .await
        .unwrap();
    assert_eq!(
        h.post_signed(&body).await.status,
        202,
        "cached keys still accept the old secret"
    );
    tokio::time::sleep(max_age + Duration::from_millis(100)).await;

    assert_eq!(
        h.post_signed(&body).await.status,
        401,
        "old secret refused after max age"
    );
    assert_eq!(
        h.post(&sign_now(OTHER_SECRET, &body), &body).await.status,
        202
    );
    assert_eq!(h.drain().await.len(), 3);
}

#[tokio::test]
async fn a_placeholder_signing_secret_costs_one_secrets_manager_read_per_interval_under_a_flood() {
    let h = harness("placeholder").await;
    // What the stack stores until someone puts the real value (GenerateSecretString: 32 chars).
    put_secret(
        &h.sdk,
        &h.resources.webhook_secret_id,
        "R4nd0mPlaceh0lderNotAWhsecValue1",
    )
    .await
    .unwrap();
    let requests = devkit::counting::RequestCounter::default();
    let source = SecretsManagerSource::new(
        requests.secrets_manager_client(&h.sdk),
        &h.resources.webhook_secret_id,
    );
    let policy = CachePolicy {
        min_refresh_interval: Duration::from_secs(3600),
        max_age: Duration::from_secs(3600),
    };
    let h = h.rewired(Arc::new(source), policy, &h.sdk);
    let body = devkit::fixture("user.created");

    for i in 0..100 {
        let response = h.post(&sign_now(OTHER_SECRET, &body), &body).await;
        assert_error(&response, 503, "secrets_unavailable", format_args!("#{i}"));
    }

    assert_eq!(
        requests.counts(),
        std::collections::HashMap::from([("GetSecretValue".to_owned(), 1)]),
        "one read in the interval, however many requests"
    );
    h.assert_queue_empty().await;
}
