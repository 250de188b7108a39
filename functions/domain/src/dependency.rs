//! A call to something outside the domain failed: what the domain knows of it is which
//! dependency, which operation, and whether repeating the call can help.

/// Boxed error from an SDK or transport, kept as the `source` of a [`DependencyError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A call to an external dependency (SQS, DynamoDB, Secrets Manager, Clerk, …) failed.
///
/// The message names the dependency and the operation only; the cause chain is in `source`, for
/// logs, never for callers. Whether repeating the call can help is decided by the adapter, from
/// what the error is (for AWS: clerk-sync's `adapters::aws::sdk_error`).
#[derive(Debug, thiserror::Error)]
#[error("{dependency} {operation} {}", if *.retryable { "failed" } else { "refused the request" })]
pub struct DependencyError {
    pub dependency: &'static str,
    pub operation: &'static str,
    /// False when the dependency refused this very request and would refuse it again (a
    /// validation error): only a change to the request, not a retry, can help.
    pub retryable: bool,
    #[source]
    pub source: BoxError,
}

impl DependencyError {
    /// A failure a retry may fix: throttling, a timeout, a 5xx, unreachable, a missing resource.
    pub fn new(
        dependency: &'static str,
        operation: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self {
            dependency,
            operation,
            retryable: true,
            source: source.into(),
        }
    }

    /// The dependency refused the request itself; the same request will always be refused.
    pub fn refused(
        dependency: &'static str,
        operation: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self {
            retryable: false,
            ..Self::new(dependency, operation, source)
        }
    }
}

/// An error and its whole `source` chain on one line, for logs (`a: b: c`).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_whether_a_retry_can_help_and_the_chain_holds_the_cause() {
        let failed = DependencyError::new("sqs", "SendMessage", std::io::Error::other("reset"));
        assert_eq!(failed.to_string(), "sqs SendMessage failed");
        assert!(failed.retryable);
        assert_eq!(error_chain(&failed), "sqs SendMessage failed: reset");
        let refused = DependencyError::refused("sqs", "SendMessage", "bad attribute");
        assert_eq!(refused.to_string(), "sqs SendMessage refused the request");
        assert!(!refused.retryable);
    }
}
