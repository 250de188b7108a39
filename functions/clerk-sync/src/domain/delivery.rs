//! One queued event as the sync worker receives it: the SQS message decoded, the fate it met
//! (`Outcome`), the one place that classes failures, and the event-log record of it all.

use std::borrow::Cow;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::user::{EventError, UserEvent, UserId};
use crate::ports::DependencyError;
use crate::telemetry::error_chain;

/// Message attribute names. The consumer dedupes and routes on these without parsing the body.
pub mod attributes {
    pub const SVIX_ID: &str = "svix_id";
    pub const EVENT_TYPE: &str = "event_type";
    pub const SVIX_TIMESTAMP: &str = "svix_timestamp";
    /// Present (value `base64`) only when the payload held characters SQS refuses in a body.
    pub const CONTENT_ENCODING: &str = "content_encoding";
}

/// What became of an event. `Failed` is the only one SQS sees again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The user record now holds this event's state (possibly written by an earlier delivery).
    Applied,
    /// Older than the stored state, or about a deleted user: acknowledged, nothing written.
    Stale,
    /// The stored state is already exactly this: acknowledged, nothing written.
    Duplicate,
    /// Not a user event (the webhook was configured to queue other types): acknowledged.
    Ignored,
    /// Not applied; the message returns to the queue and, after its last attempt, the DLQ.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
}

/// A message that can never be applied, however often it is retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Poison {
    #[error("message has no svix_id attribute")]
    NoSvixId,
    #[error("message has no body")]
    NoBody,
    #[error("message body is marked base64 but does not decode to UTF-8 text")]
    BadEncoding,
    #[error(transparent)]
    Event(#[from] EventError),
    /// A dependency refused to store what the event holds, and always will.
    #[error("{}", error_chain(.0.as_ref()))]
    Refused(Arc<DependencyError>),
}

/// Why an event failed. This is the one place that decides the class of a failure; both classes
/// are reported to SQS as failed (retried, then dead-lettered) and neither applies anything.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The message itself is bad, or a dependency refuses what it holds: retrying cannot help.
    /// It reaches the DLQ after its attempts.
    #[error("poison: {0}")]
    Poison(#[from] Poison),
    /// A dependency failed (throttling, timeout, 5xx, missing table…): a retry may succeed.
    #[error("transient: {}", error_chain(.0))]
    Transient(DependencyError),
}

impl From<DependencyError> for Failure {
    /// The dependency's own verdict decides: a request it refuses for its content is poison.
    fn from(e: DependencyError) -> Self {
        if e.retryable {
            Self::Transient(e)
        } else {
            Self::Poison(Poison::Refused(Arc::new(e)))
        }
    }
}

impl Failure {
    pub fn class(&self) -> &'static str {
        match self {
            Self::Poison(_) => "poison",
            Self::Transient(_) => "transient",
        }
    }
}

impl From<EventError> for Failure {
    fn from(e: EventError) -> Self {
        Self::Poison(Poison::Event(e))
    }
}

/// What the body says, once parsed: a user event to apply, or another type to acknowledge.
pub enum Parsed {
    User(UserEvent),
    Other { event_type: String },
}

impl Parsed {
    /// Parses a body; only poison is an error. A type that is not a user event is [`Parsed::Other`].
    pub fn from_body(body: &str) -> Result<Self, Poison> {
        match UserEvent::parse(body) {
            Ok(event) => Ok(Self::User(event)),
            Err(EventError::NotAUserEvent(event_type)) => Ok(Self::Other { event_type }),
            Err(e) => Err(e.into()),
        }
    }
}

/// The SQS side of one message: who it is, which attempt, and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<'a> {
    pub message_id: &'a str,
    /// The Svix message id the webhook put in the `svix_id` attribute.
    pub svix_id: Option<&'a str>,
    /// The `event_type` attribute (the body's `type`, as the webhook saw it).
    pub event_type: Option<&'a str>,
    /// SQS `ApproximateReceiveCount`: 1 on the first delivery.
    pub attempt: u32,
    /// SQS `SentTimestamp` (Unix ms): when the webhook queued the event.
    pub queued_at: Option<i64>,
    body: Option<&'a str>,
    base64: bool,
}

