//! Reconcile: each drift class found; `--fix` repairs with the ordering rules; without `--fix`
//! nothing is written.

use clerk_sync::domain::event_log::Source;
use clerk_sync::domain::user::UserId;
use clerk_sync::ports::UserStore;
use clerk_sync_ops::clerk::ClerkClient;
use clerk_sync_ops::exit;
use clerk_sync_ops::reconcile::{self, Drift, Options};
use clerk_sync_ops::write::Writer;
use std::sync::Arc;

use crate::support::{Harness, deleted, generated_id, generated_updated_at, upsert};

const CLERK_USERS: usize = 20;
const OLDER: usize = 5;
const TOMBSTONED: usize = 7;
const MISSING: [usize; 2] = [18, 19];
const GONE: &str = "user_gone0000001";

/// Clerk's 20 users; the table with two missing, one older, one tombstoned, and one user Clerk
/// no longer has.
async fn drifted() -> Harness {
    let h = Harness::start("reconcile", CLERK_USERS, 0).await;
    for n in 0..CLERK_USERS {
        if MISSING.contains(&n) {
            continue;
        }
        let at = generated_updated_at(n) - if n == OLDER { 1_000 } else { 0 };
        h.webhook(&upsert(&generated_id(n), at), &format!("msg_{n}"))
            .await;
    }
    h.webhook(&deleted(&generated_id(TOMBSTONED), 1), "msg_del")
        .await;
    h.webhook(&upsert(GONE, 5), "msg_gone").await;
    h
}

fn writer(h: &Harness, dry_run: bool) -> Writer {
    Writer::new(
        h.users(),
        Arc::new(h.target.event_log()),
        Source::Reconcile,
        Writer::new_run_id(),
        30,
    )
    .dry_run(dry_run)
}

/// One reconcile of the harness's users table against `clerk` (`dry_run`: nothing written).
async fn reconcile_with(
    h: &Harness,
    clerk: &ClerkClient,
    dry_run: bool,
    options: &Options,
) -> reconcile::Report {
    let d = h.target.dynamodb();
    reconcile::run(
        clerk,
        &d,
        &h.resources.names.users_table,
        &writer(h, dry_run),
        options,
    )
    .await
    .unwrap()
}

fn options(fix: bool, sample: Option<usize>) -> Options {
    Options {
        sample,
        fix,
        progress: false,
        show: 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_drift_class_is_found_and_nothing_is_written_without_fix() {
    let h = drifted().await;
    let clerk = h.clerk_client().await;
    let (table, log) = (h.table().await, h.log().await.len());

    let report = reconcile_with(&h, &clerk, false, &options(false, None)).await;
    assert_eq!(
        report.drift,
        Drift {
            missing: MISSING.iter().map(|&n| generated_id(n)).collect(),
            older: vec![generated_id(OLDER)],
            absent_from_clerk: vec![GONE.to_owned()],
            tombstoned_but_in_clerk: vec![generated_id(TOMBSTONED)],
        }
    );
    assert_eq!(report.exit_code(), exit::DRIFT);
    assert!(
        report.summary().contains(
            "2 missing, 1 older, 1 absent from Clerk, 1 tombstoned but in Clerk; nothing written"
        ),
        "{}",
        report.summary()
    );
    assert!(report.lines(20)[0].contains(&generated_id(18)));

    // A sample checks table users by id: it sees older and absent, never missing.
    let sampled = reconcile_with(&h, &clerk, false, &options(false, Some(100))).await;
    assert!(sampled.drift.missing.is_empty());
    assert_eq!(sampled.drift.older, vec![generated_id(OLDER)]);
    assert_eq!(sampled.drift.absent_from_clerk, vec![GONE.to_owned()]);

    // --fix --dry-run says what it would repair, and writes nothing either.
    let dry = reconcile_with(&h, &clerk, true, &options(true, None)).await;
    let fixed = dry.fixed.as_ref().unwrap();
    assert_eq!((fixed.written, fixed.failed), (4, 0), "{}", dry.summary());
    assert_eq!(h.table().await, table, "no user item changed");
    assert_eq!(h.log().await.len(), log, "no event-log record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_repairs_every_class_with_the_ordering_rules_and_tombstones_users_gone_from_clerk() {
    let h = drifted().await;
    let clerk = h.clerk_client().await;
    let report = reconcile_with(&h, &clerk, false, &options(true, None)).await;
    let fixed = report.fixed.as_ref().unwrap();
    assert_eq!((fixed.written, fixed.unchanged, fixed.failed), (4, 0, 0));
    assert_eq!(report.exit_code(), exit::OK);

    let table = h.table().await;
    for n in MISSING.into_iter().chain([OLDER]) {
        let b = &table[&generated_id(n)];
        assert_eq!(b.updated_at, Some(generated_updated_at(n)), "{n}");
        assert!(
            b.writer
                .as_deref()
                .is_some_and(|w| w.starts_with("reconcile:"))
        );
    }
    assert!(table[GONE].deleted, "absent from Clerk: a tombstone now");
    assert!(
        table[&generated_id(TOMBSTONED)].deleted,
        "never resurrected"
    );
    assert_eq!(h.log_of(Source::Reconcile).await.len(), 4);
    assert!(
        h.target
            .users()
            .get(&UserId::parse(GONE).unwrap())
            .await
            .unwrap()
            .is_some_and(|s| s.version() == clerk_sync::domain::user::Version::Deleted)
    );

    // Afterwards only the tombstone Clerk still has is reported; it is not drift --fix repairs.
    let again = reconcile_with(&h, &clerk, false, &options(false, None)).await;
    assert_eq!(again.drift.repairable(), 0, "{}", again.summary());
    assert_eq!(
        again.drift.tombstoned_but_in_clerk,
        vec![generated_id(TOMBSTONED)]
    );
    assert_eq!(again.exit_code(), exit::OK);
}
