//! What each run adds to the reconcile function's metrics document (the names the template's
//! alarm and dashboard read).

use clerk_sync::telemetry::metrics::Document;
use clerk_sync_ops::reconcile::Report;

/// Users compared: the sample, or every user in Clerk or the table.
pub const CHECKED: &str = "Checked";
/// In Clerk, not in the table (full runs only: a sample starts from the table).
pub const MISSING: &str = "DriftMissing";
/// In both, the table's state older than Clerk's.
pub const OLDER: &str = "DriftOlder";
/// Live in the table, gone from Clerk (a deletion never delivered).
pub const ABSENT: &str = "DriftAbsentFromClerk";
/// A tombstone in the table, live in Clerk: reported, never repaired.
pub const TOMBSTONE_IN_CLERK: &str = "DriftTombstoneInClerk";
/// The classes a fix repairs, together: what the drift alarm watches.
pub const DRIFT: &str = "DriftFound";
/// Users written by a fix.
pub const REPAIRED: &str = "Repaired";
/// Users a fix could not write.
pub const NOT_REPAIRED: &str = "RepairFailed";
/// A run that stopped before its report (Clerk or DynamoDB unreachable, the key refused).
pub const RUN_FAILED: &str = "RunFailed";
/// Every metric the reconcile function reports.
pub const METRICS: &[&str] = &[
    CHECKED,
    MISSING,
    OLDER,
    ABSENT,
    TOMBSTONE_IN_CLERK,
    DRIFT,
    REPAIRED,
    NOT_REPAIRED,
    RUN_FAILED,
];

pub fn checked(report: &Report) -> u64 {
    match report.sampled {
        Some(_) => report.clerk_users,
        None => report.clerk_users + report.drift.absent_from_clerk.len() as u64,
    }
}

/// One run's counts, each class even when zero (an alarm then sees 0, not missing data).
pub fn run(document: &mut Document<'_>, report: &Report) {
    let d = &report.drift;
    document
        .count(CHECKED, checked(report))
        .count(OLDER, d.older.len() as u64)
        .count(ABSENT, d.absent_from_clerk.len() as u64)
        .count(TOMBSTONE_IN_CLERK, d.tombstoned_but_in_clerk.len() as u64)
        .count(DRIFT, d.repairable() as u64);
    if report.sampled.is_none() {
        document.count(MISSING, d.missing.len() as u64);
    }
    if let Some(fixed) = &report.fixed {
        document
            .count(REPAIRED, fixed.written)
            .count(NOT_REPAIRED, fixed.failed);
    }
}
