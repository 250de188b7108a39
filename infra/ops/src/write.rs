//! The one write every command makes: a user event applied with the sync function's own
//! conditional write ([`UserStore::apply`]: never over a newer record, never over a tombstone),
//! and an event-log record of it with the command's [`Source`]. A dry run asks the domain's
//! [`Precondition`] of the stored record instead of writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clerk_sync::clock::now_ms;
use clerk_sync::domain::event_log::{LogRecord, Source};
use clerk_sync::domain::ordering::Precondition;
use clerk_sync::domain::outcome::{Failure, Outcome};
use clerk_sync::domain::user::{UserEvent, UserId};
use clerk_sync::ports::{EventLog, UserStore};
use clerk_sync::telemetry::error_chain;

/// What became of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Stored (or already stored by this very run: a resumed page).
    Applied,
    /// Refused: the table holds something newer, or a tombstone.
    Stale,
    /// Refused: the table already holds exactly this.
    Duplicate,
    /// Dry run: the write would go ahead.
    WouldApply,
    /// Dry run: the write would be refused.
    WouldSkip,
    /// Not stored; the reason, without personal data.
    Failed(String),
}

impl Written {
    /// Whether anything was (or, in a dry run, would be) written.
    pub fn writes(&self) -> bool {
        matches!(self, Self::Applied | Self::WouldApply)
    }
}

/// Applies user events for one run of one command.
pub struct Writer {
    users: Arc<dyn UserStore>,
    log: Arc<dyn EventLog>,
    source: Source,
    run: String,
    retention_days: u32,
    dry_run: bool,
    unlogged: AtomicU64,
}

/// Tries of a write whose failure a retry may fix (the SDK has retried each already).
const ATTEMPTS: u32 = 3;

impl Writer {
    /// `run` makes the writer ids of this run unique; a resumed run keeps its run id, so a user
    /// it already wrote reads as its own write.
    pub fn new(
        users: Arc<dyn UserStore>,
        log: Arc<dyn EventLog>,
        source: Source,
        run: impl Into<String>,
        retention_days: u32,
    ) -> Self {
        Self {
            users,
            log,
            source,
            run: run.into(),
            retention_days,
            dry_run: false,
            unlogged: AtomicU64::new(0),
        }
    }

    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// A fresh run id.
    pub fn new_run_id() -> String {
        format!("{:016x}", fastrand::u64(..))
    }

    /// The writer id of this run's write of `user`: the event-log key of its record.
    pub fn writer_id(&self, user: &UserId) -> String {
        format!(
            "{}{}:{}",
            self.source.writer_prefix(),
            self.run,
            user.as_str()
        )
    }

    /// Writes that were stored but whose event-log record could not be (logged as errors).
    pub fn unlogged(&self) -> u64 {
        self.unlogged.load(Ordering::Relaxed)
    }

    pub async fn write(&self, event: &UserEvent) -> Written {
        let id = event.user_id();
        if self.dry_run {
            return match self.users.get(id).await {
                Ok(current) => {
                    let version = current.as_ref().map(|s| s.version());
                    if Precondition::of(event).holds(version) {
                        Written::WouldApply
                    } else {
                        Written::WouldSkip
                    }
                }
                Err(e) => Written::Failed(error_chain(&e)),
            };
        }
        let writer = self.writer_id(id);
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.users.apply(event, &writer, now_ms()).await {
                Err(e) if e.retryable && attempt < ATTEMPTS => continue,
                result => break result.map_err(Failure::from),
            }
        };
        // Only a write (or a failed one) is recorded: a refused write changed nothing, so a
        // re-run leaves no trace.
        if matches!(result, Ok(Outcome::Applied) | Err(_)) {
            let record = LogRecord::direct(
                self.source,
                &writer,
                id,
                &result,
                now_ms(),
                self.retention_days,
            );
            if let Err(e) = self.log.record(&record).await {
                self.unlogged.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %error_chain(&e), writer, "write not recorded in the event log");
            }
        }
        match result {
            Ok(Outcome::Applied) => Written::Applied,
            Ok(Outcome::Stale) => Written::Stale,
            Ok(Outcome::Duplicate) => Written::Duplicate,
            Ok(other) => Written::Failed(format!("unexpected outcome {}", other.as_str())),
            Err(failure) => Written::Failed(failure.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use clerk_sync::adapters::memory::MemoryStore;

    use super::*;

    fn upsert(id: &str, updated_at: i64) -> UserEvent {
        let body = devkit::clerk::user_upsert("user.updated", id, updated_at);
        UserEvent::parse(&body).unwrap()
    }

    fn writer(store: &Arc<MemoryStore>, dry_run: bool) -> Writer {
        Writer::new(store.clone(), store.clone(), Source::Backfill, "run1", 30).dry_run(dry_run)
    }

    #[tokio::test]
    async fn a_write_is_logged_with_its_source_and_a_refused_one_leaves_no_trace() {
        let store = Arc::new(MemoryStore::default());
        let w = writer(&store, false);
        assert_eq!(w.write(&upsert("user_a", 10)).await, Written::Applied);
        let id = UserId::parse("user_a").unwrap();
        let record = store.log_record(&w.writer_id(&id)).expect("logged");
        assert_eq!(record.source, Source::Backfill);
        assert_eq!(record.outcome, Outcome::Applied);
        assert!(w.writer_id(&id).starts_with("backfill:run1:"));

        let writes = store.writes();
        let again = Writer::new(store.clone(), store.clone(), Source::Backfill, "run2", 30);
        assert_eq!(again.write(&upsert("user_a", 10)).await, Written::Duplicate);
        assert_eq!(again.write(&upsert("user_a", 9)).await, Written::Stale);
        // Two refused user writes, no log record.
        assert_eq!(store.writes(), writes + 2);
        assert!(store.log_record(&again.writer_id(&id)).is_none());
    }

    #[tokio::test]
    async fn a_dry_run_writes_nothing_and_says_what_the_ordering_rule_would_do() {
        let store = Arc::new(MemoryStore::default());
        writer(&store, false).write(&upsert("user_a", 10)).await;
        let writes = store.writes();
        let dry = writer(&store, true);
        assert_eq!(dry.write(&upsert("user_a", 11)).await, Written::WouldApply);
        assert_eq!(dry.write(&upsert("user_a", 10)).await, Written::WouldSkip);
        assert_eq!(dry.write(&upsert("user_b", 1)).await, Written::WouldApply);
        assert_eq!(store.writes(), writes);
    }
}
