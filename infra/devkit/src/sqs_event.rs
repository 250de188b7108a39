//! SQS messages in the shape the Lambda event source mapping delivers them, built from queued
//! messages (the local poller) or from scratch (tests, `cargo lambda invoke` fixtures).

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};

/// A message as the webhook queues it: the body plus `svix_id` and `event_type` attributes.
pub fn message(message_id: &str, svix_id: &str, body: &str, attempt: u32) -> SqsMessage {
    let event_type = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut attributes = HashMap::from([("svix_id", svix_id), ("event_type", &event_type)]);
    attributes.retain(|_, v| !v.is_empty());
    let string_attributes = attributes
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ("String".to_owned(), v.to_owned())))
        .collect();
    lambda_message(
        message_id,
        body,
        string_attributes,
        attempt,
        crate::signing::now() * 1000,
        "arn:aws:sqs:us-east-1:123456789012:clerk-sync-local-events",
    )
}

/// Builds the Lambda shape of a message; `attributes` maps name → (data type, string value).
pub fn lambda_message(
    message_id: &str,
    body: &str,
    attributes: HashMap<String, (String, String)>,
    attempt: u32,
    sent_at_ms: i64,
    queue_arn: &str,
) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.to_owned());
    m.receipt_handle = Some(format!("receipt-{message_id}"));
    m.body = Some(body.to_owned());
    m.event_source = Some("aws:sqs".to_owned());
    m.event_source_arn = Some(queue_arn.to_owned());
    m.aws_region = queue_arn.split(':').nth(3).map(str::to_owned);
    m.attributes = HashMap::from([
        ("ApproximateReceiveCount".to_owned(), attempt.to_string()),
        ("SentTimestamp".to_owned(), sent_at_ms.to_string()),
        ("SenderId".to_owned(), "AIDAEXAMPLE".to_owned()),
        (
            "ApproximateFirstReceiveTimestamp".to_owned(),
            sent_at_ms.to_string(),
        ),
    ]);
    m.message_attributes = attributes
        .into_iter()
        .map(|(name, (data_type, value))| {
            let mut a = SqsMessageAttribute::default();
            a.data_type = Some(data_type);
            a.string_value = Some(value);
            (name, a)
        })
        .collect();
    m
}

/// A batch, as one invocation receives it.
pub fn event(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = messages;
    e
}

/// Receives every message on a queue, with all attributes, hands each to `seen`, then deletes it:
/// the queue is empty afterwards (PurgeQueue would be allowed only once a minute). A message is
/// deleted only after `seen` had it. For local queues (short polling).
pub async fn take_all(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    mut seen: impl FnMut(&aws_sdk_sqs::types::Message),
) -> anyhow::Result<usize> {
    let mut taken = 0;
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return Ok(taken);
        }
        for message in messages {
            seen(&message);
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
            taken += 1;
        }
    }
}
