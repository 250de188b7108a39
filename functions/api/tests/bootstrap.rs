//! The built `api` binary as Lambda runs it: configured by nothing but its environment variables
//! (the template's names), polling a local Lambda Runtime API.

use devkit::apigw::request_event;
use devkit::runtime_api::{run_unserved, start_provisioned};
use devkit::tokens::DevKeys;
use http::HeaderMap;

const BINARY: &str = env!("CARGO_BIN_EXE_api");

#[tokio::test]
async fn the_binary_serves_health_and_verifies_tokens_from_the_runtime_api() {
    let keys = DevKeys::generate();
    let (_, _, mut bootstrap) = start_provisioned("api", BINARY, |r| {
        let mut env = r.api_env();
        env.insert("CLERK_JWT_KEY", keys.public_pem.clone());
        env.insert("LAZY_SYNC", "false".into());
        env
    })
    .await
    .expect("initialised");
    let get = |path: &str, token: Option<String>| {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request_event("GET", path, &headers, b"")
    };

    let health = bootstrap
        .invoke(get(api::HEALTH, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health["statusCode"], 200, "{health}");

    // A valid token for a user nobody stored: verified, then not found (lazy sync is off).
    let user = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";
    let me = bootstrap
        .invoke(get(api::ME, Some(keys.mint(user))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me["statusCode"], 404, "{me}");

    let forged = DevKeys::generate().mint(user);
    let me = bootstrap
        .invoke(get(api::ME, Some(forged)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me["statusCode"], 401, "{me}");
}

/// API Gateway never flags a body base64 that is not; if it did, that one invocation fails
/// (lambda_http's conversion panics, its runtime reports the error) and the function goes on.
#[tokio::test]
async fn a_body_flagged_base64_that_is_not_fails_that_invocation_only() {
    let keys = DevKeys::generate();
    let (_, _, mut bootstrap) = start_provisioned("api", BINARY, |r| {
        let mut env = r.api_env();
        env.insert("CLERK_JWT_KEY", keys.public_pem.clone());
        env
    })
    .await
    .expect("initialised");
    let mut broken = request_event("POST", api::HEALTH, &HeaderMap::new(), b"");
    broken["body"] = "%%% not base64 %%%".into();
    broken["isBase64Encoded"] = true.into();

    let failed = bootstrap.invoke(broken).await.unwrap();
    assert!(
        failed.is_err(),
        "a function error, not an answer: {failed:?}"
    );

    let health = request_event("GET", api::HEALTH, &HeaderMap::new(), b"");
    let health = bootstrap.invoke(health).await.unwrap().expect("served");
    assert_eq!(health["statusCode"], 200, "{health}");
}

#[test]
fn the_binary_without_a_key_source_stops_before_serving_and_names_the_variables() {
    let output = run_unserved(
        BINARY,
        &[
            ("USERS_TABLE", "users"),
            ("EVENTS_QUEUE_URL", "http://127.0.0.1:9/q"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CLERK_JWKS_URL") && stderr.contains("CLERK_JWT_KEY"),
        "{stderr}"
    );
}
