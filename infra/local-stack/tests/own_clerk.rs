//! The local stack with your own Clerk's token key and no Clerk secret key: lazy sync is off, so a
//! user the webhook has not brought is 404 without any call to Clerk; `/health` needs no token;
//! devtool reads with a token it is given.

use devkit::resources::Names;
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};
use devkit::tokens::{DevKeys, LOCAL_AZP, LOCAL_ISSUER};
use local_stack::{ClerkOptions, Stack, StackOptions};

const DEVTOOL: &str = env!("CARGO_BIN_EXE_devtool");

async fn devtool(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(DEVTOOL)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .await
        .expect("devtool runs")
}

#[tokio::test]
async fn with_your_clerk_and_no_secret_key_unknown_users_are_404_and_devtool_reads_with_a_given_token()
 {
    // "Your" Clerk: a key pair of this test's, and a Backend API nobody answers at.
    let keys = DevKeys::generate();
    let stack = Stack::start(StackOptions {
        port: 0,
        webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
        names: Names::unique("own-clerk"),
        sync: true,
        clerk: ClerkOptions {
            jwt_key: Some(keys.public_pem.clone()),
            issuer: Some(LOCAL_ISSUER.to_owned()),
            authorized_parties: Some(LOCAL_AZP.to_owned()),
            api_url: Some("http://127.0.0.1:1/v1".to_owned()),
            ..ClerkOptions::default()
        },
        local_clerk: Default::default(),
        metrics_file: None,
        aws_endpoint: None,
        sync_pollers: devkit::poller::DEFAULT_POLLERS,
    })
    .await
    .expect("local stack starts");
    assert!(stack.local_clerk.is_none());
    let base = stack.base_url();
    let http = devkit::http_client();

    // Unknown: 404 from the store, not 503 from calling an unreachable Clerk.
    let unknown = http
        .get(format!("{base}/v1/users/me"))
        .bearer_auth(keys.mint("user_2NeverSyncedAnywhere000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "user_not_found");

    // /health through devtool, with no token.
    let health = devtool(&["get", "/health", "--anonymous", "--url", &base]).await;
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    assert!(String::from_utf8_lossy(&health.stdout).contains("-> 200 OK"));

    // A synced user, read by devtool with the token it is given.
    let user = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";
    let body = devkit::fixture("user.created");
    let posted = http
        .post(format!("{base}/webhooks/clerk"))
        .headers(sign_now(DEV_WEBHOOK_SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 202);
    let token = keys.mint(user);
    let start = std::time::Instant::now();
    let read = loop {
        let read = devtool(&["get", "/v1/users/me", "--token", &token, "--url", &base]).await;
        if read.status.success() || start.elapsed() > std::time::Duration::from_secs(10) {
            break read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let stdout = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{stdout}");
    assert!(stdout.contains(user), "{stdout}");
    stack.stop().await;
}

#[tokio::test]
async fn devtool_signs_with_the_secret_the_running_stack_stores_without_it_in_the_shell() {
    // A secret of this stack's own, never exported: devtool must read it from the emulator.
    let secret = "whsec_dGhpcy1zdGFjay1vbmx5LW5vdC1leHBvcnRlZA==";
    let stack = Stack::start(StackOptions {
        port: 0,
        webhook_secrets: secret.to_owned(),
        names: Names::unique("stored-secret"),
        sync: false,
        clerk: ClerkOptions::default(),
        local_clerk: Default::default(),
        metrics_file: None,
        aws_endpoint: None,
        sync_pollers: devkit::poller::DEFAULT_POLLERS,
    })
    .await
    .expect("local stack starts");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stored-secret-{}", stack.addr.port()));
    stack.write_env_file(&dir.join("lambda.env")).unwrap();
    let output = tokio::process::Command::new(DEVTOOL)
        .args(["post", "user.created"])
        .env("LOCAL_STATE_DIR", &dir)
        .env_remove("CLERK_WEBHOOK_SECRET")
        .output()
        .await
        .expect("devtool runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("-> 202 Accepted"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
    stack.stop().await;
}
