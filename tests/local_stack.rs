//! End to end through the local stack: HTTP into the local gateway, the real webhook function,
//! the emulated SQS queue.

use devkit::resources::Names;
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};
use local_stack::{ClerkOptions, Stack, StackOptions};
use serde_json::{Value, json};

/// A running local stack on a free port with its own resources.
struct TestStack {
    stack: Stack,
    sdk: aws_config::SdkConfig,
    http: reqwest::Client,
}

async fn spawn_stack(sync: bool) -> TestStack {
    spawn_stack_with(sync, ClerkOptions::default()).await
}

async fn spawn_stack_with(sync: bool, clerk: ClerkOptions) -> TestStack {
    let stack = Stack::start(StackOptions {
        port: 0,
        webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
        names: Names::unique("e2e"),
        sync,
        clerk,
        local_clerk: Default::default(),
        metrics_file: None,
        aws_endpoint: None,
        sync_pollers: devkit::poller::DEFAULT_POLLERS,
    })
    .await
    .expect("local stack starts");
    let sdk = devkit::emulator::sdk_config_for(stack.endpoint()).await;
    TestStack {
        stack,
        sdk,
        http: devkit::http_client(),
    }
}

impl TestStack {
    /// The local Clerk the stack runs (no real Clerk settings are given in these tests).
    fn clerk(&self) -> std::sync::Arc<local_stack::clerk::LocalClerk> {
        self.stack
            .local_clerk
            .clone()
            .expect("the local Clerk runs")
    }

