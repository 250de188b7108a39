//! The README's *Try it locally* walkthrough, run as written: each command of its block (read
//! from the README by `local_stack::walkthrough`), in order, through `make` and the real
//! Makefile, against a fresh local stack, must succeed and show every fragment its comment says
//! it shows, ending with the smoke test passing.
//!
//! The stack runs in this process; its files go to a folder of this test's (`LOCAL_STATE_DIR`,
//! which the Makefile and devtool honour) instead of `.local/`, so a developer's running stack is
//! left alone.

use std::time::{Duration, Instant};

use devkit::resources::Names;
use devkit::signing::DEV_WEBHOOK_SECRET;
use local_stack::walkthrough::Step;
use local_stack::{ClerkOptions, Stack, StackOptions};

/// Commands that only read: retried for a few seconds, since the sync function applies events
/// asynchronously (tens of milliseconds after their 202).
fn reads_only(command: &str) -> bool {
    [
        "make me",
        "make user",
        "make events",
        "make queue",
        "make get",
        "tail ",
    ]
    .iter()
    .any(|p| command.starts_with(p))
}

async fn run(step: &Step, state_dir: &str) -> (bool, String) {
    let command = step.command.replace(".local/", &format!("{state_dir}/"));
    let output = tokio::process::Command::new("bash")
        .args(["-c", &command])
        .current_dir(devkit::workspace_root())
        .env("LOCAL_STATE_DIR", state_dir)
        // cargo's jobserver is not this make's.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("SMOKE_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn the_readme_walkthrough_shows_what_each_step_says_and_ends_with_the_smoke_test_passing() {
    let steps = local_stack::walkthrough::steps();
    assert!(steps.len() >= 10, "the README has its walkthrough");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("walkthrough-{}", devkit::signing::new_svix_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = Stack::start(StackOptions {
        port: 0,
        webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
        names: Names::unique("walk"),
        sync: true,
        clerk: ClerkOptions::default(),
        local_clerk: Default::default(),
        metrics_file: Some(dir.join("metrics.jsonl")),
        aws_endpoint: None,
        sync_pollers: devkit::poller::DEFAULT_POLLERS,
    })
    .await
    .expect("local stack starts");
    stack.write_env_file(&dir.join("lambda.env")).unwrap();
    stack
        .write_outputs_file(&dir.join("stack-outputs.json"))
        .unwrap();
    (stack.local_clerk.as_ref().expect("the local Clerk"))
        .write_key_file_at(&dir.join("clerk-dev-key.json"))
        .unwrap();
    let state_dir = dir.to_str().expect("a UTF-8 path").to_owned();

    for step in &steps {
        let started = Instant::now();
        loop {
            let (ok, text) = run(step, &state_dir).await;
            let missing: Vec<_> = step.shows.iter().filter(|s| !text.contains(**s)).collect();
            if ok && missing.is_empty() {
                break;
            }
            let retry = reads_only(step.command) && started.elapsed() < Duration::from_secs(10);
            assert!(
                retry,
                "step `{}` {}; missing {missing:?}:\n{text}",
                step.command,
                if ok { "succeeded" } else { "failed" }
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
