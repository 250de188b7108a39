//! `GET /health`: ok with every dependency, and naming the one that is down without internals.

use devkit::emulator::Emulator;
use http::HeaderMap;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use crate::support::{Options, harness, harness_with};

#[tokio::test]
async fn health_is_ok_with_every_dependency_and_names_the_one_that_is_down() {
    let h = harness("health").await;
    let response = h.request("GET", "/health", &HeaderMap::new()).await;
    assert_eq!(response.status, 200, "{}", response.json());
    let body = response.json();
    assert_eq!(body["status"], "ok");
    for check in ["dynamodb", "signing_keys", "queue"] {
        assert_eq!(body["checks"][check]["status"], "ok", "{check}");
        assert!(body["checks"][check]["latency_ms"].is_u64());
    }

    let no_table = harness_with(
        "health-db",
        Options {
            users_table: Some("no-such-table".into()),
            ..Options::default()
        },
    )
    .await;
    let no_queue = harness_with(
        "health-q",
        Options {
            queue_url: Some(format!(
                "{}/123456789012/no-such-queue",
                Emulator::shared().endpoint()
            )),
            ..Options::default()
        },
    )
    .await;
    let no_jwks = harness("health-keys").await;
    no_jwks.clerk.reset().await;
    Mock::given(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&no_jwks.clerk)
        .await;
    for (harness, failing) in [
        (&no_table, "dynamodb"),
        (&no_queue, "queue"),
        (&no_jwks, "signing_keys"),
    ] {
        let response = harness.request("GET", "/health", &HeaderMap::new()).await;
        assert_eq!(response.status, 503, "{failing}");
        let body = response.json();
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["failing"], json!([failing]));
        assert_eq!(body["checks"][failing]["status"], "down");
        let text = String::from_utf8_lossy(&response.body);
        assert!(!text.contains("no-such"), "no internals: {text}");
    }
}
