//! Ports: the small traits the functions need from the outside world, implemented in `adapters`.
//! They speak the domain's types; [`DependencyError`] (the domain's) is every port's failure.

use async_trait::async_trait;
use secrecy::SecretString;

pub use crate::domain::dependency::{BoxError, DependencyError};
use crate::domain::event_log::LogRecord;
use crate::domain::outcome::Outcome;
use crate::domain::user::{Stored, UserEvent, UserId, UserProfile};
use crate::domain::webhook::Verified;

/// Why an event was not queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The event, as a queue message with its attributes, is larger than the queue accepts: it
    /// never will be accepted.
    #[error("the event is {size} bytes as a queue message, over the queue's {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Unavailable(#[from] DependencyError),
}

/// Where verified events wait for the sync worker.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Returns only once the queue has durably accepted the event.
    async fn enqueue(&self, event: &Verified<'_>) -> Result<(), EnqueueError>;
}

/// Where the webhook signing secret value lives.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self) -> Result<SecretString, DependencyError>;
}

/// Where the token verification keys (a JWKS document) are published.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The JWKS document's bytes.
    async fn fetch(&self) -> Result<Vec<u8>, DependencyError>;
}

/// A user as Clerk's Backend API reports it.
#[derive(Debug)]
pub enum ClerkUser {
    Found(Box<UserProfile>),
    /// Clerk has no such user (404).
    NotFound,
}

/// Why Clerk's Backend API could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClerkError {
    /// 429: retry after this many seconds.
    #[error("Clerk rate-limited the request (retry after {retry_after_seconds} s)")]
    RateLimited { retry_after_seconds: u64 },
    #[error(transparent)]
    Unavailable(#[from] DependencyError),
}

/// Clerk's Backend API, for the users the webhook has not brought yet.
#[async_trait]
pub trait ClerkApi: Send + Sync {
    async fn get_user(&self, id: &UserId) -> Result<ClerkUser, ClerkError>;
}

/// Where user records live. Implementations apply [`crate::domain::ordering::Precondition`]
/// atomically, in one conditional write per event.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Applies `event`, written by `writer` (the Svix message id, or a lazy sync's own unique
    /// id), unless the stored state is newer or deleted. Returns `Applied`, `Stale` or
    /// `Duplicate`; a redelivery by the writer that produced the stored state is `Applied` again.
    async fn apply(
        &self,
        event: &UserEvent,
        writer: &str,
        now_ms: i64,
    ) -> Result<Outcome, DependencyError>;

    /// The stored state of a user: live, tombstone or never seen.
    async fn get(&self, id: &UserId) -> Result<Option<Stored>, DependencyError>;
}

/// The audit trail: one record per Svix message id.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Records an event's fate. A final outcome already recorded (anything but `failed`) is kept,
    /// so a redelivery never rewrites history; a `failed` record is replaced by the next attempt.
    async fn record(&self, record: &LogRecord) -> Result<(), DependencyError>;
}

/// A cheap call that shows a dependency is reachable and usable, for health checks.
#[async_trait]
pub trait Probe: Send + Sync {
    async fn probe(&self) -> Result<(), DependencyError>;
}
