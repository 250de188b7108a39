//! The Lambda SQS event source mapping, emulated: long-polls the events queue in batches, invokes
//! the sync function with the Lambda event JSON, and deletes only the messages the function did
//! not list in `batchItemFailures`. Failed messages reappear after the visibility timeout, so the
//! emulator's redrive policy moves one that keeps failing to the dead-letter queue, as on AWS.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};

use crate::lambda::JsonFn;
use crate::sqs_event;

/// Settings of the mapping; `Default` is what the SAM template configures.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub queue_url: String,
    pub queue_arn: String,
    /// Messages per invocation (1..=10).
    pub batch_size: i32,
    /// Long-poll wait per `ReceiveMessage` (seconds, ≤ 20).
    pub wait_seconds: i32,
    /// Concurrent pollers, each with one batch in flight: the sync function's concurrency.
    pub pollers: usize,
}

/// The template's `SyncMaxConcurrency` default: at most this many sync invocations at once.
pub const DEFAULT_POLLERS: usize = 5;

impl Mapping {
    pub fn new(queue_url: impl Into<String>, queue_arn: impl Into<String>) -> Self {
        Self {
            queue_url: queue_url.into(),
            queue_arn: queue_arn.into(),
            batch_size: 10,
            wait_seconds: 20,
            pollers: DEFAULT_POLLERS,
        }
    }
}

/// Running pollers; dropping them stops them.
pub struct Poller {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts `mapping.pollers` pollers of `mapping.queue_url` into `function`, as Lambda runs up to
/// the mapping's maximum concurrency at once, until the returned [`Poller`] is dropped.
pub fn spawn(sdk: &SdkConfig, mapping: Mapping, function: JsonFn) -> Poller {
    // A long poll outlasts the usual operation timeout; give it the wait plus a margin.
    let long_poll = Duration::from_secs(mapping.wait_seconds.max(0) as u64 + 5);
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(long_poll)
                    .operation_timeout(long_poll * 3)
                    .build(),
            )
            .build(),
    );
    let tasks = (0..mapping.pollers.max(1))
        .map(|_| {
            let (sqs, mapping, function) = (sqs.clone(), mapping.clone(), function.clone());
            tokio::spawn(async move {
                loop {
                    if let Err(e) = poll_once(&sqs, &mapping, &function).await {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "event source mapping: poll failed"
                        );
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            })
        })
        .collect();
    Poller { tasks }
}

/// One receive → invoke → delete round. Returns how many messages were received.
pub async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    mapping: &Mapping,
    function: &JsonFn,
) -> anyhow::Result<usize> {
    let received = sqs
        .receive_message()
        .queue_url(&mapping.queue_url)
        .max_number_of_messages(mapping.batch_size)
        .wait_time_seconds(mapping.wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .context("ReceiveMessage")?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let event = sqs_event::event(
        messages
            .iter()
            .map(|m| to_lambda(m, &mapping.queue_arn))
            .collect(),
    );
    let failed: HashSet<String> = match function(serde_json::to_value(&event)?).await {
        Ok(response) => serde_json::from_value::<SqsBatchResponse>(response)
            .context("the function's response is not a batch response")?
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        Err(e) => {
            // An invocation error fails the whole batch, as on AWS.
            tracing::warn!(
                error = format!("{e:#}"),
                "event source mapping: invocation failed"
            );
            return Ok(messages.len());
        }
    };
    if failed.contains("") {
        return Ok(messages.len());
    }
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
        .enumerate()
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .expect("id and receipt handle set")
        })
        .collect();
    if !entries.is_empty() {
        let out = sqs
            .delete_message_batch()
            .queue_url(&mapping.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("DeleteMessageBatch")?;
        if !out.failed.is_empty() {
            anyhow::bail!("{} messages could not be deleted", out.failed.len());
        }
    }
    Ok(messages.len())
}

/// A received message in the shape Lambda delivers it.
pub fn to_lambda(m: &Message, queue_arn: &str) -> aws_lambda_events::event::sqs::SqsMessage {
    let attributes: HashMap<String, (String, String)> = m
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(name, a)| {
            Some((
                name.clone(),
                (a.data_type().to_owned(), a.string_value()?.to_owned()),
            ))
        })
        .collect();
    let system = |name: MessageSystemAttributeName| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    let mut message = sqs_event::lambda_message(
        m.message_id().unwrap_or_default(),
        m.body().unwrap_or_default(),
        attributes,
        system(MessageSystemAttributeName::ApproximateReceiveCount).unwrap_or(1) as u32,
        system(MessageSystemAttributeName::SentTimestamp).unwrap_or_default(),
        queue_arn,
    );
    message.receipt_handle = m.receipt_handle().map(str::to_owned);
    message
}
