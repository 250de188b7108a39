//! What each request adds to the api's metrics document (the names the template's alarms and
//! dashboard read).

use std::time::Duration;

use clerk_sync::telemetry::metrics::Document;
use lambda_http::http::StatusCode;

use crate::ApiError;

pub const REQUESTS: &str = "Requests";
pub const CLIENT_ERRORS: &str = "ClientErrors";
pub const SERVER_ERRORS: &str = "ServerErrors";
/// Milliseconds from the request reaching the function to its answer.
pub const LATENCY: &str = "Latency";
/// Bearer tokens refused, by `Reason` ([`clerk_sync::domain::auth::AuthError::reason`]).
pub const TOKEN_REFUSALS: &str = "TokenRefusals";
/// Users fetched from Clerk on a read, by `Outcome`: `applied`, `stale`, `duplicate`
/// (something newer was stored meanwhile), `not_in_clerk`, or the error code answered.
pub const LAZY_SYNCS: &str = "LazySyncs";
/// Every metric the api reports.
pub const METRICS: &[&str] = &[
    REQUESTS,
    CLIENT_ERRORS,
    SERVER_ERRORS,
    LATENCY,
    TOKEN_REFUSALS,
    LAZY_SYNCS,
];
/// The `Route` of a request no route serves.
pub const NO_ROUTE: &str = "none";

/// One answered request: counted by route and status, timed, its errors classed.
pub fn request(document: &mut Document<'_>, route: &str, status: StatusCode, took: Duration) {
    document
        .count(REQUESTS, 1)
        .millis(LATENCY, took.as_secs_f64() * 1000.0)
        .by(
            &[("Route", route), ("Status", status.as_str())],
            &[REQUESTS],
        );
    if status.is_server_error() {
        document.count(SERVER_ERRORS, 1);
    } else if status.is_client_error() {
        document.count(CLIENT_ERRORS, 1);
    }
}

/// A refusal worth its own count: a token refused, by reason.
pub fn refusal(document: &mut Document<'_>, error: &ApiError) {
    if let ApiError::Unauthorized(e) = error {
        document.count_by(TOKEN_REFUSALS, 1, &[("Reason", e.reason())]);
    }
}

/// One lazy sync, by outcome.
pub fn lazy_sync(document: &mut Document<'_>, outcome: &str) {
    document.count_by(LAZY_SYNCS, 1, &[("Outcome", outcome)]);
}
