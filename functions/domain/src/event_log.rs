//! One event-log item: the audit trail ops read and the record of every event's fate.

use serde::{Deserialize, Serialize};

use crate::delivery::Delivery;
use crate::outcome::{Failure, Outcome};
use crate::user::UserId;

/// What wrote a user record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A webhook event, applied by the sync function.
    #[default]
    Webhook,
    /// The api, fetching a user from Clerk's Backend API before its webhook arrived.
    LazySync,
    /// `clerk-sync-ops backfill`: a user from Clerk's user list.
    Backfill,
    /// `clerk-sync-ops resync`: a user fetched by id for a support ticket.
    Resync,
    /// `clerk-sync-ops reconcile --fix`: a drifted user repaired (or tombstoned when Clerk no
    /// longer has it).
    Reconcile,
}

impl Source {
    /// The prefix of this source's writer ids: never a Svix message id's `msg_`, so a writer id
    /// says which source wrote a record.
    pub fn writer_prefix(self) -> &'static str {
        match self {
            Self::Webhook => "msg_",
            Self::LazySync => LAZY_SYNC_PREFIX,
            Self::Backfill => "backfill:",
            Self::Resync => "resync:",
            Self::Reconcile => "reconcile:",
        }
    }
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
        Self::direct(
            Source::LazySync,
            writer,
            user_id,
            result,
            now_ms,
            retention_days,
        )
    }

    /// The record of one write of `user_id` that did not come through the queue (a lazy sync,
    /// a backfill, a resync, a reconcile repair), by `writer`, finished at `now_ms`.
    pub fn direct(
        source: Source,
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
            source,
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
    use std::borrow::Cow;

    use super::*;
    use crate::dependency::DependencyError;
    use crate::outcome::Poison;

    #[test]
    fn a_failure_is_logged_as_failed_with_its_class_and_reason() {
        let d = Delivery {
            message_id: "m-1",
            svix_id: Some("msg_9"),
            event_type: Some("user.updated"),
            attempt: 3,
            queued_at: Some(1_700_000_000_123),
            body: Ok(Cow::Borrowed("x")),
        };
        let failed: Result<Outcome, Failure> = Err(Poison::NoBody.into());
        let r = LogRecord::new(&d, None, None, &failed, 1_700_000_100_000, 30);
        assert_eq!(r.svix_id, "msg_9");
        assert_eq!(r.event_type.as_deref(), Some("user.updated"));
        assert_eq!(r.received_at, Some(1_700_000_000_123));
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

    #[test]
    fn every_source_but_the_webhook_has_a_writer_prefix_no_svix_id_can_carry() {
        for source in [
            Source::LazySync,
            Source::Backfill,
            Source::Resync,
            Source::Reconcile,
        ] {
            assert!(!source.writer_prefix().starts_with("msg_"), "{source:?}");
            assert!(source.writer_prefix().ends_with(':'), "{source:?}");
        }
        let record = LogRecord::direct(
            Source::Backfill,
            "backfill:1:user_1",
            &UserId::parse("user_1").unwrap(),
            &Ok(Outcome::Applied),
            1_000,
            1,
        );
        assert_eq!(serde_json::to_value(&record).unwrap()["source"], "backfill");
    }

    #[test]
    fn lazy_sync_writer_ids_are_unique_and_never_look_like_a_svix_id() {
        let (a, b) = (LogRecord::lazy_sync_writer(), LogRecord::lazy_sync_writer());
        assert_ne!(a, b);
        assert!(
            a.starts_with(LAZY_SYNC_PREFIX) && !a.starts_with("msg_"),
            "{a}"
        );
        assert_eq!(a.len(), LAZY_SYNC_PREFIX.len() + 32);
    }
}
