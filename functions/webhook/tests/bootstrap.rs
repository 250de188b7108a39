//! The built `webhook` binary as Lambda runs it: configured by nothing but its environment
//! variables (the template's names), polling a local Lambda Runtime API.

use devkit::apigw::request_event;
use devkit::emulator::Emulator;
use devkit::resources::{Names, provision};
use devkit::runtime_api::Bootstrap;
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};

const BINARY: &str = env!("CARGO_BIN_EXE_webhook");

#[tokio::test]
async fn the_binary_answers_a_signed_event_from_the_runtime_api_202_and_queues_it() {
    let emulator = Emulator::shared();
    let sdk = emulator.sdk_config().await;
    let resources = provision(&sdk, Names::unique("bin"), DEV_WEBHOOK_SECRET)
        .await
        .unwrap();
    let mut env = resources.webhook_env();
    env.extend(emulator.process_env());
    let mut bootstrap = Bootstrap::start("webhook", tokio::process::Command::new(BINARY), 256, env)
        .await
        .unwrap();
    bootstrap.initialised().await.expect("initialised");

    let body = devkit::fixture("user.created");
    let event = request_event(
        "POST",
        webhook::ROUTE,
        &sign_now(DEV_WEBHOOK_SECRET, &body),
        body.as_bytes(),
    );
    let response = bootstrap
        .invoke(event)
        .await
        .unwrap()
        .expect("no function error");

    assert_eq!(response["statusCode"], 202, "{response}");
    let queued = aws_sdk_sqs::Client::new(&sdk)
        .receive_message()
        .queue_url(&resources.queue_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].body.as_deref(), Some(body.as_str()));
}

#[test]
fn the_binary_without_its_queue_url_stops_before_serving_and_names_the_variable() {
    let output = std::process::Command::new(BINARY)
        .env_clear()
        .env("WEBHOOK_SECRET_ID", "secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("EVENTS_QUEUE_URL"), "{stderr}");
}
