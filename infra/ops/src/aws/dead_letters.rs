//! The dead-letter queue and the events queue as redrive needs them: receive with a visibility
//! timeout, copy to the events queue, delete only what was copied, release what was only looked
//! at; and SQS's own `StartMessageMoveTask` where the service has it.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};

use super::sdk;

/// A message received from the dead-letter queue; it stays invisible to others until it is
/// deleted, released, or its visibility timeout ends.
pub struct Letter(Message);

impl Letter {
    /// The message as a Lambda SQS record, for the queue contract's decoder.
    pub fn as_record(&self) -> SqsMessage {
        let m = &self.0;
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.body = m.body.clone();
        if let Some(attrs) = &m.attributes {
            for (k, v) in attrs {
                record.attributes.insert(k.as_str().to_owned(), v.clone());
            }
        }
        if let Some(attrs) = &m.message_attributes {
            for (k, v) in attrs {
                let mut a = SqsMessageAttribute::default();
                a.string_value = v.string_value.clone();
                a.data_type = Some(v.data_type.clone());
                record.message_attributes.insert(k.clone(), a);
            }
        }
        record
    }

    pub fn message_id(&self) -> &str {
        self.0.message_id().unwrap_or_default()
    }
}

/// A move task's progress, as SQS reports it.
#[derive(Debug, Clone)]
pub struct MoveTask {
    pub status: String,
    pub moved: i64,
    pub to_move: Option<i64>,
    pub failure: Option<String>,
}

pub struct Queues {
    sqs: aws_sdk_sqs::Client,
    pub dead_letter_queue_url: String,
    pub events_queue_url: String,
}

impl Queues {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        dead_letter_queue_url: impl Into<String>,
        events_queue_url: impl Into<String>,
    ) -> Self {
        Self {
            sqs,
            dead_letter_queue_url: dead_letter_queue_url.into(),
            events_queue_url: events_queue_url.into(),
        }
    }

    /// Messages waiting (visible) and in flight (received, not yet deleted) on `url`.
    pub async fn depth(&self, url: &str) -> anyhow::Result<(i64, i64)> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sdk("GetQueueAttributes", e))?;
        let get = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// Up to 10 dead letters, hidden from others for `visibility`.
    pub async fn receive(&self, max: i32, visibility: Duration) -> anyhow::Result<Vec<Letter>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.dead_letter_queue_url)
            .max_number_of_messages(max.clamp(1, 10))
            .visibility_timeout(visibility.as_secs().clamp(1, 43_200) as i32)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| sdk("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(Letter)
            .collect())
    }

    /// Sends a copy of each letter (body and attributes) to the events queue: for each, whether
    /// the queue accepted it.
    pub async fn copy_to_events_queue(&self, letters: &[Letter]) -> anyhow::Result<Vec<bool>> {
        let entries: Vec<SendMessageBatchRequestEntry> = letters
            .iter()
            .enumerate()
            .map(|(i, l)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(l.0.body().unwrap_or_default())
                    .set_message_attributes(l.0.message_attributes.clone())
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(&self.events_queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk("SendMessageBatch", e))?;
        let mut sent = vec![false; letters.len()];
        for ok in out.successful() {
            if let Ok(i) = ok.id().parse::<usize>()
                && let Some(s) = sent.get_mut(i)
            {
                *s = true;
            }
        }
        for failed in out.failed() {
            tracing::warn!(code = failed.code(), "the events queue refused a copy");
        }
        Ok(sent)
    }

    /// Deletes letters from the dead-letter queue: how many were deleted.
    pub async fn delete(&self, letters: &[&Letter]) -> anyhow::Result<usize> {
        if letters.is_empty() {
            return Ok(0);
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = letters
            .iter()
            .enumerate()
            .map(|(i, l)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(l.0.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("id and handle are set")
            })
            .collect();
        let out = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.dead_letter_queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk("DeleteMessageBatch", e))?;
        Ok(out.successful().len())
    }

    /// Makes letters visible again at once (after a peek).
    pub async fn release(&self, letters: &[Letter]) -> anyhow::Result<()> {
        for chunk in letters.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(l.0.receipt_handle().unwrap_or_default())
                        .visibility_timeout(0)
                        .build()
                        .expect("id and handle are set")
                })
                .collect();
            self.sqs
                .change_message_visibility_batch()
                .queue_url(&self.dead_letter_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk("ChangeMessageVisibilityBatch", e))?;
        }
        Ok(())
    }

    /// Starts SQS's own move of every dead letter back to the queue it came from (no destination:
    /// SQS moves each message back to its source, the events queue). `Err` carries the service's
    /// error code when it refused (e.g. an emulator without the API).
    pub async fn start_move_task(&self, dead_letter_queue_arn: &str) -> Result<String, String> {
        self.sqs
            .start_message_move_task()
            .source_arn(dead_letter_queue_arn)
            .send()
            .await
            .map(|out| out.task_handle().unwrap_or_default().to_owned())
            .map_err(|e| match (e.code(), e.raw_response()) {
                (Some(code), _) => code.to_owned(),
                (None, Some(raw)) => format!("HTTP {}", raw.status().as_u16()),
                (None, None) => clerk_sync::telemetry::error_chain(&e),
            })
    }

    /// The latest move task of the dead-letter queue.
    pub async fn move_task(&self, dead_letter_queue_arn: &str) -> anyhow::Result<Option<MoveTask>> {
        let out = self
            .sqs
            .list_message_move_tasks()
            .source_arn(dead_letter_queue_arn)
            .max_results(1)
            .send()
            .await
            .map_err(|e| sdk("ListMessageMoveTasks", e))?;
        Ok(out.results().first().map(|t| MoveTask {
            status: t.status().unwrap_or_default().to_owned(),
            moved: t.approximate_number_of_messages_moved(),
            to_move: t.approximate_number_of_messages_to_move(),
            failure: t.failure_reason().map(str::to_owned),
        }))
    }
}