impl<'a> Delivery<'a> {
    pub fn of(message: &'a SqsMessage) -> Self {
        let attribute = |name: &str| {
            message
                .message_attributes
                .get(name)
                .and_then(|a| a.string_value.as_deref())
                .filter(|v| !v.is_empty())
        };
        Self {
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
            body: message.body.as_deref(),
            base64: attribute(attributes::CONTENT_ENCODING) == Some("base64"),
        }
    }

    /// The event-log key: the svix id, or the SQS message id for a message without one.
    pub fn log_key(&self) -> Cow<'a, str> {
        match self.svix_id {
            Some(id) => Cow::Borrowed(id),
            None => Cow::Owned(format!("sqs:{}", self.message_id)),
        }
    }

    /// The verified webhook payload, decoded as the webhook encoded it.
    pub fn body(&self) -> Result<Cow<'a, str>, Poison> {
        let body = self.body.ok_or(Poison::NoBody)?;
        if !self.base64 {
            return Ok(Cow::Borrowed(body));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| Poison::BadEncoding)?;
        String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| Poison::BadEncoding)
    }
}

/// What wrote a user record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A webhook event, applied by the sync function.
    #[default]
    Webhook,
    /// The api, fetching a user from Clerk's Backend API before its webhook arrived.
    LazySync,
}

/// Prefix of the writer id of a lazy sync (never a Svix message id, which starts `msg_`).
pub const LAZY_SYNC_PREFIX: &str = "lazy-sync:";

/// One event-log item: the audit trail ops read and the record of every event's fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Key: the Svix message id (`sqs:<message id>` for a message without one, the writer id
    /// `lazy-sync:…` for a lazy sync).
    pub svix_id: String,
    /// The SQS message id; empty for a lazy sync.
    pub message_id: String,
    /// Records written before this field existed are webhook events.
    #[serde(default)]
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// When the webhook queued the event (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<i64>,
    /// When this attempt finished (Unix ms).
    pub processed_at: i64,
    /// Deliveries so far, this one included.
    pub attempts: u32,
    pub outcome: Outcome,
    /// Why it failed (class and cause), for `failed` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// DynamoDB TTL: Unix seconds after which the record may be deleted.
    pub expires_at: i64,
}

impl LogRecord {
    pub fn new(
        delivery: &Delivery<'_>,
        event_type: Option<&str>,
        user_id: Option<&UserId>,
        result: &Result<Outcome, Failure>,
        now_ms: i64,
        retention_days: u32,
    ) -> Self {
        let (outcome, reason) = fate(result);
        Self {
            svix_id: delivery.log_key().into_owned(),
            message_id: delivery.message_id.to_owned(),
            source: Source::Webhook,
            event_type: event_type.or(delivery.event_type).map(str::to_owned),
            user_id: user_id.cloned(),
            received_at: delivery.queued_at,
            processed_at: now_ms,
            attempts: delivery.attempt,
            outcome,
            reason,
            expires_at: expires_at(now_ms, retention_days),
        }
    }

