//! [`UserStore`] and [`EventLog`] over DynamoDB: one conditional `PutItem` per event and one per
//! log record. Items are mapped with `serde_dynamo`; the domain's ordering [`Precondition`] is
//! translated into the write's condition, and a refusal is explained by the domain's [`Refusal`].

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};

use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::aws::sdk_error;
use crate::domain::event_log::LogRecord;
use crate::domain::ordering::{Precondition, Refusal};
use crate::domain::outcome::Outcome;
use crate::domain::user::{Stored, UserEvent, UserId, UserProfile, Version};
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
    /// The id of the write that produced the stored state: a Svix message id, or a lazy sync's.
    pub const LAST_SVIX_ID: &str = "last_svix_id";
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

/// A live user as stored: the profile plus the bookkeeping of which event wrote it. Metadata
/// fields are stored as their JSON text (see [`crate::domain::metadata::Metadata`]).
#[derive(Serialize)]
struct LiveItem<'a> {
    #[serde(flatten)]
    profile: &'a UserProfile,
    deleted: bool,
    last_svix_id: &'a str,
    synced_at: i64,
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

/// The users-table item for `stored`, written by `writer` (a Svix message id, or a lazy sync's
/// own id) at `now_ms`.
pub fn user_item(stored: &Stored, writer: &str, now_ms: i64) -> Result<Item, DependencyError> {
    match stored {
        Stored::Live(profile) => serde_dynamo::to_item(LiveItem {
            profile,
            deleted: false,
            last_svix_id: writer,
            synced_at: now_ms,
        }),
        Stored::Tombstone { id, deleted_at } => serde_dynamo::to_item(TombstoneItem {
            id: id.clone(),
            deleted: true,
            deleted_at: *deleted_at,
            last_svix_id: writer.to_owned(),
            synced_at: now_ms,
        }),
    }
    // Our own item not mapping is the same on every attempt.
    .map_err(|e| DependencyError::refused("dynamodb", "PutItem", e))
}

/// A tombstone is an item whose `deleted` is `true`; any other item, one without `deleted`
/// included, is live. [`condition`] says exactly the same.
fn is_tombstone(item: &Item) -> bool {
    matches!(item.get(users::DELETED), Some(AttributeValue::Bool(true)))
}

/// A stored item that does not read as what it should be. Says where, never with which value
/// (serde's own messages quote it, and it may be an email).
#[derive(Debug, thiserror::Error)]
#[error("stored item has an unexpected type or a missing field at {path}")]
pub struct ItemError {
    pub path: String,
}

/// `serde_dynamo::from_item`, tracking the path for [`ItemError`].
fn read_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, ItemError> {
    let item = serde_dynamo::AttributeValue::M(serde_dynamo::Item::from(item).into());
    serde_path_to_error::deserialize(serde_dynamo::Deserializer::from_attribute_value(item))
        .map_err(|e| ItemError {
            path: e.path().to_string(),
        })
}

/// Reads a users-table item back as the stored state.
fn from_item(item: Item) -> Result<Stored, ItemError> {
    if is_tombstone(&item) {
        let t: TombstoneItem = read_item(item)?;
        Ok(Stored::Tombstone {
            id: t.id,
            deleted_at: t.deleted_at,
        })
    } else {
        // The bookkeeping attributes are simply not fields of the profile.
        Ok(Stored::Live(Box::new(read_item::<UserProfile>(item)?)))
    }
}

/// What a refused write is explained from: the record's [`Version`] and the id of the event
/// that wrote it, read from the bookkeeping attributes only. The profile is never looked at,
/// so no stored field, old or new, can turn a stale or duplicate event into a failure.
fn bookkeeping(item: &Item) -> (Version, Option<&str>) {
    let version = if is_tombstone(item) {
        Version::Deleted
    } else {
        // Anything but a number is no `updated_at`, as [`condition`]'s `attribute_type` says.
        let updated_at = match item.get(users::UPDATED_AT) {
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .ok()
                .or_else(|| n.parse::<f64>().ok().map(|f| f.ceil() as i64)),
            _ => None,
        };
        Version::Live { updated_at }
    };
    let writer = match item.get(users::LAST_SVIX_ID) {
        Some(AttributeValue::S(writer)) => Some(writer.as_str()),
        _ => None,
    };
    (version, writer)
}