    /// `GET /v1/users/me` through the gateway with a local-Clerk session token for `user_id`.
    async fn get_me_as(&self, user_id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/users/me", self.stack.base_url()))
            .bearer_auth(self.clerk().keys.mint(user_id))
            .send()
            .await
            .unwrap()
    }

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
    let stack = spawn_stack(false).await;
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
    let stack = spawn_stack(true).await;
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

impl TestStack {
    /// Polls the users table until `accept` holds for the user's item, for at most 2 s (the
    /// issue's bound from webhook to table); returns the item and how long it took.
    async fn await_user(
        &self,
        id: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> (Value, std::time::Duration) {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.sdk);
        let start = std::time::Instant::now();
        loop {
            let item = dynamodb
                .get_item()
                .table_name(&self.stack.resources.names.users_table)
                .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item;
            if let Some(item) = item {
                let json: Value = serde_dynamo::from_item(item).unwrap();
                if accept(&json) {
                    return (json, start.elapsed());
                }
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "user {id} not in the expected state within 2 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn signed_user_events_flow_through_gateway_queue_and_sync_into_the_users_table() {
    let stack = spawn_stack(true).await;
    let id = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";

    let (status, _) = stack
        .post_webhook(DEV_WEBHOOK_SECRET, &devkit::fixture("user.created"))
        .await;
    assert_eq!(status, 202);
    let (created, took) = stack.await_user(id, |_| true).await;
    eprintln!("user.created: webhook to users table in {took:?}");
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["deleted"], false);

    let (status, _) = stack
        .post_webhook(DEV_WEBHOOK_SECRET, &devkit::fixture("user.updated"))
        .await;
    assert_eq!(status, 202);
    let (updated, took) = stack
        .await_user(id, |u| u["updated_at"] != created["updated_at"])
        .await;
    eprintln!("user.updated: webhook to users table in {took:?}");
    assert_eq!(updated["email_addresses"].as_array().unwrap().len(), 2);
    // Metadata is stored as its JSON text, so any JSON Clerk accepts fits.
    let private: serde_json::Value =
        serde_json::from_str(updated["private_metadata"].as_str().unwrap()).unwrap();
    assert!(private.is_object());

    let (status, _) = stack
        .post_webhook(DEV_WEBHOOK_SECRET, &devkit::fixture("user.deleted"))
        .await;
    assert_eq!(status, 202);
    let (deleted, took) = stack.await_user(id, |u| u["deleted"] == true).await;
    eprintln!("user.deleted: webhook to users table in {took:?}");
    assert!(
        deleted.get("email").is_none(),
        "personal fields wiped: {deleted}"
    );

    // A late redelivery of the update is logged stale and does not bring the user back.
    let (status, queued) = stack
        .post_webhook(DEV_WEBHOOK_SECRET, &devkit::fixture("user.updated"))
        .await;
    assert_eq!(status, 202);
    let log = clerk_sync::adapters::dynamodb::DynamoEventLog::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        &stack.stack.resources.names.event_log_table,
    );
    let svix_id = queued["id"].as_str().unwrap();
    let start = std::time::Instant::now();
    let record = loop {
        if let Some(record) = log.get(svix_id).await.unwrap() {
            break record;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(record.outcome.as_str(), "stale");
    let (still, _) = stack.await_user(id, |_| true).await;
    assert_eq!(still, deleted);
    stack.stack.stop().await;
}

#[tokio::test]
async fn a_new_users_life_is_readable_with_its_session_token_through_the_local_stack() {
    let stack = spawn_stack(true).await;
    let clerk = stack.clerk();

    let lines = local_stack::demo(&stack.stack.base_url(), DEV_WEBHOOK_SECRET, &clerk.keys)
        .await
        .expect("created, updated and deleted, each visible within 2 s");

    assert_eq!(lines.len(), 3);
    assert!(lines[2].contains("-> 404"), "{}", lines[2]);
    stack.stack.stop().await;
}

#[tokio::test]
async fn a_user_clerk_knows_is_readable_before_any_webhook_through_lazy_sync() {
    let stack = spawn_stack(false).await;
    let response = stack.get_me_as("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa").await;
    assert_eq!(response.status().as_u16(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ada@example.com");
    assert!(user.get("private_metadata").is_none());

    let health = stack
        .http
        .get(format!("{}/health", stack.stack.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let openapi: Value = stack
        .http
        .get(format!("{}/openapi.json", stack.stack.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    stack.stack.stop().await;
}

#[tokio::test]
async fn a_clerk_secret_key_given_to_the_stack_is_the_one_stored_and_the_one_the_api_calls_clerk_with()
 {
    let given = "sk_test_given_to_this_stack_only";
    let stack = spawn_stack_with(
        false,
        ClerkOptions {
            secret_key: Some(given.to_owned()),
            ..ClerkOptions::default()
        },
    )
    .await;
    let stored = aws_sdk_secretsmanager::Client::new(&stack.sdk)
        .get_secret_value()
        .secret_id(&stack.stack.resources.clerk_secret_key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.secret_string(), Some(given));
    // The local Clerk accepts only the given key, so lazy sync succeeding proves the api used it.
    let response = stack.get_me_as("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa").await;
    assert_eq!(response.status().as_u16(), 200);
    stack.stack.stop().await;
}

#[tokio::test]
async fn pending_sessions_are_read_by_default_and_refused_when_the_stack_is_told_to_refuse_them() {
    let user = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";
    let refusing = ClerkOptions {
        refuse_pending_sessions: Some("true".to_owned()),
        ..ClerkOptions::default()
    };
    for (clerk, pending_status) in [(ClerkOptions::default(), 200), (refusing, 401)] {
        let stack = spawn_stack_with(false, clerk).await;
        let keys = &stack.clerk().keys;
        let mut claims = keys.claims(user);
        claims["sts"] = "pending".into();
        let get_me = |token: String| {
            stack
                .http
                .get(format!("{}/v1/users/me", stack.stack.base_url()))
                .bearer_auth(token)
                .send()
        };
        let pending = get_me(keys.sign(&claims)).await.unwrap();
        assert_eq!(pending.status().as_u16(), pending_status);
        let active = get_me(keys.mint(user)).await.unwrap();
        assert_eq!(active.status().as_u16(), 200, "active sessions always read");
        stack.stack.stop().await;
    }
}

/// Runs the `smoke` binary against `stack`'s outputs, as `make smoke-local` does.
async fn smoke(stack: &TestStack, args: &[&str], token: Option<&str>) -> (i32, String) {
    let outputs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("outputs-{}.json", stack.stack.addr.port()));
    stack.stack.write_outputs_file(&outputs).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_smoke"));
    command.arg("--outputs").arg(&outputs).args(args);
    command
        .env_remove("SMOKE_TOKEN")
        .env_remove("SMOKE_WEBHOOK_SECRET")
        .stdin(std::process::Stdio::null());
    if let Some(token) = token {
        command.env("SMOKE_TOKEN", token);
    }
    let output = command.output().await.expect("the smoke binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

#[tokio::test]
async fn the_deploy_smoke_test_passes_against_the_local_stack_and_again_on_a_second_run() {
    let stack = spawn_stack(true).await;
    let clerk = stack.clerk();
    let token = clerk.keys.mint("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa");

    let args = ["--wait-seconds", "10", "--check-forgery"];
    let (code, out) = smoke(&stack, &args, Some(&token)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("passed: 5 of 5 checks (0 skipped)"), "{out}");
    assert!(
        out.contains("forged webhook refused   401 invalid_signature"),
        "{out}"
    );
    assert!(out.contains("event log: applied"), "{out}");
    assert!(
        out.contains("200 in") && out.contains("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa"),
        "{out}"
    );

    // The smoke user is a tombstone now; a second run finds it so and still passes.
    let (code, out) = smoke(&stack, &["--wait-seconds", "10"], None).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("passed: 3 of 4 checks (1 skipped)"), "{out}");
    assert!(out.contains("skip  users/me"), "{out}");
    assert!(
        out.contains("event log: duplicate") || out.contains("event log: stale"),
        "{out}"
    );
    stack.stack.stop().await;
}

#[tokio::test]
async fn the_deploy_smoke_test_fails_on_a_wrong_secret_a_foreign_token_or_a_stopped_sync() {
    let stack = spawn_stack(false).await;
    let foreign = devkit::tokens::DevKeys::generate().mint("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa");
    let other_secret = "whsec_YW5vdGhlci1lbmRwb2ludHMtc2VjcmV0LW5vdC10aGlz";

    let (code, out) = smoke(&stack, &["--webhook-secret", other_secret], Some(&foreign)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  users/me"), "{out}");
    assert!(
        out.contains("expected 200 for user_35kQ7zvT0cWnHq1d2xXy9RbLmAa, got 401"),
        "{out}"
    );
    assert!(out.contains("FAIL  webhook round trip"), "{out}");
    assert!(out.contains("expected 202 queued, got 401"), "{out}");
    assert!(out.contains("FAILED: 2 of 4 checks"), "{out}");
    assert!(stack.take_messages().await.is_empty(), "nothing was queued");

    // The right secret, but nothing feeds the queue to the sync function.
    let (code, out) = smoke(&stack, &["--wait-seconds", "1"], None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("had no record of it after 1 s"), "{out}");
    assert_eq!(stack.take_messages().await.len(), 1, "queued, not lost");
    stack.stack.stop().await;
}

#[tokio::test]
async fn browsers_on_the_authorized_frontends_get_cors_and_other_origins_do_not() {
    let stack = spawn_stack(false).await;
    let clerk = stack.clerk();
    let me = format!("{}/v1/users/me", stack.stack.base_url());
    let preflight = |origin: &'static str| {
        stack
            .http
            .request(reqwest::Method::OPTIONS, &me)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    let allowed = preflight(devkit::tokens::LOCAL_AZP).await.unwrap();
    assert_eq!(allowed.status().as_u16(), 204);
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], devkit::tokens::LOCAL_AZP);
    assert_eq!(h["access-control-allow-methods"], "GET");
    assert_eq!(h["access-control-allow-headers"], "authorization");
    assert_eq!(h["access-control-max-age"], "600");

    let foreign = preflight("https://evil.example").await.unwrap();
    assert_eq!(foreign.status().as_u16(), 204);
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let read = |origin: &'static str| {
        stack
            .http
            .get(&me)
            .header("origin", origin)
            .bearer_auth(clerk.keys.mint("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa"))
            .send()
    };
    let response = read(devkit::tokens::LOCAL_AZP).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        devkit::tokens::LOCAL_AZP
    );
    assert_eq!(
        response.headers()["access-control-expose-headers"],
        "retry-after,www-authenticate"
    );
    let response = read("https://evil.example").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    stack.stack.stop().await;
}
