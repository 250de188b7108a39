//! The built `api` binary as Lambda runs it: configured by nothing but its environment variables
//! (the template's names), polling a local Lambda Runtime API.

use devkit::apigw::request_event;
use devkit::emulator::Emulator;
use devkit::resources::{Names, provision};
use devkit::runtime_api::Bootstrap;
use devkit::signing::DEV_WEBHOOK_SECRET;
use devkit::tokens::DevKeys;
use http::HeaderMap;

const BINARY: &str = env!("CARGO_BIN_EXE_api");

#[tokio::test]
async fn the_binary_serves_health_and_verifies_tokens_from_the_runtime_api() {
    let emulator = Emulator::shared();
    let sdk = emulator.sdk_config().await;
    let resources = provision(&sdk, Names::unique("bin"), DEV_WEBHOOK_SECRET)
        .await
        .unwrap();
    let keys = DevKeys::generate();
    let mut env = resources.api_env();
    env.extend(emulator.process_env());
    env.insert("CLERK_JWT_KEY", keys.public_pem.clone());
    env.insert("LAZY_SYNC", "false".into());
    let mut bootstrap = Bootstrap::start("api", tokio::process::Command::new(BINARY), 256, env)
        .await
        .unwrap();
    bootstrap.initialised().await.expect("initialised");
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

#[test]
fn the_binary_without_a_key_source_stops_before_serving_and_names_the_variables() {
    let output = std::process::Command::new(BINARY)
        .env_clear()
        .env("USERS_TABLE", "users")
        .env("EVENTS_QUEUE_URL", "http://127.0.0.1:9/q")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CLERK_JWKS_URL") && stderr.contains("CLERK_JWT_KEY"),
        "{stderr}"
    );
}
