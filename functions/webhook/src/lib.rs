//! The webhook function: `POST /webhooks/clerk` → verify the Svix signature → queue on SQS.
//!
//! A 2xx means the event is durably on the queue (or deliberately ignored); every other answer
//! makes Svix retry, so nothing is queued for any non-2xx and nothing is acknowledged before
//! `SendMessage` succeeded.

pub mod measure;

use std::future::Future;
use std::sync::Arc;

use clerk_sync::adapters::svix::unverified;
use clerk_sync::adapters::{secrets_manager::SecretsManagerSource, sqs::SqsEventQueue};
use clerk_sync::config::WebhookConfig;
use clerk_sync::domain::webhook::{EventTypeFilter, MAX_BODY_BYTES, Rejection};
use clerk_sync::edge::{HttpHandler, error_response, json_response};
use clerk_sync::ports::{DependencyError, EnqueueError, EventQueue};
use clerk_sync::secret_cache::{KeysUnavailable, SecretCache};
use clerk_sync::telemetry::correlation::InvocationIds;
use clerk_sync::telemetry::error_chain;
use clerk_sync::telemetry::metrics::Metrics;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tracing::Instrument;

/// The one route this function serves.
pub const ROUTE: &str = "/webhooks/clerk";

/// Everything a request is answered with other than success, decided in one place
/// ([`IngestError::status`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no route for this path")]
    NotFound,
    #[error("only POST is allowed on {ROUTE}")]
    MethodNotAllowed,
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the event is too large for the queue ({size} bytes as a message, at most {limit})")]
    TooLargeToQueue { size: usize, limit: usize },
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("signing secrets unavailable")]
    SecretsUnavailable(#[source] KeysUnavailable),
    #[error("could not queue the event")]
    QueueUnavailable(#[source] DependencyError),
}

impl From<KeysUnavailable> for IngestError {
    fn from(e: KeysUnavailable) -> Self {
        Self::SecretsUnavailable(e)
    }
}

impl IngestError {
    /// The HTTP status and the stable machine-readable code for this error.
    pub fn status(&self) -> (StatusCode, &'static str) {
        use Rejection as R;
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::TooLarge | Self::TooLargeToQueue { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            Self::Rejected(R::MissingHeader(_)) => (StatusCode::BAD_REQUEST, "missing_header"),
            Self::Rejected(R::InvalidHeader(_)) => (StatusCode::BAD_REQUEST, "invalid_header"),
            Self::Rejected(R::BodyNotUtf8 | R::BodyNotJson(_)) => {
                (StatusCode::BAD_REQUEST, "invalid_body")
            }
            Self::Rejected(R::EnvelopeMissing(_)) => (StatusCode::BAD_REQUEST, "invalid_envelope"),
            Self::Rejected(R::SignatureMismatch) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::Rejected(R::TimestampTooOld | R::TimestampInFuture) => {
                (StatusCode::UNAUTHORIZED, "timestamp_out_of_tolerance")
            }
            Self::SecretsUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "secrets_unavailable"),
            Self::QueueUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable"),
        }
    }

    /// The JSON error response. Callers see the top-level message only; causes go to the log.
    pub fn into_response(self) -> Response<Body> {
        let (status, code) = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, error = %error_chain(&self), "webhook not queued");
        } else {
            tracing::warn!(status = status.as_u16(), code, reason = %self, "webhook rejected");
        }
        let mut response = error_response(status, code, &self.to_string());
        if matches!(self, Self::MethodNotAllowed) {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        response
    }
}

/// What became of a genuine event: queued, or acknowledged without queueing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    Queued { svix_id: String },
    Ignored,
}

impl Accepted {
    fn into_response(self) -> Response<Body> {
        match self {
            Self::Queued { svix_id } => json_response(
                StatusCode::ACCEPTED,
                &json!({"status": "queued", "id": svix_id}),
            ),
            Self::Ignored => json_response(StatusCode::OK, &json!({"status": "ignored"})),
        }
    }
}

/// The webhook application: its signing secrets, its queue, the event types it forwards, and
/// where its metrics go.
pub struct Ingest {
    secrets: SecretCache,
    queue: Arc<dyn EventQueue>,
    synced: EventTypeFilter,
    metrics: Metrics,
}

impl Ingest {
    /// Metrics are discarded until [`Ingest::with_metrics`].
    pub fn new(secrets: SecretCache, queue: Arc<dyn EventQueue>, synced: EventTypeFilter) -> Self {
        Self {
            secrets,
            queue,
            synced,
            metrics: Metrics::discard("webhook"),
        }
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Wires the AWS adapters. Builds clients only; nothing is fetched until the first request.
    pub fn from_config(config: &WebhookConfig, sdk: &aws_config::SdkConfig) -> Self {
        let source =
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk), &config.secret_id);
        let queue = SqsEventQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
        Self::new(
            SecretCache::new(Arc::new(source), config.secret_cache),
            Arc::new(queue),
            config.synced_event_types.clone(),
        )
        .with_metrics(Metrics::lambda("webhook"))
    }

    /// Answers one HTTP request, and writes its metrics document.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let span = tracing::info_span!(
            "webhook",
            svix_id = tracing::field::Empty,
            event_type = tracing::field::Empty
        );
        async {
            let result = self.ingest(&request).await;
            let mut document = self.metrics.document();
            document.property("requestId", InvocationIds::request_id_of(&request));
            measure::request(&mut document, &result);
            document.emit();
            match result {
                Ok(outcome) => outcome.into_response(),
                Err(e) => e.into_response(),
            }
        }
        .instrument(span)
        .await
    }

    async fn ingest(&self, request: &Request) -> Result<Accepted, IngestError> {
        if request.uri().path() != ROUTE {
            return Err(IngestError::NotFound);
        }
        if request.method() != Method::POST {
            return Err(IngestError::MethodNotAllowed);
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(IngestError::TooLarge);
        }
        // Malformed requests are refused before any dependency is touched.
        let unverified = unverified(request.headers(), body)?;
        let span = tracing::Span::current();
        span.record("svix_id", unverified.svix_id().as_str());

        let keys = self.secrets.current().await?;
        let event = match unverified.verify(&*keys) {
            Err(Rejection::SignatureMismatch) => {
                match self.secrets.refresh_after_mismatch(&keys).await? {
                    // The secret may have been rotated since we cached it.
                    Some(fresh) => unverified.verify(&*fresh)?,
                    None => return Err(Rejection::SignatureMismatch.into()),
                }
            }
            other => other?,
        };
        span.record("event_type", &*event.event_type);

        if !self.synced.allows(&event.event_type) {
            tracing::info!(
                outcome = "ignored",
                "event type not synced; acknowledged without queueing"
            );
            return Ok(Accepted::Ignored);
        }
        self.queue.enqueue(&event).await.map_err(|e| match e {
            EnqueueError::TooLarge { size, limit } => IngestError::TooLargeToQueue { size, limit },
            EnqueueError::Unavailable(e) => IngestError::QueueUnavailable(e),
        })?;
        tracing::info!(outcome = "queued", "event queued");
        Ok(Accepted::Queued {
            svix_id: event.svix_id.to_string(),
        })
    }
}

impl HttpHandler for Ingest {
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send {
        Ingest::handle(self, request)
    }
}
