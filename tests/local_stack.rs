//! End to end through the local stack: HTTP into the local gateway, the real webhook function,
//! the emulated SQS queue.

use devkit::resources::Names;
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};
use local_stack::{Stack, StackOptions};
use serde_json::{Value, json};

/// A running local stack on a free port with its own resources.
struct TestStack {
    stack: Stack,
    sdk: aws_config::SdkConfig,
    http: reqwest::Client,
}

async fn spawn_stack() -> TestStack {
    let stack = Stack::start(StackOptions {
        port: 0,
        webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
        names: Names::unique("e2e"),
    })
    .await
    .expect("local stack starts");
    let sdk = devkit::emulator::sdk_config_for(stack.endpoint()).await;
    TestStack {
        stack,
        sdk,
        http: reqwest::Client::new(),
    }
}

impl TestStack {
    async fn post_webhook(&self, secret: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/webhooks/clerk", self.stack.base_url()))
            .headers(sign_now(secret, body))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn take_messages(&self) -> Vec<aws_sdk_sqs::types::Message> {
        aws_sdk_sqs::Client::new(&self.sdk)
            .receive_message()
            .queue_url(&self.stack.resources.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn signed_fixture_posted_to_the_gateway_lands_on_the_queue_and_forgeries_do_not() {
    let stack = spawn_stack().await;
    let body = devkit::fixture("user.created");

    let (status, queued) = stack.post_webhook(DEV_WEBHOOK_SECRET, &body).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "queued");

    let forged = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let (status, reply) = stack.post_webhook(forged, &body).await;
    assert_eq!(status, 401);
    assert_eq!(reply["error"]["code"], "invalid_signature");

    let messages = stack.take_messages().await;
    assert_eq!(messages.len(), 1, "only the genuine event is queued");
    assert_eq!(messages[0].body(), Some(body.as_str()));
    let attributes = messages[0].message_attributes().unwrap();
    assert_eq!(json!(attributes["svix_id"].string_value()), queued["id"]);
    assert_eq!(
        attributes["event_type"].string_value(),
        Some("user.created")
    );
    stack.stack.stop().await;
}

#[tokio::test]
async fn gateway_answers_unknown_routes_404_in_the_api_error_format() {
    let stack = spawn_stack().await;
    let response = stack
        .http
        .get(format!("{}/nope", stack.stack.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    stack.stack.stop().await;
}
