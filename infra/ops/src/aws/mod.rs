//! The reads the operations need beyond the functions' ports: the users table's bookkeeping
//! (one item, or a scan), a user's event-log timeline (the `by_user` index), and the
//! dead-letter queue. SDK types stop here.

pub mod bookkeeping;
pub mod dead_letters;
pub mod timeline;

/// An SDK error with its whole cause chain, for messages.
pub(crate) fn sdk(operation: &str, e: impl std::error::Error + 'static) -> anyhow::Error {
    anyhow::anyhow!("{operation}: {}", clerk_sync::telemetry::error_chain(&e))
}
