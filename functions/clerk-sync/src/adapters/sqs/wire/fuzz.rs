//! Fuzz target: the SQS message decoder ([`delivery`], then `Delivery::parse`), on what the webhook
//! would queue (it must decode to the body that was signed) and on arbitrary received messages.
//! Bounded by `FUZZ_CASES` / `FUZZ_SECONDS` (`make fuzz`).

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::adapters::svix::{WebhookKeys, verify_and_prepare};
use crate::domain::delivery::Parsed;
use crate::domain::user::EventError;

/// The message the sync function receives for what the webhook sent: the body and attributes,
/// and SQS's own attributes.
fn received(sent: &QueueMessage<'_>, receive_count: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some("m-fuzz".into());
    m.body = Some(sent.body.to_string());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.into());
    m.attributes
        .insert("SentTimestamp".into(), "1700000000123".into());
    for (name, value) in &sent.attributes {
        let mut a = SqsMessageAttribute::default();
        a.string_value = Some(value.clone());
        a.data_type = Some(STRING.into());
        m.message_attributes.insert((*name).into(), a);
    }
    m
}

/// Text as Clerk payloads may carry it: any Unicode scalar, with extra weight on those SQS refuses
/// in a body (controls, U+FFFE, U+FFFF) and on JSON's escapes.
fn text() -> impl Strategy<Value = String> {
    let char = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec!['\u{0}', '\u{1}', '\u{8}', '\u{b}', '\u{1f}', '\u{fffe}', '\u{ffff}', '\u{d7ff}', '\u{e000}', '"', '\\', '\t', '\n', '\r']),
    ];
    proptest::collection::vec(char, 0..40).prop_map(|c| c.into_iter().collect())
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn anything_the_webhook_would_queue_decodes_back_to_the_body_it_verified() {
    let keys = WebhookKeys::parse(&SECRET.to_owned().into()).unwrap();
    devkit::fuzz::run(
        file!(),
        "sqs_round_trip",
        1000,
        (
            prop_oneof![
                Just("user.updated".to_owned()),
                "[a-z]{1,10}\\.[a-zA-Z]{1,12}"
            ],
            text(),
            text(),
            any::<bool>(),
            1u32..20,
        ),
        |(event_type, name, metadata, raw_unescaped, receive_count)| {
            // A signed Clerk-like event whose strings hold `name` and `metadata`, either
            // JSON-escaped as serde writes them or (as JSON allows) raw, except `"` and `\`.
            let mut body = json!({
                "data": {"id": "user_fuzz", "first_name": name, "updated_at": 1_700_000_000_000i64,
                         "public_metadata": {"note": metadata}},
                "object": "event",
                "type": event_type,
            })
            .to_string();
            if raw_unescaped {
                let safe: String = metadata
                    .chars()
                    .filter(|c| !matches!(c, '"' | '\\') && *c >= ' ')
                    .collect();
                body = body.replacen(
                    "\"object\":\"event\"",
                    &format!("\"object\":\"event\",\"x\":\"{safe}\""),
                    1,
                );
            }
            let headers = devkit::signing::sign(SECRET, "msg_fuzz", devkit::signing::now(), &body);
            let verified = verify_and_prepare(&headers, body.as_bytes(), &keys);
            prop_assert!(verified.is_ok(), "{verified:?}");
            let verified = verified.unwrap();
            let sent = QueueMessage::of(&verified);
            // SQS accepts the body as sent: only the characters its message model allows.
            prop_assert!(
                sent.body.chars().all(|c| {
                    let c = u32::from(c);
                    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..)
                }),
                "SQS refuses {:?}",
                sent.body
            );
            let count = receive_count.to_string();
            let message = received(&sent, &count);
            let delivery = delivery(&message);
            prop_assert_eq!(delivery.body.as_deref().ok(), Some(body.as_str()));
            prop_assert_eq!(delivery.svix_id, Some("msg_fuzz"));
            prop_assert_eq!(delivery.event_type, Some(event_type.as_str()));
            prop_assert_eq!(delivery.attempt, receive_count);
            prop_assert_eq!(delivery.log_key(), "msg_fuzz");
            // The consumer reads the event the producer verified: the same verdict as the body.
            let direct = Parsed::from_body(&body);
            match (delivery.parse(), direct) {
                (Ok(Parsed::User(a)), Ok(Parsed::User(b))) => prop_assert_eq!(a, b),
                (Ok(Parsed::Other { event_type: a }), Ok(Parsed::Other { event_type: b })) => {
                    prop_assert_eq!(a, b)
                }
                (Err(Poison::Event(a)), Err(Poison::Event(b))) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "the queued event reads differently from its body"),
            }
            Ok(())
        },
    );
}

