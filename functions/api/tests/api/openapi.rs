//! The committed OpenAPI document against real responses of every route.

use devkit::apigw::HttpResponse;
use http::HeaderMap;
use serde_json::Value;
use wiremock::ResponseTemplate;

use crate::support::{ADA, ME, Options, bearer, harness, harness_with, keys};

/// The committed OpenAPI document.
fn openapi() -> Value {
    let path = devkit::workspace_root().join("functions/api/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Checks a real response against the document's entry for `route` (a path template) and its
/// status: required headers and their schemas, and the JSON body's schema.
fn assert_conforms(doc: &Value, route: &str, response: &HttpResponse) {
    let status = response.status.to_string();
    let mut entry = &doc["paths"][route]["get"]["responses"][&status];
    assert!(!entry.is_null(), "{route} {status} is not documented");
    if let Some(reference) = entry["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        entry = &doc["components"]["responses"][name];
    }
    let validator = |schema: &Value| {
        let mut root = schema.clone();
        root["components"] = doc["components"].clone();
        jsonschema::draft202012::new(&root).unwrap()
    };
    for (name, header) in entry["headers"].as_object().into_iter().flatten() {
        let value = response.header(name);
        if header["required"] == true {
            assert!(value.is_some(), "{route} {status}: header {name} missing");
        }
        if let Some(value) = value {
            let errors: Vec<String> = validator(&header["schema"])
                .iter_errors(&Value::from(value))
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{route} {status}: header {name}: {errors:?}"
            );
        }
    }
    let schema = &entry["content"]["application/json"]["schema"];
    let body = response.json();
    let errors: Vec<String> = validator(schema)
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{route} {status}: {errors:?} in {body}");
}

#[tokio::test]
async fn every_route_answers_as_the_openapi_document_says() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut routes: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    routes.sort_unstable();
    assert_eq!(routes, ["/health", "/v1/users/me", "/v1/users/{id}"]);

    let h = harness("openapi").await;
    h.seed(ADA, 20).await;
    h.clerk_answers(
        "user_limited",
        ResponseTemplate::new(429).insert_header("retry-after", "3"),
    )
    .await;
    let ada = keys().mint(ADA);
    let me = "/v1/users/me";
    let by_id = "/v1/users/{id}";
    let cases = [
        (me, h.get(ME, &ada).await),
        (me, h.request("GET", ME, &HeaderMap::new()).await),
        (me, h.get(ME, &keys().mint("user_limited")).await),
        (me, h.request("POST", ME, &bearer(&ada)).await),
        (by_id, h.get(&format!("/v1/users/{ADA}"), &ada).await),
        (by_id, h.get("/v1/users/user_other", &ada).await),
        (by_id, h.get(&format!("/v1/users/{ADA}"), "garbage").await),
        (
            "/health",
            h.request("GET", "/health", &HeaderMap::new()).await,
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (route, response) in &cases {
        assert_conforms(&doc, route, response);
        seen.insert((*route, response.status));
    }
    h.seed_deleted(ADA).await;
    let gone = h.get(&format!("/v1/users/{ADA}"), &ada).await;
    assert_conforms(&doc, by_id, &gone);
    assert_eq!(gone.status, 404);
    let down = harness_with(
        "openapi-down",
        Options {
            users_table: Some("no-such-table".into()),
            ..Options::default()
        },
    )
    .await;
    let health = down.request("GET", "/health", &HeaderMap::new()).await;
    assert_conforms(&doc, "/health", &health);
    let store_down = down.get(ME, &ada).await;
    assert_conforms(&doc, me, &store_down);
    assert_eq!(
        seen.into_iter()
            .map(|(_, s)| s)
            .collect::<std::collections::BTreeSet<_>>(),
        [200, 401, 403, 405, 503].into()
    );
    assert_eq!((health.status, store_down.status), (503, 503));
}
