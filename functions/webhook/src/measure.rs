//! What each request adds to the webhook's metrics document (the names the template's alarms
//! and dashboard read).

use clerk_sync::telemetry::metrics::Document;

use crate::{Accepted, IngestError};

pub const REQUESTS: &str = "Requests";
pub const QUEUED: &str = "Queued";
pub const IGNORED: &str = "Ignored";
/// Answers in 4xx: Svix retries them, and a genuine event answered so is a release or config bug.
pub const CLIENT_ERRORS: &str = "ClientErrors";
pub const SERVER_ERRORS: &str = "ServerErrors";
/// Events that could not be put on the queue (a 503 Svix retries).
pub const QUEUE_FAILURES: &str = "QueueFailures";
/// Every metric the webhook reports.
pub const METRICS: &[&str] = &[
    REQUESTS,
    QUEUED,
    IGNORED,
    CLIENT_ERRORS,
    SERVER_ERRORS,
    QUEUE_FAILURES,
];

/// The answer's code: `queued`, `ignored`, or the error code of the response body.
pub fn code(result: &Result<Accepted, IngestError>) -> &'static str {
    match result {
        Ok(Accepted::Queued { .. }) => "queued",
        Ok(Accepted::Ignored) => "ignored",
        Err(e) => e.status().1,
    }
}

/// One request: counted, by its answer's code too.
pub fn request(document: &mut Document<'_>, result: &Result<Accepted, IngestError>) {
    document
        .count(REQUESTS, 1)
        .by(&[("Code", code(result))], &[REQUESTS]);
    let counted = match result {
        Ok(Accepted::Queued { .. }) => QUEUED,
        Ok(Accepted::Ignored) => IGNORED,
        Err(e) if e.status().0.is_server_error() => SERVER_ERRORS,
        Err(_) => CLIENT_ERRORS,
    };
    document.count(counted, 1);
    if matches!(result, Err(IngestError::QueueUnavailable(_))) {
        document.count(QUEUE_FAILURES, 1);
    }
}
