//! The fate of one event (`Outcome`), and the one place that classes failures.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dependency::{DependencyError, error_chain};
use crate::user::EventError;

/// What became of an event. `Failed` is the only one SQS sees again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The user record now holds this event's state (possibly written by an earlier delivery).
    Applied,
    /// Older than the stored state, or about a deleted user: acknowledged, nothing written.
    Stale,
    /// The stored state is already exactly this: acknowledged, nothing written.
    Duplicate,
    /// Not a user event (the webhook was configured to queue other types): acknowledged.
    Ignored,
    /// Not applied; the message returns to the queue and, after its last attempt, the DLQ.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
}

/// A message that can never be applied, however often it is retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Poison {
    #[error("message has no svix_id attribute")]
    NoSvixId,
    #[error("message has no body")]
    NoBody,
    #[error("message body is marked base64 but does not decode to UTF-8 text")]
    BadEncoding,
    #[error(transparent)]
    Event(#[from] EventError),
    /// A dependency refused to store what the event holds, and always will.
    #[error("{}", error_chain(.0.as_ref()))]
    Refused(Arc<DependencyError>),
}

/// Why an event failed. This is the one place that decides the class of a failure; both classes
/// are reported to SQS as failed (retried, then dead-lettered) and neither applies anything.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The message itself is bad, or a dependency refuses what it holds: retrying cannot help.
    /// It reaches the DLQ after its attempts.
    #[error("poison: {0}")]
    Poison(#[from] Poison),
    /// A dependency failed (throttling, timeout, 5xx, missing table…): a retry may succeed.
    #[error("transient: {}", error_chain(.0))]
    Transient(DependencyError),
}

impl From<DependencyError> for Failure {
    /// The dependency's own verdict decides: a request it refuses for its content is poison.
    fn from(e: DependencyError) -> Self {
        if e.retryable {
            Self::Transient(e)
        } else {
            Self::Poison(Poison::Refused(Arc::new(e)))
        }
    }
}

impl Failure {
    pub fn class(&self) -> &'static str {
        match self {
            Self::Poison(_) => "poison",
            Self::Transient(_) => "transient",
        }
    }
}

impl From<EventError> for Failure {
    fn from(e: EventError) -> Self {
        Self::Poison(Poison::Event(e))
    }
}
