//! The built `webhook` binary as Lambda runs it: configured by nothing but its environment
//! variables (the template's names), polling a local Lambda Runtime API.

use devkit::apigw::request_event;
use devkit::runtime_api::{run_unserved, start_provisioned};
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};

const BINARY: &str = env!("CARGO_BIN_EXE_webhook");

#[tokio::test]
async fn the_binary_answers_a_signed_event_from_the_runtime_api_202_and_queues_it() {
    let (sdk, resources, mut bootstrap) = start_provisioned("webhook", BINARY, |r| r.webhook_env())
        .await
        .expect("initialised");

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

    // Its metrics: one EMF document on stdout, named as Lambda names the function and version.
    let lines = bootstrap.stdout_lines(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let document: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
    assert_eq!(
        document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "ClerkSync"
    );
    assert_eq!(document["Function"], "webhook");
    assert_eq!(document["Version"], "$LATEST");
    assert_eq!(document["Queued"], 1.0);
    assert_eq!(document["ColdStart"], 1.0);
    assert!(
        document["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

/// API Gateway never flags a body base64 that is not; if it did, that one invocation fails
/// (lambda_http's conversion panics, its runtime reports the error) and the function goes on.
#[tokio::test]
async fn a_body_flagged_base64_that_is_not_fails_that_invocation_only_and_queues_nothing() {
    let (sdk, resources, mut bootstrap) = start_provisioned("webhook", BINARY, |r| r.webhook_env())
        .await
        .expect("initialised");
    let body = devkit::fixture("user.created");
    let headers = sign_now(DEV_WEBHOOK_SECRET, &body);
    let mut broken = request_event("POST", webhook::ROUTE, &headers, body.as_bytes());
    broken["body"] = "%%% not base64 %%%".into();
    broken["isBase64Encoded"] = true.into();

    let failed = bootstrap.invoke(broken).await.unwrap();
    assert!(
        failed.is_err(),
        "a function error, not an answer: {failed:?}"
    );

    let event = request_event("POST", webhook::ROUTE, &headers, body.as_bytes());
    let response = bootstrap.invoke(event).await.unwrap().expect("served");
    assert_eq!(response["statusCode"], 202, "{response}");
    let queued = aws_sdk_sqs::Client::new(&sdk)
        .receive_message()
        .queue_url(&resources.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(queued.len(), 1, "only the genuine event");
}

#[test]
fn the_binary_without_its_queue_url_stops_before_serving_and_names_the_variable() {
    let output = run_unserved(BINARY, &[("WEBHOOK_SECRET_ID", "secret")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("EVENTS_QUEUE_URL"), "{stderr}");
}
