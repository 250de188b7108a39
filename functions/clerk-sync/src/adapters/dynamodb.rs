//! [`UserStore`] and [`EventLog`] over DynamoDB: one conditional `PutItem` per event and one per
//! log record. Items are mapped with `serde_dynamo`; the ordering rule lives in the condition.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};

use crate::domain::delivery::{LogRecord, Outcome};
use crate::domain::user::{Decision, Stored, UserEvent, UserId, UserProfile, decide};
use crate::ports::{DependencyError, EventLog, Probe, UserStore};

type Item = HashMap<String, AttributeValue>;

/// Users table attribute names the conditions and readers rely on.
pub mod users {
    /// Partition key: the Clerk user id.
    pub const ID: &str = "id";
    /// `true` on a tombstone.
    pub const DELETED: &str = "deleted";
    /// Clerk's `updated_at` (Unix ms) of the stored state; absent on tombstones.
    pub const UPDATED_AT: &str = "updated_at";
}

/// Event-log attribute names.
pub mod event_log {
    /// Partition key.
    pub const SVIX_ID: &str = "svix_id";
    pub const OUTCOME: &str = "outcome";
    /// TTL attribute (Unix seconds).
    pub const EXPIRES_AT: &str = "expires_at";
    /// The `by_user` index: every event of a user, by the time it was queued.
    pub const BY_USER_INDEX: &str = "by_user";
    pub const USER_ID: &str = "user_id";
    pub const RECEIVED_AT: &str = "received_at";
}

/// A live user as stored: the profile plus the bookkeeping of which event wrote it.
#[derive(Serialize)]
struct LiveItem<'a> {
    #[serde(flatten)]
    profile: &'a UserProfile,
    deleted: bool,
    last_svix_id: &'a str,
    synced_at: i64,
}

#[derive(Deserialize)]
struct StoredLive {
    #[serde(flatten)]
    profile: UserProfile,
    #[serde(default)]
    last_svix_id: String,
}

/// A deleted user: no personal field survives, only the id and when it was deleted.
#[derive(Serialize, Deserialize)]
struct TombstoneItem {
    id: UserId,
    deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<i64>,
    #[serde(default)]
    last_svix_id: String,
    synced_at: i64,
}

fn mapping_error(operation: &'static str, e: serde_dynamo::Error) -> DependencyError {
    DependencyError::new("dynamodb", operation, e)
}

/// The users-table item for `stored`, written by Svix message `svix_id` at `now_ms`.
pub fn user_item(stored: &Stored, svix_id: &str, now_ms: i64) -> Result<Item, DependencyError> {
    match stored {
        Stored::Live(profile) => serde_dynamo::to_item(LiveItem {
            profile,
            deleted: false,
            last_svix_id: svix_id,
            synced_at: now_ms,
        }),
        Stored::Tombstone { id, deleted_at } => serde_dynamo::to_item(TombstoneItem {
            id: id.clone(),
            deleted: true,
            deleted_at: *deleted_at,
            last_svix_id: svix_id.to_owned(),
            synced_at: now_ms,
        }),
    }
    .map_err(|e| mapping_error("PutItem", e))
}

/// Reads a users-table item back: the stored state and the svix id that wrote it.
fn from_item(item: Item) -> Result<(Stored, String), serde_dynamo::Error> {
    if matches!(item.get(users::DELETED), Some(AttributeValue::Bool(true))) {
        let t: TombstoneItem = serde_dynamo::from_item(item)?;
        Ok((
            Stored::Tombstone {
                id: t.id,
                deleted_at: t.deleted_at,
            },
            t.last_svix_id,
        ))
    } else {
        let l: StoredLive = serde_dynamo::from_item(item)?;
        Ok((Stored::Live(Box::new(l.profile)), l.last_svix_id))
    }
}

