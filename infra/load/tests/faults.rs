//! The load test under faults, at a reduced size, inside `make test`: with a fault proxy between
//! the stack and the emulator (throttling, 5xx, connection resets before and after forwarding,
//! an outage window) nothing is lost and every 2xx was queued; a poison message reaches the
//! dead-letter queue and, once its cause is fixed, is redriven and applied once.

use std::time::Duration;

use clerk_sync::domain::outcome::Outcome;
use clerk_sync_ops::aws::dead_letters::Queues;
use clerk_sync_ops::redrive::{self, Method};
use load::Options;
use load::faults::{Plan, Refuse};
use load::harness::{Harness, Setup};
use load::model::{Final, Model, Size};
use load::sender::Retry;

const SIZE: Size = Size {
    users: 30,
    deliveries: 300,
    duplicate_percent: 10,
    delete_percent: 20,
    seed: 5,
};

fn options(size: Size) -> Options {
    Options {
        size,
        concurrency: 16,
        retry: Retry {
            first: Duration::from_millis(50),
            max: Duration::from_millis(500),
            give_up_after: size.patience(),
        },
        converge_timeout: size.patience(),
    }
}

/// `visibility` must outlast the slowest batch: a message still being processed when it becomes
/// visible again is received again, and after 5 receives it is dead-lettered though it was
/// applied (the template's 180 s is 6 × the sync function's timeout). At full size, on 2 starved
/// cores, 2 s dead-lettered 4 of 5,000 messages that way (`make load-faults` runs with 10 s).
async fn harness(seed: u64, visibility: u32) -> Harness {
    Harness::start(Setup {
        faults: true,
        visibility_timeout_seconds: Some(visibility),
        seed,
        ..Setup::default()
    })
    .await
    .expect("the stack starts behind the fault proxy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_5xx_resets_and_an_outage_lose_nothing_and_every_2xx_was_queued() {
    let size = SIZE.or_from_env();
    let h = harness(size.seed, 10).await;
    let proxy = h.proxy.as_ref().unwrap();
    let mixed = Plan {
        throttle_percent: 8,
        server_error_percent: 4,
        reset_before_percent: 3,
        reset_after_percent: 3,
        ..Plan::default()
    };
    proxy.set_plan(mixed.clone());
    let options = options(size);
    let run = load::run(&h.target, &options);
    let outage = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        proxy.set_plan(Plan {
            outage: true,
            ..Plan::default()
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        proxy.set_plan(mixed.clone());
    };
    let (outcome, ()) = tokio::join!(run, outage);
    let outcome = outcome.unwrap();
    proxy.set_plan(Plan::default());
    let injected = proxy.injected();
    println!("{}\ninjected: {injected:?}", outcome.report);

    assert!(outcome.verdict.converged(), "{}", outcome.verdict);
    assert_eq!(
        outcome.accepted, size.deliveries,
        "every delivery ends in a 2xx"
    );
    assert_eq!(
        proxy.sends_answered_ok(),
        outcome.accepted as u64,
        "each 2xx is one SendMessage the emulator acknowledged: a 2xx was queued, a failure was not answered 2xx"
    );
    assert!(
        outcome.report.attempts > size.deliveries,
        "some attempts failed and were retried: {:?}",
        outcome.report.answers
    );
    for kind in [
        "dynamodb throttled",
        "dynamodb 500",
        "sqs throttled",
        "sqs 500",
        "dynamodb reset after forwarding",
        "sqs reset after forwarding",
        "sqs reset before forwarding",
    ] {
        assert!(
            injected.get(kind).copied().unwrap_or(0) > 0,
            "{kind}: {injected:?}"
        );
    }
    assert!(
        injected.keys().any(|k| k.ends_with("outage")),
        "{injected:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_once_fixed_redriven_and_applied_once() {
    let size = Size {
        users: 10,
        deliveries: 60,
        seed: 9,
        ..SIZE
    }
    .or_from_env();
    let model = Model::generate(size);
    let (victim, newest) = model
        .finals()
        .into_iter()
        .find_map(|(id, f)| match f {
            Final::Live { svix_id, .. } => Some((id.to_owned(), svix_id)),
            Final::Deleted => None,
        })
        .unwrap();
    let victims_ids: Vec<&str> = model.histories[&victim]
        .iter()
        .map(|e| e.svix_id.as_str())
        .collect();
    // Each delivery is a message of its own, duplicates too: each is dead-lettered.
    let victims_messages = load::deliveries::plan(&model)
        .iter()
        .filter(|d| victims_ids.contains(&d.svix_id.as_str()))
        .count() as u64;

    // Its refusals are immediate (nothing to retry), so each dead letter takes 5 short waits.
    let h = harness(size.seed, 3).await;
    let proxy = h.proxy.as_ref().unwrap();
    proxy.set_plan(Plan {
        refuse: Some(Refuse {
            table: h.target.tables.users_table.clone(),
            user_id: victim.clone(),
        }),
        ..Plan::default()
    });
    let outcome = load::run(&h.target, &options(size)).await.unwrap();
    let verdict = outcome.verdict;
    assert_eq!(
        verdict.dead_lettered, victims_messages,
        "each delivery of the victim's events is dead-lettered: {verdict}"
    );
    assert_eq!(verdict.lost, std::slice::from_ref(&victim), "{verdict}");
    assert!(
        verdict.wrong.is_empty() && verdict.extra.is_empty(),
        "{verdict}"
    );
    let log = clerk_sync::adapters::dynamodb::DynamoEventLog::new(
        aws_sdk_dynamodb::Client::new(&h.target.sdk),
        &h.target.tables.event_log_table,
    );
    let record = log
        .get(&newest)
        .await
        .unwrap()
        .expect("the failure is logged");
    assert_eq!(record.outcome, Outcome::Failed);
    assert!(
        record
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("poison"),
        "{:?}",
        record.reason
    );

    // The cause is fixed; the operator redrives.
    proxy.set_plan(Plan::default());
    let resources = &h.stack.resources;
    let queues = Queues::new(
        aws_sdk_sqs::Client::new(&h.target.sdk),
        &resources.dead_letter_queue_url,
        &resources.queue_url,
    );
    let report = redrive::run(
        &queues,
        Some(&resources.dead_letter_queue_arn),
        &redrive::Options {
            method: Method::Auto,
            max: None,
            visibility: Duration::from_secs(30),
            dry_run: false,
            progress: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.moved, victims_messages, "{}", report.summary());

    let (verdict, _) = load::converge(&h.target, &model, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(verdict.converged(), "{verdict}");
    let record = log.get(&newest).await.unwrap().unwrap();
    assert_eq!(
        record.outcome,
        Outcome::Applied,
        "the failed record is replaced"
    );
    h.stop().await;
}
