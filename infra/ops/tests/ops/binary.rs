//! The binary as scripts use it: its help, its target files, one summary line, its exit codes.

use std::process::{Command, Output};

use crate::support::Harness;

pub fn ops() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clerk-sync-ops"));
    command
        .env_remove("CLERK_API_URL")
        .env_remove("CLERK_SECRET_KEY");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the binary runs");
    (status.code().unwrap_or(-1), text(&stdout), text(&stderr))
}

#[test]
fn every_subcommand_help_has_an_example_and_the_exit_codes() {
    for sub in ["backfill", "reconcile", "redrive", "inspect", "resync"] {
        let (code, help, _) = run(ops().args([sub, "--help"]));
        assert_eq!(code, 0, "{sub}");
        assert!(
            help.contains("Example:\n  clerk-sync-ops "),
            "{sub}: {help}"
        );
        assert!(
            help.contains("Exit codes:") && help.contains("130"),
            "{sub}"
        );
    }
    let (_, help, _) = run(ops().arg("--help"));
    assert!(help.contains("Exit codes:"));
    for writes in ["backfill", "reconcile", "redrive", "resync"] {
        let (_, help, _) = run(ops().args([writes, "--help"]));
        assert!(
            help.contains("--dry-run"),
            "{writes} writes: it has --dry-run"
        );
    }
}

#[test]
fn without_a_running_local_stack_it_says_so_and_exits_1() {
    let (code, stdout, stderr) = run(ops().args([
        "inspect",
        "msg_1",
        "--outputs",
        "/nonexistent/stack-outputs.json",
    ]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("make local"), "{stderr}");
}

#[test]
fn a_usage_error_exits_2() {
    let (code, _, _) = run(ops().args(["resync"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(ops().args(["backfill", "--env", "moon"]));
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_backfills_the_local_stack_from_its_files_and_prints_one_summary_line() {
    const USERS: usize = 2_500;
    let h = Harness::start("binary-backfill", USERS, 0).await;
    let outputs = h.local_stack_files();
    let checkpoint = h.checkpoint_path();
    let output = tokio::task::spawn_blocking(move || {
        run(ops().args([
            "backfill",
            "--outputs",
            outputs.to_str().unwrap(),
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--rate",
            "50",
        ]))
    })
    .await
    .unwrap();
    let (code, stdout, stderr) = output;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with("backfill: 2500 users seen, 2500 written, 0 already newer or deleted, 0 unchanged, 0 failed"),
        "{}",
        lines[0]
    );
    // The figures the README quotes: wall time, users/s, the binary's own CPU per user.
    println!("{}", lines[0]);
    assert_eq!(h.table().await.len(), USERS);
    assert!(
        !stderr.contains(devkit::resources::DEV_CLERK_SECRET_KEY),
        "no secret printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_of_an_unknown_user_exits_5_and_of_a_known_one_writes_it() {
    let h = Harness::start("binary-resync", 3, 0).await;
    let outputs = h.local_stack_files();
    let (code, stdout, _) = tokio::task::spawn_blocking(move || {
        run(ops().args([
            "resync",
            "--outputs",
            outputs.to_str().unwrap(),
            &crate::support::generated_id(1),
            "user_nobody",
        ]))
    })
    .await
    .unwrap();
    assert_eq!(code, 5, "{stdout}");
    assert!(stdout.contains("user_local0000001  written"), "{stdout}");
    assert!(stdout.contains("user_nobody  not in Clerk"), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("resync: 2 users, 1 written, 0 unchanged, 1 not in Clerk, 0 failed"),
        "{stdout}"
    );
    let table = h.table().await;
    assert_eq!(table.len(), 1);
    assert!(
        table[&crate::support::generated_id(1)]
            .writer
            .as_deref()
            .is_some_and(|w| w.starts_with("resync:"))
    );
    assert_eq!(
        h.log_of(clerk_sync::domain::event_log::Source::Resync)
            .await
            .len(),
        1
    );
}

#[test]
fn every_clerk_sync_ops_call_in_the_operations_doc_uses_flags_the_binary_has() {
    let doc = std::fs::read_to_string(devkit::workspace_root().join("docs/operations.md")).unwrap();
    let mut in_block = false;
    let mut calls = 0;
    for line in doc.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = trimmed.len() > 3;
            continue;
        }
        let Some(rest) = trimmed.strip_prefix("clerk-sync-ops ").filter(|_| in_block) else {
            continue;
        };
        let words: Vec<&str> = rest.split('#').next().unwrap().split_whitespace().collect();
        let (code, help, _) = run(ops().args([words[0], "--help"]));
        assert_eq!(code, 0, "{trimmed}: no subcommand {}", words[0]);
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{trimmed}: {} has no {flag}",
                words[0]
            );
        }
        calls += 1;
    }
    assert!(
        calls >= 8,
        "the doc's clerk-sync-ops calls were found ({calls})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_saves_the_checkpoint_exits_130_and_resume_finishes_the_backfill() {
    let h = Harness::start("binary-ctrl-c", 300, 0).await;
    let outputs = h.local_stack_files();
    let checkpoint = h.checkpoint_path();
    let args = |resume: bool| {
        let mut command = ops();
        command
            .args(["backfill", "--page-size", "50", "--rate", "4", "--outputs"])
            .arg(&outputs)
            .arg("--checkpoint")
            .arg(&checkpoint);
        if resume {
            command.arg("--resume");
        }
        command
    };
    let child = args(false)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while clerk_sync_ops::checkpoint::Checkpoint::load(&checkpoint)
        .ok()
        .flatten()
        .is_none_or(|c| c.pages < 1)
    {
        assert!(std::time::Instant::now() < deadline, "no page was saved");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // SAFETY: a plain kill(2) of the child we spawned, by its pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(stdout.starts_with("backfill INTERRUPTED"), "{stdout}");
    let saved = clerk_sync_ops::checkpoint::Checkpoint::load(&checkpoint)
        .unwrap()
        .unwrap();
    assert!(!saved.done && saved.counts.seen < 300, "{saved:?}");

    let mut resume = args(true);
    let resumed = tokio::task::spawn_blocking(move || run(&mut resume))
        .await
        .unwrap();
    assert_eq!(resumed.0, 0, "{}{}", resumed.1, resumed.2);
    assert!(
        resumed
            .1
            .starts_with("backfill: 300 users seen, 300 written"),
        "{}",
        resumed.1
    );
    assert_eq!(h.table().await.len(), 300);
}