/// The users table.
#[derive(Clone)]
pub struct DynamoUserStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoUserStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl UserStore for DynamoUserStore {
    async fn apply(
        &self,
        event: &UserEvent,
        svix_id: &str,
        now_ms: i64,
    ) -> Result<Outcome, DependencyError> {
        // What `decide` writes when nothing newer is stored; the condition below refuses it
        // exactly when `decide` would not apply it.
        let Decision::Apply(target) = decide(None, event) else {
            unreachable!("an event always applies to an unknown user")
        };
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(user_item(&target, svix_id, now_ms)?))
            .expression_attribute_names("#id", users::ID)
            .expression_attribute_names("#deleted", users::DELETED)
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let request = match event {
            // Newer than a live record, or the first of its user.
            UserEvent::Upsert(profile) => request
                .condition_expression(
                    "attribute_not_exists(#id) OR (#deleted = :false AND #updated_at < :updated_at)",
                )
                .expression_attribute_names("#updated_at", users::UPDATED_AT)
                .expression_attribute_values(
                    ":updated_at",
                    AttributeValue::N(profile.updated_at.to_string()),
                ),
            // A delete wins over anything but an earlier delete.
            UserEvent::Deleted { .. } => {
                request.condition_expression("attribute_not_exists(#id) OR #deleted = :false")
            }
        };
        let refused = match request.send().await {
            Ok(_) => return Ok(Outcome::Applied),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                    refused,
                ) => refused,
                other => return Err(DependencyError::new("dynamodb", "PutItem", other)),
            },
        };
        // Refused: say why, from the item as it was when the condition was evaluated.
        let current = match refused.item {
            Some(item) => Some(from_item(item).map_err(|e| mapping_error("PutItem", e))?),
            None => self.get_with_writer(event.user_id()).await?,
        };
        let Some((stored, writer)) = current else {
            return Err(DependencyError::new(
                "dynamodb",
                "PutItem",
                "condition refused a write to an absent item",
            ));
        };
        if writer == svix_id {
            return Ok(Outcome::Applied);
        }
        match decide(Some(&stored), event) {
            Decision::Stale => Ok(Outcome::Stale),
            Decision::Duplicate => Ok(Outcome::Duplicate),
            Decision::Apply(_) => Err(DependencyError::new(
                "dynamodb",
                "PutItem",
                "condition refused a write the ordering rules allow",
            )),
        }
    }

    async fn get(&self, id: &UserId) -> Result<Option<Stored>, DependencyError> {
        Ok(self.get_with_writer(id).await?.map(|(stored, _)| stored))
    }
}

impl DynamoUserStore {
    async fn get_with_writer(
        &self,
        id: &UserId,
    ) -> Result<Option<(Stored, String)>, DependencyError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(users::ID, AttributeValue::S(id.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DependencyError::new("dynamodb", "GetItem", e))?;
        out.item
            .map(from_item)
            .transpose()
            .map_err(|e| mapping_error("GetItem", e))
    }
}

#[async_trait]
impl Probe for DynamoUserStore {
    /// Reads a key no user has: proves the table exists and the role may read it.
    async fn probe(&self) -> Result<(), DependencyError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(users::ID, AttributeValue::S("health-check".into()))
            .projection_expression("#id")
            .expression_attribute_names("#id", users::ID)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DependencyError::new("dynamodb", "GetItem", e))
    }
}

/// The event-log table.
#[derive(Clone)]
pub struct DynamoEventLog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoEventLog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The record of one Svix message, if any.
    pub async fn get(&self, svix_id: &str) -> Result<Option<LogRecord>, DependencyError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(event_log::SVIX_ID, AttributeValue::S(svix_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DependencyError::new("dynamodb", "GetItem", e))?;
        out.item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(|e| mapping_error("GetItem", e))
    }
}

#[async_trait]
impl EventLog for DynamoEventLog {
    async fn record(&self, record: &LogRecord) -> Result<(), DependencyError> {
        let item: Item = serde_dynamo::to_item(record).map_err(|e| mapping_error("PutItem", e))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#key) OR #outcome = :failed")
            .expression_attribute_names("#key", event_log::SVIX_ID)
            .expression_attribute_names("#outcome", event_log::OUTCOME)
            .expression_attribute_values(
                ":failed",
                AttributeValue::S(Outcome::Failed.as_str().into()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A final outcome is already recorded for this message: keep it.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(DependencyError::new("dynamodb", "PutItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_round_trip_through_items_with_metadata_and_bookkeeping() {
        let UserEvent::Upsert(profile) =
            UserEvent::parse(&devkit::fixture("user.updated")).unwrap()
        else {
            panic!("upsert expected")
        };
        let live = Stored::Live(profile.clone());
        let item = user_item(&live, "msg_1", 42).unwrap();
        assert_eq!(item.get(users::DELETED), Some(&AttributeValue::Bool(false)));
        assert_eq!(
            item.get("last_svix_id"),
            Some(&AttributeValue::S("msg_1".into()))
        );
        assert!(matches!(
            item.get("private_metadata"),
            Some(AttributeValue::M(_))
        ));
        assert_eq!(from_item(item).unwrap(), (live, "msg_1".to_owned()));

        let tomb = Stored::Tombstone {
            id: profile.id.clone(),
            deleted_at: Some(7),
        };
        let item = user_item(&tomb, "msg_2", 43).unwrap();
        assert_eq!(item.get(users::DELETED), Some(&AttributeValue::Bool(true)));
        assert!(!item.contains_key("email") && !item.contains_key(users::UPDATED_AT));
        assert_eq!(from_item(item).unwrap(), (tomb, "msg_2".to_owned()));
    }
}