    /// A fresh writer id for one lazy sync: random, so no other write ever carries it.
    pub fn lazy_sync_writer() -> String {
        format!(
            "{LAZY_SYNC_PREFIX}{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        )
    }

    /// The record of one lazy sync of `user_id`, written by `writer`, finished at `now_ms`.
    pub fn lazy_sync(
        writer: &str,
        user_id: &UserId,
        result: &Result<Outcome, Failure>,
        now_ms: i64,
        retention_days: u32,
    ) -> Self {
        let (outcome, reason) = fate(result);
        Self {
            svix_id: writer.to_owned(),
            message_id: String::new(),
            source: Source::LazySync,
            event_type: None,
            user_id: Some(user_id.clone()),
            received_at: Some(now_ms),
            processed_at: now_ms,
            attempts: 1,
            outcome,
            reason,
            expires_at: expires_at(now_ms, retention_days),
        }
    }
}

/// The outcome to record, and for a failure its class and cause.
fn fate(result: &Result<Outcome, Failure>) -> (Outcome, Option<String>) {
    match result {
        Ok(outcome) => (*outcome, None),
        Err(failure) => (Outcome::Failed, Some(failure.to_string())),
    }
}

fn expires_at(now_ms: i64, retention_days: u32) -> i64 {
    now_ms / 1000 + i64::from(retention_days) * 24 * 3600
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessageAttribute;

    fn message(body: &str, attrs: &[(&str, &str)]) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some("m-1".into());
        m.body = Some(body.into());
        m.attributes
            .insert("ApproximateReceiveCount".into(), "3".into());
        m.attributes
            .insert("SentTimestamp".into(), "1700000000123".into());
        for (k, v) in attrs {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some((*v).into());
            a.data_type = Some("String".into());
            m.message_attributes.insert((*k).into(), a);
        }
        m
    }

    #[test]
    fn delivery_reads_the_attributes_the_webhook_set_and_the_sqs_counters() {
        let m = message(
            "{}",
            &[("svix_id", "msg_1"), ("event_type", "user.created")],
        );
        let d = Delivery::of(&m);
        assert_eq!(d.svix_id, Some("msg_1"));
        assert_eq!(d.event_type, Some("user.created"));
        assert_eq!(d.attempt, 3);
        assert_eq!(d.queued_at, Some(1_700_000_000_123));
        assert_eq!(d.log_key(), "msg_1");
        assert_eq!(d.body().unwrap(), "{}");
    }

    #[test]
    fn base64_bodies_are_decoded_and_undecodable_ones_are_poison() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("{\"a\":\"\u{FFFF}\"}");
        let m = message(&encoded, &[("content_encoding", "base64")]);
        assert_eq!(Delivery::of(&m).body().unwrap(), "{\"a\":\"\u{FFFF}\"}");
        let m = message("not base64!", &[("content_encoding", "base64")]);
        assert!(matches!(Delivery::of(&m).body(), Err(Poison::BadEncoding)));
    }

    #[test]
    fn a_message_without_svix_id_is_logged_under_its_sqs_message_id() {
        let m = message("{}", &[]);
        assert_eq!(Delivery::of(&m).log_key(), "sqs:m-1");
    }

    #[test]
    fn other_event_types_are_acknowledged_and_bad_user_events_are_poison() {
        assert!(matches!(
            Parsed::from_body(r#"{"type":"session.created","data":{}}"#),
            Ok(Parsed::Other { event_type }) if event_type == "session.created"
        ));
        assert!(matches!(
            Parsed::from_body(r#"{"type":"user.updated","data":{"id":"user_1"}}"#),
            Err(Poison::Event(EventError::MissingUpdatedAt))
        ));
    }

    #[test]
    fn a_failure_is_logged_as_failed_with_its_class_and_reason() {
        let m = message("x", &[("svix_id", "msg_9")]);
        let d = Delivery::of(&m);
        let failed: Result<Outcome, Failure> = Err(Poison::NoBody.into());
        let r = LogRecord::new(&d, None, None, &failed, 1_700_000_100_000, 30);
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(r.reason.as_deref(), Some("poison: message has no body"));
        assert_eq!(r.attempts, 3);
        assert_eq!(r.expires_at, 1_700_000_100 + 30 * 86_400);
        let transient: Failure =
            DependencyError::new("dynamodb", "PutItem", std::io::Error::other("timed out")).into();
        assert_eq!(transient.class(), "transient");
        assert!(transient.to_string().contains("timed out"), "{transient}");
        let refused: Failure =
            DependencyError::refused("dynamodb", "PutItem", std::io::Error::other("too deep"))
                .into();
        assert_eq!(refused.class(), "poison");
        assert_eq!(
            refused.to_string(),
            "poison: dynamodb PutItem refused the request: too deep"
        );
    }
}
