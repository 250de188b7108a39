//! The queue message contract between the webhook (producer) and the sync function (consumer):
//! the attribute names, the body's encoding, and the decoding of a received message into the
//! domain's [`Delivery`]. Both sides read it from here, so it is stated once.

use std::borrow::Cow;

use aws_lambda_events::event::sqs::SqsMessage;
use base64::Engine;

use crate::domain::delivery::Delivery;
use crate::domain::outcome::Poison;
use crate::domain::webhook::Verified;

/// Message attribute names. The consumer dedupes and routes on these without parsing the body.
pub mod attributes {
    pub const SVIX_ID: &str = "svix_id";
    pub const EVENT_TYPE: &str = "event_type";
    /// Present (value `base64`) only when the payload held characters SQS refuses in a body.
    pub const CONTENT_ENCODING: &str = "content_encoding";
}

const BASE64: &str = "base64";

/// SQS bodies may only hold `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
/// JSON can legally carry U+FFFE/U+FFFF unescaped; such a payload travels base64-encoded rather
/// than being refused forever.
fn sqs_safe(body: &str) -> bool {
    body.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
}

/// One event as the queue message it becomes: its body and its string attributes.
pub(super) struct QueueMessage<'a> {
    pub body: Cow<'a, str>,
    /// `(name, value)`; every attribute is of data type `String`.
    pub attributes: Vec<(&'static str, String)>,
}

/// The data type of every attribute we send.
pub(super) const STRING: &str = "String";

impl<'a> QueueMessage<'a> {
    pub fn of(event: &Verified<'a>) -> Self {
        let mut attributes = vec![
            (attributes::SVIX_ID, event.svix_id.to_string()),
            (attributes::EVENT_TYPE, event.event_type.to_string()),
        ];
        let body = if sqs_safe(event.payload) {
            event.payload.into()
        } else {
            attributes.push((attributes::CONTENT_ENCODING, BASE64.into()));
            base64::engine::general_purpose::STANDARD
                .encode(event.payload)
                .into()
        };
        Self { body, attributes }
    }

    /// The size SQS holds against `MaximumMessageSize`: the body and, for each attribute, its
    /// name, data type and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + STRING.len() + value.len())
                .sum::<usize>()
    }
}

/// A received message in the domain's terms: the webhook's attributes, SQS's
/// `ApproximateReceiveCount` and `SentTimestamp`, and the body decoded as the webhook encoded it.
pub fn delivery(message: &SqsMessage) -> Delivery<'_> {
    let attribute = |name: &str| {
        message
            .message_attributes
            .get(name)
            .and_then(|a| a.string_value.as_deref())
            .filter(|v| !v.is_empty())
    };
    let body = match message.body.as_deref() {
        None => Err(Poison::NoBody),
        Some(body) if attribute(attributes::CONTENT_ENCODING) == Some(BASE64) => {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .map(Cow::Owned)
                .ok_or(Poison::BadEncoding)
        }
        Some(body) => Ok(Cow::Borrowed(body)),
    };
    Delivery {
        message_id: message.message_id.as_deref().unwrap_or_default(),
        svix_id: attribute(attributes::SVIX_ID),
        event_type: attribute(attributes::EVENT_TYPE),
        attempt: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
        queued_at: message
            .attributes
            .get("SentTimestamp")
            .and_then(|t| t.parse().ok()),
        body,
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::sqs::SqsMessageAttribute;

    use super::*;
    use crate::domain::webhook::SvixId;

    fn message(body: Option<&str>, attrs: &[(&str, &str)]) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some("m-1".into());
        m.body = body.map(str::to_owned);
        m.attributes
            .insert("ApproximateReceiveCount".into(), "3".into());
        m.attributes
            .insert("SentTimestamp".into(), "1700000000123".into());
        for (k, v) in attrs {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some((*v).into());
            a.data_type = Some(STRING.into());
            m.message_attributes.insert((*k).into(), a);
        }
        m
    }

    /// What the webhook would send for `payload`, as the sync function receives it.
    fn round_trip(payload: &str) -> SqsMessage {
        let event = Verified {
            svix_id: SvixId::parse("msg_1").unwrap(),
            event_type: "user.created".into(),
            payload,
        };
        let sent = QueueMessage::of(&event);
        let attributes: Vec<(&str, &str)> = sent
            .attributes
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        message(Some(&sent.body), &attributes)
    }

    #[test]
    fn delivery_reads_the_attributes_the_webhook_set_and_the_sqs_counters() {
        let m = round_trip("{}");
        let d = delivery(&m);
        assert_eq!(d.message_id, "m-1");
        assert_eq!(d.svix_id, Some("msg_1"));
        assert_eq!(d.event_type, Some("user.created"));
        assert_eq!(d.attempt, 3);
        assert_eq!(d.queued_at, Some(1_700_000_000_123));
        assert_eq!(d.body.unwrap(), "{}");
    }

    #[test]
    fn a_payload_sqs_refuses_travels_base64_and_arrives_as_it_was_signed() {
        let payload = "{\"a\":\"\u{FFFF}\"}";
        let m = round_trip(payload);
        assert_eq!(m.body.as_deref(), Some("eyJhIjoi77+/In0="));
        assert_eq!(delivery(&m).body.unwrap(), payload);
    }

    #[test]
    fn an_undecodable_or_missing_body_is_poison() {
        let m = message(Some("not base64!"), &[("content_encoding", "base64")]);
        assert!(matches!(delivery(&m).body, Err(Poison::BadEncoding)));
        let invalid_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe]);
        let m = message(Some(&invalid_utf8), &[("content_encoding", "base64")]);
        assert!(matches!(delivery(&m).body, Err(Poison::BadEncoding)));
        assert!(matches!(
            delivery(&message(None, &[])).body,
            Err(Poison::NoBody)
        ));
    }

    #[test]
    fn the_message_size_counts_the_encoded_body_and_every_attribute() {
        let event = Verified {
            svix_id: SvixId::parse("msg_1").unwrap(),
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
