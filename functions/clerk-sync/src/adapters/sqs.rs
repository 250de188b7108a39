//! [`EventQueue`] over SQS `SendMessage`.

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use base64::Engine;

use crate::domain::webhook::Verified;
use crate::ports::{DependencyError, EventQueue, Probe};

pub use crate::domain::delivery::attributes;

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

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type is set")
}

/// SQS bodies may only hold `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
/// JSON can legally carry U+FFFE/U+FFFF unescaped; such a payload travels base64-encoded rather
/// than being refused forever.
fn sqs_safe(body: &str) -> bool {
    body.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    async fn enqueue(&self, event: &Verified<'_>) -> Result<(), DependencyError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_attributes(attributes::SVIX_ID, string_attr(event.svix_id.as_str()))
            .message_attributes(attributes::EVENT_TYPE, string_attr(&event.event_type))
            .message_attributes(
                attributes::SVIX_TIMESTAMP,
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(event.svix_timestamp.to_string())
                    .build()
                    .expect("data_type is set"),
            );
        request = if sqs_safe(event.payload) {
            request.message_body(event.payload)
        } else {
            request
                .message_body(base64::engine::general_purpose::STANDARD.encode(event.payload))
                .message_attributes(attributes::CONTENT_ENCODING, string_attr("base64"))
        };
        request
            .send()
            .await
            .map_err(|e| DependencyError::new("sqs", "SendMessage", e))?;
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
            .map_err(|e| DependencyError::new("sqs", "GetQueueAttributes", e))
    }
}

#[cfg(test)]
mod tests {
    use super::sqs_safe;

    #[test]
    fn bodies_with_characters_sqs_refuses_are_detected() {
        assert!(sqs_safe("{\"a\":\"é 😀\t\"}\n"));
        assert!(!sqs_safe("{\"a\":\"\u{FFFF}\"}"));
        assert!(!sqs_safe("{\"a\":\"\u{1}\"}"));
    }
}