/// An attribute as a received message may carry it: absent, empty, or some string.
fn attribute(interesting: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(
        0.7,
        prop_oneof![
            2 => prop::sample::select(interesting).prop_map(str::to_owned),
            1 => ".{0,12}",
        ],
    )
}

fn body() -> impl Strategy<Value = Option<String>> {
    let base64ish = "[A-Za-z0-9+/]{0,40}={0,2}";
    let encoded_bytes = proptest::collection::vec(any::<u8>(), 0..30)
        .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b));
    let event = prop_oneof![
        Just(r#"{"type":"user.deleted","data":{"id":"user_1","deleted":true}}"#.to_owned()),
        Just(r#"{"type":"session.created","data":{}}"#.to_owned()),
        Just(r#"{"type":"user.updated","data":{"id":"user_1"}}"#.to_owned()),
    ];
    let encoded_event = event
        .clone()
        .prop_map(|e| base64::engine::general_purpose::STANDARD.encode(e));
    proptest::option::weighted(
        0.9,
        prop_oneof![
            text(),
            base64ish.prop_map(String::from),
            encoded_bytes,
            event,
            encoded_event
        ],
    )
}

#[test]
fn any_received_message_decodes_or_is_poison_of_the_documented_kind() {
    devkit::fuzz::run(
        file!(),
        "sqs_received",
        2000,
        (
            body(),
            attribute(&["base64", "BASE64", "gzip", ""]),
            attribute(&["msg_1", ""]),
            attribute(&["user.created", "session.created"]),
            attribute(&["1", "3", "0", "-1", "4294967296", "x"]),
            attribute(&["1700000000123", "-5", "9223372036854775808"]),
        ),
        |(body, encoding, svix_id, event_type, receive_count, sent_at)| {
            let mut m = SqsMessage::default();
            m.body = body.clone();
            let mut message_attributes = HashMap::new();
            for (name, value) in [
                (attributes::CONTENT_ENCODING, &encoding),
                (attributes::SVIX_ID, &svix_id),
                (attributes::EVENT_TYPE, &event_type),
            ] {
                if let Some(v) = value {
                    let mut a = SqsMessageAttribute::default();
                    a.string_value = Some(v.clone());
                    a.data_type = Some(STRING.into());
                    message_attributes.insert(name.to_owned(), a);
                }
            }
            m.message_attributes = message_attributes;
            if let Some(n) = &receive_count {
                m.attributes
                    .insert("ApproximateReceiveCount".into(), n.clone());
            }
            if let Some(t) = &sent_at {
                m.attributes.insert("SentTimestamp".into(), t.clone());
            }
            let d = delivery(&m);
            let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
            prop_assert_eq!(d.svix_id.map(str::to_owned), nonempty(&svix_id));
            prop_assert_eq!(d.event_type.map(str::to_owned), nonempty(&event_type));
            prop_assert_eq!(
                d.attempt,
                receive_count.and_then(|n| n.parse().ok()).unwrap_or(1)
            );
            prop_assert_eq!(d.queued_at, sent_at.and_then(|t| t.parse().ok()));
            let marked_base64 = encoding.as_deref() == Some("base64");
            match (&body, &d.body) {
                (None, Err(Poison::NoBody)) => {}
                (Some(sent), Ok(decoded)) if !marked_base64 => prop_assert_eq!(sent, decoded),
                (Some(sent), Ok(decoded)) => {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(sent);
                    prop_assert_eq!(bytes.ok(), Some(decoded.as_bytes().to_vec()));
                }
                (Some(sent), Err(Poison::BadEncoding)) if marked_base64 => {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(sent);
                    prop_assert!(bytes.map_or(true, |b| String::from_utf8(b).is_err()));
                }
                (sent, got) => prop_assert!(false, "{sent:?} decoded as {got:?}"),
            }
            // Parsing is total: an event, another type to acknowledge, or poison of the body's kind.
            match d.parse() {
                Ok(_) => prop_assert!(d.body.is_ok()),
                Err(Poison::NoBody | Poison::BadEncoding) => prop_assert!(d.body.is_err()),
                Err(Poison::Event(e)) => {
                    prop_assert!(d.body.is_ok());
                    prop_assert!(!matches!(e, EventError::NotAUserEvent(_)));
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
            Ok(())
        },
    );
}