/// A DynamoDB condition: the expression and exactly the names and values it uses.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    expression: &'static str,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// `precondition` as the condition of a `PutItem` of a users-table item: DynamoDB refuses the
/// write exactly when [`Precondition::holds`] is false of the stored item as [`bookkeeping`]
/// reads it. `NOT #deleted = :true` is "live": it holds when `deleted` is absent or not `true`,
/// as [`is_tombstone`] reads it; an `updated_at` that is not a number counts as missing.
fn condition(precondition: Precondition) -> Condition {
    let names = |names: &[(&str, &str)]| {
        names
            .iter()
            .map(|&(placeholder, name)| (placeholder.to_owned(), name.to_owned()))
            .collect()
    };
    let is_true = (":true".to_owned(), AttributeValue::Bool(true));
    match precondition {
        Precondition::AbsentOrLiveOlderThan(updated_at) => Condition {
            expression: "attribute_not_exists(#id) OR (NOT #deleted = :true AND \
                         (NOT attribute_type(#updated_at, :number) OR #updated_at < :updated_at))",
            names: names(&[
                ("#id", users::ID),
                ("#deleted", users::DELETED),
                ("#updated_at", users::UPDATED_AT),
            ]),
            values: HashMap::from([
                is_true,
                (":number".to_owned(), AttributeValue::S("N".into())),
                (
                    ":updated_at".to_owned(),
                    AttributeValue::N(updated_at.to_string()),
                ),
            ]),
        },
        Precondition::AbsentOrLive => Condition {
            expression: "attribute_not_exists(#id) OR NOT #deleted = :true",
            names: names(&[("#id", users::ID), ("#deleted", users::DELETED)]),
            values: HashMap::from([is_true]),
        },
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
        writer: &str,
        now_ms: i64,
    ) -> Result<Outcome, DependencyError> {
        let condition = condition(Precondition::of(event));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(user_item(&event.stored(), writer, now_ms)?))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let refused = match request.send().await {
            Ok(_) => return Ok(Outcome::Applied),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                    refused.item.clone()
                }
                _ => return Err(sdk_error("dynamodb", "PutItem", e)),
            },
        };
        // Refused: say why, from the item as it was when the condition was evaluated.
        let current = match refused {
            Some(item) => Some(item),
            None => self.read(event.user_id(), true).await?,
        };
        let Some(current) = current else {
            return Err(DependencyError::new(
                "dynamodb",
                "PutItem",
                "condition refused a write to an absent item",
            ));
        };
        let (version, stored_writer) = bookkeeping(&current);
        Refusal::explain(version, stored_writer, writer, event)
            .outcome()
            // The item changed between the condition and this read: a retry decides afresh.
            .ok_or_else(|| {
                DependencyError::new(
                    "dynamodb",
                    "PutItem",
                    "condition refused a write the ordering rules allow",
                )
            })
    }

    async fn get(&self, id: &UserId) -> Result<Option<Stored>, DependencyError> {
        self.read(id, false)
            .await?
            .map(from_item)
            .transpose()
            .map_err(|e| DependencyError::refused("dynamodb", "GetItem", e))
    }
}

impl DynamoUserStore {
    /// A user's item, read consistently: whole, or only its bookkeeping attributes.
    async fn read(&self, id: &UserId, bookkeeping: bool) -> Result<Option<Item>, DependencyError> {
        let mut request = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(users::ID, AttributeValue::S(id.as_str().to_owned()))
            .consistent_read(true);
        if bookkeeping {
            request = request
                .projection_expression("#id, #deleted, #updated_at, #writer")
                .expression_attribute_names("#id", users::ID)
                .expression_attribute_names("#deleted", users::DELETED)
                .expression_attribute_names("#updated_at", users::UPDATED_AT)
                .expression_attribute_names("#writer", users::LAST_SVIX_ID);
        }
        let out = request
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "GetItem", e))?;
        Ok(out.item)
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
            .map_err(|e| sdk_error("dynamodb", "GetItem", e))
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
            .map_err(|e| sdk_error("dynamodb", "GetItem", e))?;
        out.item
            .map(read_item)
            .transpose()
            .map_err(|e| DependencyError::refused("dynamodb", "GetItem", e))
    }
}

