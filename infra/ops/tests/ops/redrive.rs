//! Redrive against the emulator: dead letters (a poison message since fixed, a transient
//! failure) go back and apply; `--peek` lists them without personal data; a copier killed
//! midway (SIGKILL) loses nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::outcome::Outcome;
use clerk_sync::domain::user::UserId;
use clerk_sync::ports::EventLog;
use clerk_sync_ops::aws::dead_letters::Queues;
use clerk_sync_ops::redrive::{self, Method, Options};

use crate::binary::ops;
use crate::support::Harness;

fn queues(h: &Harness) -> Queues {
    Queues::new(
        aws_sdk_sqs::Client::new(&h.sdk),
        &h.resources.dead_letter_queue_url,
        &h.resources.queue_url,
    )
}

/// The record the sync function leaves for a message that failed its last attempt.
fn failed(svix_id: &str, user: &str, reason: &str) -> LogRecord {
    LogRecord {
        svix_id: svix_id.into(),
        message_id: "m".into(),
        source: Default::default(),
        event_type: Some("user.updated".into()),
        user_id: Some(UserId::parse(user).unwrap()),
        received_at: Some(1),
        processed_at: 2,
        attempts: 5,
        outcome: Outcome::Failed,
        reason: Some(reason.into()),
        expires_at: i64::MAX / 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_peeked_then_redriven_are_applied_by_the_sync_function() {
    let h = Harness::start("redrive", 0, 0).await;
    let dlq = h.resources.dead_letter_queue_url.clone();
    let transient = devkit::clerk::user_upsert("user.updated", "user_transient", 10);
    let poison = devkit::clerk::user_upsert("user.created", "user_poisoned", 20);
    h.enqueue(&dlq, "msg_transient", &transient).await;
    h.enqueue(&dlq, "msg_poison", &poison).await;
    let log = h.target.event_log();
    log.record(&failed(
        "msg_transient",
        "user_transient",
        "transient: dynamodb PutItem failed: throttled",
    ))
    .await
    .unwrap();
    log.record(&failed(
        "msg_poison",
        "user_poisoned",
        "poison: dynamodb PutItem refused the request",
    ))
    .await
    .unwrap();

    let q = queues(&h);
    let mut peeked = redrive::peek(&q, &log, 50).await.unwrap();
    peeked.sort_by(|a, b| a.svix_id.cmp(&b.svix_id));
    assert_eq!(peeked.len(), 2);
    assert_eq!(peeked[0].svix_id.as_deref(), Some("msg_poison"));
    assert_eq!(peeked[0].event_type.as_deref(), Some("user.created"));
    assert_eq!(peeked[0].user_id.as_deref(), Some("user_poisoned"));
    assert_eq!(peeked[0].attempts, Some(5));
    assert_eq!(
        peeked[0].last_reason.as_deref(),
        Some("poison: dynamodb PutItem refused the request")
    );
    assert_eq!(peeked[1].last_outcome.as_deref(), Some("failed"));
    for row in &peeked {
        let line = row.line();
        assert!(
            !line.contains("@example.com") && !line.contains("Version"),
            "no personal data: {line}"
        );
    }
    assert_eq!(
        q.depth(&dlq).await.unwrap(),
        (2, 0),
        "a peek puts them straight back"
    );

    let dry = redrive::run(
        &q,
        Some(&h.resources.dead_letter_queue_arn),
        &Options {
            method: Method::Auto,
            max: None,
            visibility: Duration::from_secs(30),
            dry_run: true,
            progress: false,
        },
    )
    .await
    .unwrap();
    assert_eq!((dry.before, dry.moved), (2, 0));
    assert_eq!(q.depth(&dlq).await.unwrap().0, 2);

    // The emulator has no StartMessageMoveTask: `auto` falls back to the copy.
    let report = redrive::run(
        &q,
        Some(&h.resources.dead_letter_queue_arn),
        &Options {
            method: Method::Auto,
            max: None,
            visibility: Duration::from_secs(30),
            dry_run: false,
            progress: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.method, "copy", "{}", report.summary());
    assert_eq!((report.moved, report.failed, report.undeleted), (2, 0, 0));
    assert_eq!(q.depth(&dlq).await.unwrap(), (0, 0));

    assert_eq!(h.sync_events_queue().await, 2);
    for (svix_id, user, at) in [
        ("msg_transient", "user_transient", 10),
        ("msg_poison", "user_poisoned", 20),
    ] {
        let record = log.get(svix_id).await.unwrap().unwrap();
        assert_eq!(
            record.outcome,
            Outcome::Applied,
            "{svix_id}: the failed record is replaced"
        );
        assert_eq!(h.table().await[user].updated_at, Some(at));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_killed_midway_leaves_every_message_on_one_queue_or_the_other() {
    const MESSAGES: usize = 600;
    let h = Harness::start("redrive-kill", 0, 0).await;
    let dlq = h.resources.dead_letter_queue_url.clone();
    let sqs = aws_sdk_sqs::Client::new(&h.sdk);
    let body = devkit::clerk::user_upsert("user.updated", "user_many", 1);
    let all: BTreeSet<String> = (0..MESSAGES).map(|n| format!("msg_kill{n:05}")).collect();
    for chunk in all.iter().collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&body)
                    .message_attributes(
                        clerk_sync::adapters::sqs::attributes::SVIX_ID,
                        aws_sdk_sqs::types::MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(id.as_str())
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&dlq)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    let q = queues(&h);
    assert_eq!(q.depth(&dlq).await.unwrap().0, MESSAGES as i64);

    let outputs = h.local_stack_files();
    let mut child = ops()
        .args([
            "redrive",
            "--method",
            "copy",
            "--visibility-timeout",
            "2",
            "--outputs",
        ])
        .arg(&outputs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (moved, _) = q.depth(&h.resources.queue_url).await.unwrap();
        if moved >= 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the redrive never started moving"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    // Whatever it held invisible comes back to the dead-letter queue after its timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let back_in_dlq = h.take_svix_ids(&dlq).await;
    let on_queue = h.take_svix_ids(&h.resources.queue_url).await;
    assert!(
        !back_in_dlq.is_empty(),
        "killed midway: some were still dead letters"
    );
    assert!(
        on_queue.len() < MESSAGES,
        "killed midway: not all were moved"
    );
    let found: BTreeSet<String> = back_in_dlq.iter().chain(&on_queue).cloned().collect();
    assert_eq!(found, all, "no message lost");
    let duplicates = back_in_dlq.len() + on_queue.len() - MESSAGES;
    println!(
        "killed redrive: {} on the events queue, {} back in the dead-letter queue, {duplicates} on both",
        on_queue.len(),
        back_in_dlq.len()
    );
}
