//! In-memory [`UserStore`] and [`EventLog`] with the same semantics as the DynamoDB adapter, for
//! property tests of the sync pipeline and CPU benchmarks without a network. It counts the
//! writes it is asked for: each is one DynamoDB write request in [`super::dynamodb`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::domain::event_log::LogRecord;
use crate::domain::outcome::Outcome;
use crate::domain::user::{Decision, Stored, UserEvent, UserId, decide};
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
        Ok(match decide(current.map(|(s, _)| s.version()), event) {
            Decision::Apply(stored) => {
                users.insert(event.user_id().clone(), (stored, svix_id.to_owned()));
                Outcome::Applied
            }
            _ if current.is_some_and(|(_, writer)| writer == svix_id) => Outcome::Applied,
            Decision::Stale => Outcome::Stale,
            Decision::Duplicate => Outcome::Duplicate,
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
