//! [`EventQueue`] over SQS `SendMessage`.

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use base64::Engine;

use super::aws::sdk_error;
use crate::domain::webhook::Verified;
use crate::ports::{DependencyError, EnqueueError, EventQueue, Probe};

pub use crate::domain::delivery::attributes;

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

/// SQS bodies may only hold `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
/// JSON can legally carry U+FFFE/U+FFFF unescaped; such a payload travels base64-encoded rather
/// than being refused forever.
fn sqs_safe(body: &str) -> bool {
    body.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
}

/// One event as the queue message it becomes: its body and its string/number attributes.
struct QueueMessage<'a> {
    body: std::borrow::Cow<'a, str>,
    attributes: Vec<(&'static str, &'static str, String)>,
}

impl<'a> QueueMessage<'a> {
    fn of(event: &Verified<'a>) -> Self {
        let mut attributes = vec![
            (attributes::SVIX_ID, "String", event.svix_id.to_string()),
            (
                attributes::EVENT_TYPE,
                "String",
                event.event_type.to_string(),
            ),
            (
                attributes::SVIX_TIMESTAMP,
                "Number",
                event.svix_timestamp.to_string(),
            ),
        ];
        let body = if sqs_safe(event.payload) {
            event.payload.into()
        } else {
            attributes.push((attributes::CONTENT_ENCODING, "String", "base64".into()));
            base64::engine::general_purpose::STANDARD
                .encode(event.payload)
                .into()
        };
        Self { body, attributes }
    }

    /// The size SQS holds against `MaximumMessageSize`.
    fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, data_type, value)| name.len() + data_type.len() + value.len())
                .sum::<usize>()
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
        for (name, data_type, value) in message.attributes {
            request = request.message_attributes(
                name,
                MessageAttributeValue::builder()
                    .data_type(data_type)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::SvixId;

    #[test]
    fn the_message_size_counts_the_encoded_body_and_every_attribute() {
        let event = Verified {
            svix_id: SvixId::parse("msg_1").unwrap(),
            svix_timestamp: 1_700_000_000,
            event_type: "user.created".into(),
            payload: "{\"a\":\"\u{FFFF}\"}",
        };
        let message = QueueMessage::of(&event);
        assert_eq!(message.body, "eyJhIjoi77+/In0=");
        let attributes = "svix_id".len()
            + 6
            + 5
            + "event_type".len()
            + 6
            + 12
            + "svix_timestamp".len()
            + 6
            + 10
            + "content_encoding".len()
            + 6
            + 6;
        assert_eq!(message.size(), 16 + attributes);
    }

    #[test]
    fn bodies_with_characters_sqs_refuses_are_detected() {
        assert!(sqs_safe("{\"a\":\"é 😀\t\"}\n"));
        assert!(!sqs_safe("{\"a\":\"\u{FFFF}\"}"));
        assert!(!sqs_safe("{\"a\":\"\u{1}\"}"));
    }
}
