//! In-memory [`UserStore`] and [`EventLog`] with the same semantics as the DynamoDB adapter, for
//! property tests of the sync pipeline and CPU benchmarks without a network. It evaluates the
//! domain's [`Precondition`] under its lock and explains refusals with the domain's [`Refusal`],
//! deciding nothing itself. It counts the writes it is asked for: each is one DynamoDB write
//! request in [`super::dynamodb`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::domain::event_log::LogRecord;
use crate::domain::ordering::{Precondition, Refusal};
use crate::domain::outcome::Outcome;
use crate::domain::user::{Stored, UserEvent, UserId};
use crate::ports::{DependencyError, EventLog, UserStore};

#[derive(Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<UserId, (Stored, String)>>,
    log: Mutex<HashMap<String, LogRecord>>,
    writes: AtomicU64,
}

impl MemoryStore {
    /// Write requests so far (user writes and log records).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub fn users(&self) -> HashMap<UserId, Stored> {
        let users = self.users.lock().expect("not poisoned");
        users
            .iter()
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect()
    }

    pub fn log_record(&self, svix_id: &str) -> Option<LogRecord> {
        self.log.lock().expect("not poisoned").get(svix_id).cloned()
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn apply(
        &self,
        event: &UserEvent,
        svix_id: &str,
        _now_ms: i64,
    ) -> Result<Outcome, DependencyError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut users = self.users.lock().expect("not poisoned");
        let current = users.get(event.user_id());
        if Precondition::of(event).holds(current.map(|(stored, _)| stored.version())) {
            users.insert(
                event.user_id().clone(),
                (event.stored(), svix_id.to_owned()),
            );
            return Ok(Outcome::Applied);
        }
        let (stored, stored_writer) = current.expect("a precondition holds when nothing is stored");
        Refusal::explain(stored.version(), Some(stored_writer), svix_id, event)
            .outcome()
            .ok_or_else(|| {
                // The lock makes this impossible; kept an error, as in DynamoDB, not a panic.
                DependencyError::new(
                    "memory",
                    "apply",
                    "refused a write the ordering rules allow",
                )
            })
    }

    async fn get(&self, id: &UserId) -> Result<Option<Stored>, DependencyError> {
        let users = self.users.lock().expect("not poisoned");
        Ok(users.get(id).map(|(s, _)| s.clone()))
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn record(&self, record: &LogRecord) -> Result<(), DependencyError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut log = self.log.lock().expect("not poisoned");
        let keep = log
            .get(&record.svix_id)
            .is_some_and(|r| r.outcome != Outcome::Failed);
        if !keep {
            log.insert(record.svix_id.clone(), record.clone());
        }
        Ok(())
    }
}
