//! `devtool` behaves like a good command-line tool: bad input, a missing fixture, a closed
//! stdout and a stack that is down each end in one clean message and a non-zero exit, never a
//! panic or a backtrace, even with `RUST_BACKTRACE=1`; an HTTP answer other than 2xx exits 1.

use std::process::{Command, Output, Stdio};

const DEVTOOL: &str = env!("CARGO_BIN_EXE_devtool");
/// A loopback port nothing listens on.
const DOWN: &str = "http://127.0.0.1:1";

fn devtool(args: &[&str]) -> Output {
    Command::new(DEVTOOL)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("CLERK_WEBHOOK_SECRET")
        .output()
        .expect("devtool runs")
}

/// Exit 1, and stderr one `devtool: …` line holding `message`, with no panic or backtrace.
fn assert_clean_failure(output: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("devtool: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    for noise in ["panicked", "backtrace", "Stack backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(noise), "{stderr}");
    }
}

#[test]
fn a_malformed_secret_is_refused_before_anything_is_sent() {
    let output = devtool(&["post", "user.created", "--secret", "nope", "--url", DOWN]);
    assert_clean_failure(&output, "the signing secret is not usable");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_missing_fixture_is_named_whether_absolute_relative_or_a_fixture_name() {
    assert_clean_failure(
        &devtool(&["post", "/no/such/event.json", "--url", DOWN]),
        "no file /no/such/event.json",
    );
    assert_clean_failure(
        &devtool(&["post", "no/such.json", "--url", DOWN]),
        "no file no/such.json",
    );
    assert_clean_failure(
        &devtool(&["event", "user.nosuch"]),
        "no fixture user.nosuch",
    );
}

#[test]
fn a_stack_that_is_down_says_to_start_it() {
    let output = devtool(&["get", "/health", "--anonymous", "--url", DOWN]);
    assert_clean_failure(&output, "is the local stack running? `make local`");
    let output = devtool(&["post", "user.created", "--url", DOWN]);
    assert_clean_failure(&output, "is the local stack running? `make local`");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_without_a_panic() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(DEVTOOL)
        .args(["event", "user.created"])
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("devtool runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[tokio::test]
async fn an_answer_other_than_2xx_exits_1_after_printing_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async {
        (
            http::StatusCode::NOT_FOUND,
            r#"{"error":{"code":"user_not_found"}}"#,
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let output = tokio::task::spawn_blocking(move || {
        devtool(&[
            "get",
            "/v1/users/me",
            "--token",
            "not-a-real-token",
            "--url",
            &url,
        ])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("-> 404 Not Found"), "{stdout}");
    assert!(stdout.contains("user_not_found"), "{stdout}");
    assert!(output.stderr.is_empty());
}

#[test]
fn version_and_every_subcommand_s_help_have_text_and_an_example() {
    let version = devtool(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("local-stack "));
    for subcommand in [
        "post",
        "event",
        "queue",
        "sqs-event",
        "token",
        "get",
        "api-event",
        "user",
        "events",
    ] {
        let help = devtool(&[subcommand, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{subcommand}");
        assert!(text.contains("Example"), "{subcommand}: {text}");
        for line in text.lines().filter(|l| l.trim_start().starts_with("--")) {
            let described = line.split_whitespace().count() > 2;
            assert!(described, "{subcommand}: an option without help: {line}");
        }
    }
}
