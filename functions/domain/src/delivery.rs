//! One queued event as the sync worker receives it, in the domain's terms (the SQS adapter
//! decodes the wire message into this), and what its body says.

use std::borrow::Cow;

use crate::outcome::Poison;
use crate::user::{EventError, UserEvent};

/// The queue's side of one message: who it is, which attempt, and its body.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The queue's id of the message.
    pub message_id: &'a str,
    /// The Svix message id the webhook queued the event under.
    pub svix_id: Option<&'a str>,
    /// The event type the webhook saw (the body's `type`).
    pub event_type: Option<&'a str>,
    /// 1 on the first delivery.
    pub attempt: u32,
    /// When the webhook queued the event (Unix ms).
    pub queued_at: Option<i64>,
    /// The verified webhook payload as the webhook queued it, or why it cannot be read.
    pub body: Result<Cow<'a, str>, Poison>,
}

impl<'a> Delivery<'a> {
    /// The event-log key: the svix id, or the queue's message id for a message without one.
    pub fn log_key(&self) -> Cow<'a, str> {
        match self.svix_id {
            Some(id) => Cow::Borrowed(id),
            None => Cow::Owned(format!("sqs:{}", self.message_id)),
        }
    }

    /// The body, parsed; only poison is an error.
    pub fn parse(&self) -> Result<Parsed, Poison> {
        match &self.body {
            Ok(body) => Parsed::from_body(body),
            Err(poison) => Err(poison.clone()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(
        svix_id: Option<&'static str>,
        body: Result<&'static str, Poison>,
    ) -> Delivery<'static> {
        Delivery {
            message_id: "m-1",
            svix_id,
            event_type: None,
            attempt: 1,
            queued_at: None,
            body: body.map(Cow::Borrowed),
        }
    }

    #[test]
    fn a_message_is_logged_under_its_svix_id_or_else_its_queue_message_id() {
        assert_eq!(delivery(Some("msg_1"), Ok("{}")).log_key(), "msg_1");
        assert_eq!(delivery(None, Ok("{}")).log_key(), "sqs:m-1");
    }

    #[test]
    fn other_event_types_are_acknowledged_and_bad_user_events_are_poison() {
        assert!(matches!(
            delivery(None, Ok(r#"{"type":"session.created","data":{}}"#)).parse(),
            Ok(Parsed::Other { event_type }) if event_type == "session.created"
        ));
        assert!(matches!(
            delivery(
                None,
                Ok(r#"{"type":"user.updated","data":{"id":"user_1"}}"#)
            )
            .parse(),
            Err(Poison::Event(EventError::MissingUpdatedAt))
        ));
        assert!(matches!(
            delivery(None, Err(Poison::BadEncoding)).parse(),
            Err(Poison::BadEncoding)
        ));
    }
}
