//! [`EventQueue`] over SQS `SendMessage`.

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;

use super::wire::{QueueMessage, STRING};
use crate::adapters::aws::sdk_error;
use crate::domain::webhook::Verified;
use crate::ports::{DependencyError, EnqueueError, EventQueue, Probe};

/// The events queue's `MaximumMessageSize` (template.yaml and the local stack set it): SQS
/// counts the body and, for each attribute, its name, data type and value.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub struct SqsEventQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsEventQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    async fn enqueue(&self, event: &Verified<'_>) -> Result<(), EnqueueError> {
        let message = QueueMessage::of(event);
        let size = message.size();
        if size > MAX_MESSAGE_BYTES {
            return Err(EnqueueError::TooLarge {
                size,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body);
        for (name, value) in message.attributes {
            request = request.message_attributes(
                name,
                MessageAttributeValue::builder()
                    .data_type(STRING)
                    .string_value(value)
                    .build()
                    .expect("data_type is set"),
            );
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error("sqs", "SendMessage", e))?;
        Ok(())
    }
}

#[async_trait]
impl Probe for SqsEventQueue {
    /// Reads the queue's depth: proves the queue exists and the role may see it.
    async fn probe(&self) -> Result<(), DependencyError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("sqs", "GetQueueAttributes", e))
    }
}
