//! What each batch adds to the sync function's metrics document (the names the template's
//! alarms and dashboard read).

use clerk_sync::domain::outcome::{Failure, Outcome};
use clerk_sync::telemetry::metrics::Document;

pub const MESSAGES: &str = "Messages";
pub const APPLIED: &str = "MessagesApplied";
pub const STALE: &str = "MessagesStale";
pub const DUPLICATE: &str = "MessagesDuplicate";
pub const IGNORED: &str = "MessagesIgnored";
/// Messages reported as `batchItemFailures` (retried, then dead-lettered).
pub const FAILED: &str = "MessagesFailed";
pub const POISON: &str = "PoisonFailures";
pub const TRANSIENT: &str = "TransientFailures";
/// Messages in the invocation's batch (one value per invocation).
pub const BATCH_SIZE: &str = "BatchSize";
/// Milliseconds from the webhook queueing an event (SQS `SentTimestamp`) to it being applied.
pub const SYNC_LAG: &str = "SyncLag";
/// Every metric the sync function reports.
pub const METRICS: &[&str] = &[
    MESSAGES, APPLIED, STALE, DUPLICATE, IGNORED, FAILED, POISON, TRANSIENT, BATCH_SIZE, SYNC_LAG,
];

/// What became of one message, and its lag when it was applied.
pub struct Measured {
    pub result: Result<Outcome, Failure>,
    pub lag_ms: Option<i64>,
}

/// One batch: its size, each message by outcome or failure class, the lag of each applied one.
pub fn batch(document: &mut Document<'_>, messages: &[Measured]) {
    let size = messages.len() as u64;
    document.count(BATCH_SIZE, size);
    if size == 0 {
        return;
    }
    document.count(MESSAGES, size);
    for message in messages {
        let counted: &[&'static str] = match &message.result {
            Ok(Outcome::Applied) => &[APPLIED],
            Ok(Outcome::Stale) => &[STALE],
            Ok(Outcome::Duplicate) => &[DUPLICATE],
            Ok(Outcome::Ignored) => &[IGNORED],
            // Not an outcome `apply` returns; counted as what it says.
            Ok(Outcome::Failed) => &[FAILED],
            Err(Failure::Poison(_)) => &[FAILED, POISON],
            Err(Failure::Transient(_)) => &[FAILED, TRANSIENT],
        };
        for name in counted {
            document.count(name, 1);
        }
        if let Some(lag) = message.lag_ms {
            document.millis(SYNC_LAG, lag.max(0) as f64);
        }
    }
}
