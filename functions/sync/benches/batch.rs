//! A batch of 10 `user.updated` messages through the sync worker, happy path (each one newer than
//! the stored user, so each is applied and logged).
//!
//! - criterion, `sync/batch_of_10_user_updated`: the whole pipeline (SQS message decoding,
//!   parsing, ordering decision, concurrent processing, log record) with the store behind its
//!   port (the in-memory store), i.e. the CPU cost outside the network. Divide by 10 per message.
//! - `sync/user_item_mapping`: the DynamoDB adapter's item mapping of one user (serde_dynamo),
//!   the part of a real write's CPU the in-memory store does not do.
//! - then, with `cargo bench` only: the write requests per message, and the process CPU time per
//!   message against DynamoDB in the local emulator (a separate process), which adds the real
//!   adapter, the SDK's request serialisation and signing, and the HTTP client.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_lambda_events::event::sqs::SqsEvent;
use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore, user_item};
use clerk_sync::adapters::memory::MemoryStore;
use clerk_sync::domain::user::{Stored, UserEvent};
use criterion::{BatchSize, Criterion};
use sync::SyncWorker;

const BATCH: usize = 10;

/// Ten `user.updated` messages for ten users, each newer than the last round's.
fn batch(round: i64, namespace: &str) -> SqsEvent {
    let messages = (0..BATCH)
        .map(|i| {
            let body = devkit::clerk::user_upsert(
                "user.updated",
                &format!("user_{namespace}{i}"),
                1_764_072_060_000 + round,
            );
            let svix_id = format!("msg_{namespace}{round}x{i}");
            devkit::sqs_event::message(&format!("m-{svix_id}"), &svix_id, &body, 1)
        })
        .collect();
    devkit::sqs_event::event(messages)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pipeline(c: &mut Criterion) -> (u64, u64) {
    let rt = runtime();
    let store = Arc::new(MemoryStore::default());
    let worker = SyncWorker::new(store.clone(), store.clone(), 30);
    let round = AtomicI64::new(0);
    let mut group = c.benchmark_group("sync");
    group.bench_function("batch_of_10_user_updated", |b| {
        b.iter_batched(
            || batch(round.fetch_add(1, Ordering::Relaxed), ""),
            |event| {
                let response = rt.block_on(worker.process_batch(black_box(&event)));
                assert!(response.batch_item_failures.is_empty());
                response
            },
            BatchSize::SmallInput,
        )
    });
    let UserEvent::Upsert(profile) =
        UserEvent::parse(&devkit::clerk::user_upsert("user.updated", "user_1", 1)).unwrap()
    else {
        unreachable!("an upsert")
    };
    let stored = Stored::Live(profile);
    group.bench_function("user_item_mapping", |b| {
        b.iter(|| user_item(black_box(&stored), "msg_1", 1).unwrap())
    });
    group.finish();
    let messages = round.load(Ordering::Relaxed) as u64 * BATCH as u64;
    (store.writes(), messages)
}

/// User + system CPU time of this process, in microseconds.
fn process_cpu_micros() -> i64 {
    cpu_micros(libc::RUSAGE_SELF)
}

fn cpu_micros(who: libc::c_int) -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

fn against_emulator(rounds: i64) {
    let rt = runtime();
    rt.block_on(async {
        let sdk = devkit::emulator::Emulator::shared().sdk_config().await;
        let resources = devkit::resources::provision(
            &sdk,
            devkit::resources::Names::unique("bench"),
            devkit::signing::DEV_WEBHOOK_SECRET,
        )
        .await
        .unwrap();
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let worker = SyncWorker::new(
            Arc::new(DynamoUserStore::new(
                client.clone(),
                &resources.names.users_table,
            )),
            Arc::new(DynamoEventLog::new(
                client,
                &resources.names.event_log_table,
            )),
            30,
        );
        // Warm up: connections, first users.
        for round in 0..5 {
            worker.process_batch(&batch(round, "e")).await;
        }
        let events: Vec<SqsEvent> = (5..5 + rounds).map(|r| batch(r, "e")).collect();
        let (cpu, wall) = (process_cpu_micros(), std::time::Instant::now());
        for event in &events {
            let response = worker.process_batch(event).await;
            assert!(response.batch_item_failures.is_empty());
        }
        let cpu = process_cpu_micros() - cpu;
        let messages = rounds * BATCH as i64;
        println!(
            "against DynamoDB in the emulator: {messages} messages, {:.1} µs process CPU per \
             message (wall {:.2} ms per batch of {BATCH}, emulator time included). An upper \
             bound: the emulator closes every connection, so each request also pays a TCP \
             connect and a resolver lookup that a warm Lambda's pooled connection does not.",
            cpu as f64 / messages as f64,
            wall.elapsed().as_secs_f64() * 1000.0 / rounds as f64,
        );
    });
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let (writes, messages) = pipeline(&mut criterion);
    criterion.final_summary();
    // `cargo test --all-targets` runs benches once in test mode; the rest is for `cargo bench`.
    if std::env::args().any(|a| a == "--bench") {
        println!(
            "write requests per message (happy path): {:.2} ({writes} for {messages} messages)",
            writes as f64 / messages as f64
        );
        against_emulator(200);
    }
}
