//! Ports: the small traits the domain needs from the outside world, implemented in `adapters`.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::webhook::Verified;

/// Boxed error from an SDK or transport, kept as the `source` of a [`DependencyError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A call to an external dependency (SQS, Secrets Manager, …) failed.
///
/// The message names the dependency and the operation only; the cause chain is in `source`, for
/// logs, never for callers.
#[derive(Debug, thiserror::Error)]
#[error("{dependency} {operation} failed")]
pub struct DependencyError {
    pub dependency: &'static str,
    pub operation: &'static str,
    #[source]
    pub source: BoxError,
}

impl DependencyError {
    pub fn new(
        dependency: &'static str,
        operation: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self {
            dependency,
            operation,
            source: source.into(),
        }
    }
}

/// Where verified events wait for the sync worker.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Returns only once the queue has durably accepted the event.
    async fn enqueue(&self, event: &Verified<'_>) -> Result<(), DependencyError>;
}

/// Where the webhook signing secret value lives.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self) -> Result<SecretString, DependencyError>;
}
