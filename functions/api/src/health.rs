//! `GET /health`: every dependency checked at once, each within a bound, with its latency.

use std::future::Future;
use std::time::{Duration, Instant};

use clerk_sync::edge::json_response;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::view::{Check, Health};
use crate::{Api, no_store};

/// Bound on one health check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Api {
    pub(crate) async fn health(&self) -> Response<Body> {
        async fn timed<E: std::fmt::Display>(
            name: &'static str,
            check: impl Future<Output = Result<(), E>>,
        ) -> (&'static str, Check) {
            let start = Instant::now();
            let ok = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::warn!(check = name, error = %e, "health check failed");
                    false
                }
                Err(_) => {
                    tracing::warn!(check = name, "health check timed out");
                    false
                }
            };
            (name, Check::new(ok, start.elapsed()))
        }
        let (dynamodb, keys, queue) = tokio::join!(
            timed("dynamodb", self.deps.users_probe.probe()),
            timed("signing_keys", self.deps.keys.probe()),
            timed("queue", self.deps.queue_probe.probe()),
        );
        let health = Health::from_checks([dynamodb, keys, queue]);
        let status = if health.is_ok() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut response = json_response(status, &health);
        no_store(&mut response);
        response
    }
}
