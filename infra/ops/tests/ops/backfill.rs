//! Backfill of 2,500 users over several pages, 429s in the middle, a crash and a Ctrl-C with
//! `--resume` after each; a newer webhook and a tombstone survive; a second run writes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clerk_sync::adapters::memory::MemoryStore;
use clerk_sync::domain::event_log::Source;
use clerk_sync::domain::user::Stored;
use clerk_sync_ops::backfill::{self, Options};
use clerk_sync_ops::checkpoint::Checkpoint;
use clerk_sync_ops::exit;

use crate::support::{Harness, deleted, generated_id, generated_updated_at, upsert};

const USERS: usize = 2_500;
const NEWER: usize = 10;
const TOMBSTONED: usize = 1_600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_and_an_interrupted_backfill_resume_to_exactly_clerks_users_keeping_newer_and_deleted_state()
 {
    let h = Harness::start("backfill", USERS, 4).await;
    // A webhook newer than Clerk's list has already landed for one user; another was deleted.
    let newer_at = generated_updated_at(NEWER) + 60_000;
    h.webhook(&upsert(&generated_id(NEWER), newer_at), "msg_newer")
        .await;
    h.webhook(&deleted(&generated_id(TOMBSTONED), 1), "msg_deleted")
        .await;

    let clerk = h.clerk_client().await;
    let path = h.checkpoint_path();
    let mut options = Options::new(path.clone());
    options.concurrency = 8;
    let run = |options: Options| {
        let clerk = &clerk;
        let users = h.users();
        let log = Arc::new(h.target.event_log());
        let table = h.resources.names.users_table.clone();
        async move { backfill::run(clerk, users, log, &table, 30, &options).await }
    };

    // 1. A crash: the run is dropped mid-flight once two pages are checkpointed.
    let started = Instant::now();
    let crashed = {
        let path = path.clone();
        let watcher = async move {
            loop {
                if let Ok(Some(c)) = Checkpoint::load(&path)
                    && c.pages >= 2
                {
                    return c;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::select! {
            report = run(options.clone()) => panic!("finished before the crash: {:?}", report.map(|r| r.summary())),
            checkpoint = watcher => checkpoint,
        }
    };
    assert!(!crashed.done);
    assert_eq!(crashed.counts.seen, 1_000, "two pages of 500");

    // 2. Resumed, then Ctrl-C after its first page: the page is finished and saved.
    let mut resumed = options.clone();
    resumed.resume = true;
    let stop = resumed.stop.clone();
    let stopper = {
        let path = path.clone();
        tokio::spawn(async move {
            loop {
                if Checkpoint::load(&path)
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.pages >= 3)
                {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let interrupted = run(resumed.clone()).await.expect("resumed run");
    stopper.await.unwrap();
    assert!(interrupted.interrupted, "{}", interrupted.summary());
    assert_eq!(interrupted.exit_code(), exit::INTERRUPTED);
    assert_eq!(
        interrupted.checkpoint.run, crashed.run,
        "a resumed run keeps its run id"
    );
    assert!(interrupted.checkpoint.counts.seen < USERS as u64);

    // 3. Resumed to the end.
    resumed.stop = Default::default();
    let done = run(resumed).await.expect("final run");
    let elapsed = started.elapsed();
    assert!(
        done.checkpoint.done && !done.interrupted,
        "{}",
        done.summary()
    );
    assert_eq!(done.exit_code(), exit::OK, "{}", done.summary());
    let counts = &done.checkpoint.counts;
    assert_eq!(
        counts.seen, USERS as u64,
        "every user counted once: {counts:?}"
    );
    assert_eq!(counts.applied, USERS as u64 - 2);
    assert_eq!(
        counts.stale, 2,
        "the newer webhook and the tombstone refused the write"
    );
    assert_eq!(counts.failed, 0);
    assert!(h.clerk.rate_limited() >= 2, "429s were served mid-way");
    assert!(
        elapsed >= Duration::from_secs(h.clerk.rate_limited()),
        "each Retry-After (1 s) was waited out: {elapsed:?} for {} 429s",
        h.clerk.rate_limited()
    );

    // The table holds exactly Clerk's users; the newer state and the tombstone survived.
    let table = h.table().await;
    let expected: BTreeSet<String> = (0..USERS).map(generated_id).collect();
    assert_eq!(table.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let newer = &table[&generated_id(NEWER)];
    assert_eq!(newer.updated_at, Some(newer_at));
    assert_eq!(newer.writer.as_deref(), Some("msg_newer"));
    let tomb = &table[&generated_id(TOMBSTONED)];
    assert!(tomb.deleted && tomb.writer.as_deref() == Some("msg_deleted"));
    let sample = &table[&generated_id(7)];
    assert_eq!(sample.updated_at, Some(generated_updated_at(7)));
    assert!(
        sample
            .writer
            .as_deref()
            .is_some_and(|w| w.starts_with(&format!("backfill:{}:", crashed.run))),
        "{sample:?}"
    );
    // One event-log record per written user, with the backfill source.
    let logged = h.log_of(Source::Backfill).await;
    assert_eq!(logged.len(), USERS - 2);
    assert!(logged.iter().all(|r| r.outcome.as_str() == "applied"));

    // A second run from scratch writes nothing new.
    let again = run(Options::new(h.checkpoint_path()))
        .await
        .expect("second run");
    let c = &again.checkpoint.counts;
    assert_eq!(
        (c.seen, c.applied, c.failed),
        (USERS as u64, 0, 0),
        "{}",
        again.summary()
    );
    assert_eq!(c.duplicate, USERS as u64 - 2);
    assert_eq!(
        h.table().await,
        table,
        "no item changed, not even its writer or sync time"
    );
    assert_eq!(h.log_of(Source::Backfill).await.len(), USERS - 2);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_dry_run_counts_what_would_be_written_and_writes_nothing() {
    let h = Harness::start("backfill-dry", 30, 0).await;
    h.webhook(
        &upsert(&generated_id(3), generated_updated_at(3) + 1),
        "msg_newer",
    )
    .await;
    let clerk = h.clerk_client().await;
    let mut options = Options::new(h.checkpoint_path());
    options.dry_run = true;
    options.page_size = 7;
    let report = backfill::run(
        &clerk,
        h.users(),
        Arc::new(h.target.event_log()),
        &h.resources.names.users_table,
        30,
        &options,
    )
    .await
    .unwrap();
    let c = &report.checkpoint.counts;
    assert_eq!(
        (c.seen, c.applied, c.stale),
        (30, 29, 1),
        "{}",
        report.summary()
    );
    assert!(
        report.summary().contains("29 would write"),
        "{}",
        report.summary()
    );
    assert_eq!(h.table().await.len(), 1);
    assert!(h.log().await.is_empty());
    assert!(
        !options.checkpoint.exists(),
        "a dry run saves no checkpoint"
    );
}

/// The command's own CPU per user, with the store behind its port (in memory) and Clerk in
/// another thread, so neither the emulator's nor the fake Clerk's cost is counted.
#[test]
fn backfill_cpu_per_user_with_the_store_in_memory_is_well_under_a_millisecond() {
    const N: usize = 10_000;
    let clerk_rt = tokio::runtime::Runtime::new().unwrap();
    let h = clerk_rt.block_on(Harness::start("backfill-cpu", N, 0));
    let url = h.clerk_url.clone();
    let store = Arc::new(MemoryStore::default());
    let (seen, cpu, wall) = {
        let store = store.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let clerk = clerk_sync_ops::clerk::ClerkClient::new(
                    &url,
                    devkit::resources::DEV_CLERK_SECRET_KEY.to_owned().into(),
                    10_000.0,
                )
                .unwrap();
                let options = Options::new(
                    std::env::temp_dir().join(format!("ops-cpu-{:x}.json", fastrand::u64(..))),
                );
                let before = clerk_sync_ops::cpu::thread_cpu();
                let start = Instant::now();
                let report = backfill::run(&clerk, store.clone(), store, "mem", 30, &options)
                    .await
                    .unwrap();
                let cpu = clerk_sync_ops::cpu::thread_cpu() - before;
                let _ = std::fs::remove_file(&options.checkpoint);
                (report.checkpoint.counts.seen, cpu, start.elapsed())
            })
        })
        .join()
        .unwrap()
    };
    assert_eq!(seen, N as u64);
    assert_eq!(store.users().len(), N);
    assert!(matches!(
        store.users().values().next(),
        Some(Stored::Live(_))
    ));
    let per_user = cpu.as_secs_f64() * 1e6 / N as f64;
    println!(
        "backfill, store in memory: {N} users, {:.0} µs CPU/user on the command's thread, {:.2} s wall, {:.0} users/s",
        per_user,
        wall.as_secs_f64(),
        N as f64 / wall.as_secs_f64()
    );
    assert!(per_user < 1_000.0, "{per_user} µs per user");
}
