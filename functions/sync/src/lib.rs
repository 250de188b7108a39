//! The sync function: applies a batch of queued Clerk events to the users table, concurrently,
//! and reports only the messages that failed (`batchItemFailures`), so SQS retries just those and
//! its redrive policy moves a message that keeps failing to the dead-letter queue.

pub mod measure;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::adapters::sqs::delivery;
use clerk_sync::clock::now_ms;
use clerk_sync::config::SyncConfig;
use clerk_sync::domain::delivery::{Delivery, Parsed};
use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::outcome::{Failure, Outcome, Poison};
use clerk_sync::ports::{EventLog, UserStore};
use clerk_sync::telemetry::correlation::InvocationIds;
use clerk_sync::telemetry::metrics::Metrics;
use lambda_runtime::{LambdaEvent, Service, service_fn};
use tracing::Instrument;

use crate::measure::Measured;

pub struct SyncWorker {
    users: Arc<dyn UserStore>,
    log: Arc<dyn EventLog>,
    retention_days: u32,
    metrics: Metrics,
}

impl SyncWorker {
    /// Metrics are discarded until [`SyncWorker::with_metrics`].
    pub fn new(users: Arc<dyn UserStore>, log: Arc<dyn EventLog>, retention_days: u32) -> Self {
        Self {
            users,
            log,
            retention_days,
            metrics: Metrics::discard("sync"),
        }
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn from_config(config: &SyncConfig, sdk: &aws_config::SdkConfig) -> Self {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        Self::new(
            Arc::new(DynamoUserStore::new(client.clone(), &config.users_table)),
            Arc::new(DynamoEventLog::new(client, &config.event_log_table)),
            config.event_log_retention_days,
        )
        .with_metrics(Metrics::lambda("sync"))
    }

    /// Processes every message of a batch concurrently; the response lists the failed ones.
    pub async fn process_batch(&self, event: &SqsEvent) -> SqsBatchResponse {
        self.invoke(event, &InvocationIds::default()).await
    }

    /// One invocation: the batch, then its metrics document.
    async fn invoke(&self, event: &SqsEvent, ids: &InvocationIds) -> SqsBatchResponse {
        let measured =
            futures_util::future::join_all(event.records.iter().map(|m| self.measured(m))).await;
        let mut document = self.metrics.document();
        document.property("requestId", ids.request_id.clone());
        measure::batch(&mut document, &measured);
        document.emit();
        let mut response = SqsBatchResponse::default();
        for (message, measured) in event.records.iter().zip(measured) {
            if measured.result.is_err() {
                let mut failure = BatchItemFailure::default();
                // An empty identifier makes Lambda retry the whole batch: nothing is lost.
                failure.item_identifier = message.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// One message: apply it, then record its fate. `Ok` only once both are durable.
    pub async fn process(&self, message: &SqsMessage) -> Result<Outcome, Failure> {
        self.measured(message).await.result
    }

    /// One message, and when it was applied, how long after the webhook queued it.
    async fn measured(&self, message: &SqsMessage) -> Measured {
        let delivery = delivery(message);
        let span = tracing::info_span!(
            "message",
            svix_id = %delivery.log_key(),
            message_id = delivery.message_id,
            attempt = delivery.attempt,
        );
        let result = self.process_delivery(&delivery).instrument(span).await;
        let lag_ms = match (&result, delivery.queued_at) {
            (Ok(Outcome::Applied), Some(queued_at)) => Some(now_ms() - queued_at),
            _ => None,
        };
        Measured { result, lag_ms }
    }

    async fn process_delivery(&self, delivery: &Delivery<'_>) -> Result<Outcome, Failure> {
        let parsed = delivery.parse();
        let (event_type, user_id) = match &parsed {
            Ok(Parsed::User(event)) => (None, Some(event.user_id())),
            Ok(Parsed::Other { event_type }) => (Some(event_type.as_str()), None),
            Err(_) => (None, None),
        };
        let result = match &parsed {
            Err(poison) => Err(Failure::Poison(poison.clone())),
            Ok(Parsed::Other { .. }) => Ok(Outcome::Ignored),
            Ok(Parsed::User(event)) => match delivery.svix_id {
                None => Err(Poison::NoSvixId.into()),
                Some(svix_id) => self
                    .users
                    .apply(event, svix_id, now_ms())
                    .await
                    .map_err(Failure::from),
            },
        };
        let record = LogRecord::new(
            delivery,
            event_type,
            user_id,
            &result,
            now_ms(),
            self.retention_days,
        );
        let logged = self.log.record(&record).await;
        let result = match (result, logged) {
            (Ok(outcome), Ok(())) => Ok(outcome),
            // Applied but not recorded: fail (classed like any dependency error), so a retry
            // writes the record; it finds the user already holding this event: `applied`.
            (Ok(_), Err(e)) => Err(Failure::from(e)),
            (Err(failure), Ok(())) => Err(failure),
            (Err(failure), Err(e)) => {
                tracing::error!(error = %e, "the failure could not be recorded in the event log");
                Err(failure)
            }
        };
        let user_id = user_id.map(|u| u.as_str()).unwrap_or_default();
        match &result {
            Ok(outcome) => tracing::info!(outcome = outcome.as_str(), user_id, "event processed"),
            Err(f @ Failure::Poison(_)) => {
                tracing::warn!(class = f.class(), reason = %f, user_id, "event failed")
            }
            Err(f @ Failure::Transient(_)) => {
                tracing::error!(class = f.class(), reason = %f, user_id, "event failed")
            }
        }
        result
    }
}

/// The function as the Lambda runtime calls it (also used in-process by the local stack).
pub fn lambda_service(
    worker: Arc<SyncWorker>,
) -> impl Service<
    LambdaEvent<SqsEvent>,
    Response = SqsBatchResponse,
    Error = lambda_runtime::Error,
    Future = impl std::future::Future<Output = Result<SqsBatchResponse, lambda_runtime::Error>> + Send,
> + Clone
+ Send
+ Sync {
    service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move {
            let ids = InvocationIds::of(&event.context);
            let span = ids.span();
            Ok(worker.invoke(&event.payload, &ids).instrument(span).await)
        }
    })
}