#[async_trait]
impl EventLog for DynamoEventLog {
    async fn record(&self, record: &LogRecord) -> Result<(), DependencyError> {
        let item: Item = serde_dynamo::to_item(record)
            .map_err(|e| DependencyError::refused("dynamodb", "PutItem", e))?;
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
            Err(e) => Err(sdk_error("dynamodb", "PutItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_round_trip_through_items_with_metadata_as_text_and_bookkeeping() {
        let UserEvent::Upsert(profile) =
            UserEvent::parse(&devkit::fixture("user.updated")).unwrap()
        else {
            panic!("upsert expected")
        };
        let live = Stored::Live(profile.clone());
        let item = user_item(&live, "msg_1", 42).unwrap();
        assert_eq!(item.get(users::DELETED), Some(&AttributeValue::Bool(false)));
        assert_eq!(
            item.get(users::LAST_SVIX_ID),
            Some(&AttributeValue::S("msg_1".into()))
        );
        assert_eq!(
            item.get("private_metadata"),
            Some(&AttributeValue::S(profile.private_metadata.as_str().into()))
        );
        assert_eq!(
            bookkeeping(&item),
            (
                Version::Live {
                    updated_at: Some(profile.updated_at)
                },
                Some("msg_1")
            )
        );
        assert_eq!(from_item(item).unwrap(), live);

        let tomb = Stored::Tombstone {
            id: profile.id.clone(),
            deleted_at: Some(7),
        };
        let item = user_item(&tomb, "msg_2", 43).unwrap();
        assert_eq!(item.get(users::DELETED), Some(&AttributeValue::Bool(true)));
        assert!(!item.contains_key("email") && !item.contains_key(users::UPDATED_AT));
        assert_eq!(bookkeeping(&item), (Version::Deleted, Some("msg_2")));
        assert_eq!(from_item(item).unwrap(), tomb);
    }

    #[test]
    fn an_item_with_native_metadata_written_before_still_reads() {
        let UserEvent::Upsert(profile) =
            UserEvent::parse(&devkit::fixture("user.updated")).unwrap()
        else {
            panic!("upsert expected")
        };
        let mut item = user_item(&Stored::Live(profile.clone()), "msg_1", 42).unwrap();
        let native = |text: &str| {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            serde_dynamo::to_attribute_value::<_, AttributeValue>(value).unwrap()
        };
        for field in ["public_metadata", "private_metadata", "unsafe_metadata"] {
            let text = match item.get(field) {
                Some(AttributeValue::S(text)) => text.clone(),
                other => panic!("{field} stored as {other:?}"),
            };
            item.insert(field.to_owned(), native(&text));
        }
        assert!(matches!(
            item.get("public_metadata"),
            Some(AttributeValue::M(_))
        ));
        let Stored::Live(read) = from_item(item).unwrap() else {
            panic!("live expected")
        };
        for (read, sent) in [
            (&read.public_metadata, &profile.public_metadata),
            (&read.private_metadata, &profile.private_metadata),
        ] {
            let read: serde_json::Value = serde_json::from_str(read.as_str()).unwrap();
            let sent: serde_json::Value = serde_json::from_str(sent.as_str()).unwrap();
            assert_eq!(read, sent);
        }
    }

    #[test]
    fn an_unreadable_item_is_explained_by_its_path_without_its_values() {
        let item: Item = [
            (users::ID.to_owned(), AttributeValue::S("user_1".into())),
            (
                users::UPDATED_AT.to_owned(),
                AttributeValue::S("ada@example.com".into()),
            ),
        ]
        .into();
        let e = from_item(item).unwrap_err();
        assert_eq!(e.path, "updated_at");
        assert!(!e.to_string().contains("ada"), "{e}");
    }

    #[test]
    fn a_condition_defines_exactly_the_placeholders_its_expression_uses() {
        // DynamoDB refuses a request with an unused or undefined name or value.
        for precondition in [
            Precondition::AbsentOrLiveOlderThan(7),
            Precondition::AbsentOrLive,
        ] {
            let condition = condition(precondition);
            let used = |sigil: char| {
                let mut used: Vec<String> = condition
                    .expression
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == sigil))
                    .filter(|word| word.starts_with(sigil))
                    .map(str::to_owned)
                    .collect();
                used.sort_unstable();
                used.dedup();
                used
            };
            let mut names: Vec<String> = condition.names.keys().cloned().collect();
            let mut values: Vec<String> = condition.values.keys().cloned().collect();
            names.sort_unstable();
            values.sort_unstable();
            assert_eq!(used('#'), names, "{precondition:?}");
            assert_eq!(used(':'), values, "{precondition:?}");
        }
    }

    #[test]
    fn bookkeeping_counts_an_item_without_deleted_or_updated_at_as_live_and_older() {
        let item: Item = [(users::ID.to_owned(), AttributeValue::S("user_1".into()))].into();
        assert_eq!(
            bookkeeping(&item),
            (Version::Live { updated_at: None }, None)
        );
        let odd: Item = [
            (users::DELETED.to_owned(), AttributeValue::S("true".into())),
            (
                users::UPDATED_AT.to_owned(),
                AttributeValue::S("yesterday".into()),
            ),
        ]
        .into();
        assert_eq!(
            bookkeeping(&odd),
            (Version::Live { updated_at: None }, None)
        );
    }
}
