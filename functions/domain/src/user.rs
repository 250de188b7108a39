//! Clerk users: ids, the events Clerk sends about them, and what is stored for each.
//!
//! Which write wins is [`crate::ordering`]'s to say; it needs only the stored record's
//! [`Version`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::json::{self, JsonError};
use super::metadata::Metadata;

/// A Clerk user id: `user_` and ASCII letters and digits (Clerk's own are 27 base62
/// characters). Nothing else is ever looked up, stored or put in a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, EventError> {
        let clerk_shaped = raw.len() <= 128
            && raw.strip_prefix("user_").is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if clerk_shaped {
            Ok(Self(raw.to_owned()))
        } else {
            Err(EventError::MissingUserId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = EventError;
    fn try_from(raw: String) -> Result<Self, EventError> {
        Self::parse(&raw)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}

/// Why a queued event can never be applied (poison: retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event body is not a Clerk event: {0}")]
    Unparseable(JsonError),
    #[error("event has no usable user id")]
    MissingUserId,
    #[error("user event has no updated_at")]
    MissingUpdatedAt,
    #[error("event type {0} is not a user event")]
    NotAUserEvent(String),
}

/// One email address of a user, with its verification status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    pub id: String,
    pub email_address: String,
    /// `verified`, `unverified`, …; `None` when Clerk sends no verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<String>,
}

/// The fields an application needs, as Clerk last reported them. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub email_addresses: Vec<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default)]
    pub public_metadata: Metadata,
    #[serde(default)]
    pub unsafe_metadata: Metadata,
    #[serde(default)]
    pub private_metadata: Metadata,
    #[serde(default)]
    pub banned: bool,
    #[serde(default)]
    pub locked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<i64>,
}

/// A user event, parsed from the envelope the webhook queued.
#[derive(Debug, Clone, PartialEq)]
pub enum UserEvent {
    /// `user.created` or `user.updated`: the full state at `updated_at`.
    Upsert(Box<UserProfile>),
    /// `user.deleted`; `at` is the envelope's timestamp (ms), when Clerk sent one.
    Deleted { id: UserId, at: Option<i64> },
}

impl UserEvent {
    pub fn user_id(&self) -> &UserId {
        match self {
            Self::Upsert(p) => &p.id,
            Self::Deleted { id, .. } => id,
        }
    }

    /// What this event's write stores: the user's state, or a tombstone.
    pub fn stored(&self) -> Stored {
        match self {
            Self::Upsert(profile) => Stored::Live(profile.clone()),
            Self::Deleted { id, at } => Stored::Tombstone {
                id: id.clone(),
                deleted_at: *at,
            },
        }
    }

    /// The [`Version`] of what this event's write stores, without building it.
    pub fn version(&self) -> Version {
        match self {
            Self::Upsert(profile) => Version::Live {
                updated_at: Some(profile.updated_at),
            },
            Self::Deleted { .. } => Version::Deleted,
        }
    }

    /// Parses a Clerk webhook body. Unknown fields are ignored; missing optional ones are `None`.
    pub fn parse(body: &str) -> Result<Self, EventError> {
        let envelope: Envelope = json::parse(body).map_err(EventError::Unparseable)?;
        let data = |e: JsonError| EventError::Unparseable(e.within("data"));
        match envelope.event_type.as_str() {
            "user.created" | "user.updated" => {
                let user: UserJson = json::parse(envelope.data.get()).map_err(data)?;
                Ok(Self::Upsert(Box::new(user.into_profile()?)))
            }
            "user.deleted" => {
                let data: DeletedUser = json::parse(envelope.data.get()).map_err(data)?;
                Ok(Self::Deleted {
                    id: UserId::parse(data.id.as_deref().unwrap_or_default())?,
                    at: envelope.timestamp,
                })
            }
            other => Err(EventError::NotAUserEvent(other.to_owned())),
        }
    }
}

impl UserProfile {
    /// A user object as Clerk's Backend API returns it (`GET /v1/users/{id}`): the same shape as
    /// a webhook's `data`.
    pub fn from_clerk_json(json: &str) -> Result<Self, EventError> {
        json::parse::<UserJson>(json)
            .map_err(EventError::Unparseable)?
            .into_profile()
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event_type: String,
    // Kept as text so the user is parsed once, straight into its struct, not via a `Value` tree.
    #[serde(borrow)]
    data: &'a RawValue,
    /// Informational (the delete's time), so it is read leniently: one odd field must not make
    /// every event of its type poison.
    #[serde(default, deserialize_with = "lenient_millis")]
    timestamp: Option<i64>,
}

/// A Unix-ms time sent as an integer, a float or a numeric string; anything else is `None`.
fn lenient_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let number = |f: f64| (f.is_finite() && f.abs() < 9.2e18).then_some(f as i64);
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(number)),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().and_then(number)),
        _ => None,
    })
}

#[derive(Deserialize)]
struct DeletedUser {
    id: Option<String>,
}

#[derive(Deserialize)]
struct UserJson {
    id: Option<String>,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    image_url: Option<String>,
    primary_email_address_id: Option<String>,
    #[serde(default)]
    email_addresses: Vec<EmailJson>,
    // Taken as text: never parsed, so any JSON Clerk accepted survives as it is.
    public_metadata: Option<Box<RawValue>>,
    unsafe_metadata: Option<Box<RawValue>>,
    private_metadata: Option<Box<RawValue>>,
    #[serde(default)]
    banned: bool,
    #[serde(default)]
    locked: bool,
    created_at: Option<i64>,
    updated_at: Option<i64>,
    last_sign_in_at: Option<i64>,
}

#[derive(Deserialize)]
struct EmailJson {
    id: String,
    email_address: String,
    verification: Option<VerificationJson>,
}

#[derive(Deserialize)]
struct VerificationJson {
    status: Option<String>,
}

impl UserJson {
    fn into_profile(self) -> Result<UserProfile, EventError> {
        let id = UserId::parse(self.id.as_deref().unwrap_or_default())?;
        let updated_at = self.updated_at.ok_or(EventError::MissingUpdatedAt)?;
        let email_addresses: Vec<EmailAddress> = self
            .email_addresses
            .into_iter()
            .map(|e| EmailAddress {
                id: e.id,
                email_address: e.email_address,
                verification_status: e.verification.and_then(|v| v.status),
            })
            .collect();
        let email = self
            .primary_email_address_id
            .and_then(|primary| email_addresses.iter().find(|e| e.id == primary))
            .map(|e| e.email_address.clone());
        Ok(UserProfile {
            id,
            email,
            email_addresses,
            username: self.username,
            first_name: self.first_name,
            last_name: self.last_name,
            image_url: self.image_url,
            public_metadata: metadata(self.public_metadata),
            unsafe_metadata: metadata(self.unsafe_metadata),
            private_metadata: metadata(self.private_metadata),
            banned: self.banned,
            locked: self.locked,
            created_at: self.created_at,
            updated_at,
            last_sign_in_at: self.last_sign_in_at,
        })
    }
}

fn metadata(raw: Option<Box<RawValue>>) -> Metadata {
    raw.map(Metadata::from_raw).unwrap_or_default()
}

/// What is stored for a user id: its latest state, or a tombstone without personal fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Live(Box<UserProfile>),
    Tombstone { id: UserId, deleted_at: Option<i64> },
}

/// What the ordering rules ([`crate::ordering`]) need to know of a stored record, and all a
/// store must read back to explain a refused write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// A live user last updated at `updated_at`; `None` for a record without a (numeric) one.
    Live { updated_at: Option<i64> },
    /// A tombstone.
    Deleted,
}

impl Stored {
    pub fn version(&self) -> Version {
        match self {
            Self::Live(profile) => Version::Live {
                updated_at: Some(profile.updated_at),
            },
            Self::Tombstone { .. } => Version::Deleted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clerk_fixtures_parse_into_user_events() {
        let UserEvent::Upsert(created) =
            UserEvent::parse(&devkit::fixture("user.created")).unwrap()
        else {
            panic!("upsert expected")
        };
        assert_eq!(created.id.as_str(), "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa");
        assert_eq!(created.email.as_deref(), Some("ada@example.com"));
        assert_eq!(
            created.email_addresses[0].verification_status.as_deref(),
            Some("verified")
        );
        let UserEvent::Upsert(updated) =
            UserEvent::parse(&devkit::fixture("user.updated")).unwrap()
        else {
            panic!("upsert expected")
        };
        assert!(updated.updated_at > created.updated_at);
        assert_eq!(updated.email_addresses.len(), 2);
        let deleted = UserEvent::parse(&devkit::fixture("user.deleted")).unwrap();
        assert!(matches!(deleted, UserEvent::Deleted { ref id, at: Some(_) } if id == &created.id));
    }

    #[test]
    fn poison_bodies_are_told_apart() {
        assert!(matches!(
            UserEvent::parse("nope"),
            Err(EventError::Unparseable(_))
        ));
        let no_id = r#"{"type":"user.updated","data":{"updated_at":1}}"#;
        assert_eq!(UserEvent::parse(no_id), Err(EventError::MissingUserId));
        let no_time = r#"{"type":"user.updated","data":{"id":"user_1"}}"#;
        assert_eq!(UserEvent::parse(no_time), Err(EventError::MissingUpdatedAt));
        let thin_delete = r#"{"type":"user.deleted","data":{"deleted":true}}"#;
        assert_eq!(
            UserEvent::parse(thin_delete),
            Err(EventError::MissingUserId)
        );
        let other = r#"{"type":"session.created","data":{"id":"sess_1"}}"#;
        assert!(matches!(
            UserEvent::parse(other),
            Err(EventError::NotAUserEvent(_))
        ));
    }

    #[test]
    fn only_clerk_shaped_user_ids_are_ids() {
        for good in ["user_1", "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa"] {
            assert!(UserId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "user_", "usr_1", "user_a/b", "user_a b", "user_%2e", "user_a_b", "org_1",
        ] {
            assert_eq!(UserId::parse(bad), Err(EventError::MissingUserId), "{bad}");
        }
        assert!(UserId::parse(&format!("user_{}", "a".repeat(124))).is_err());
    }

    #[test]
    fn the_envelope_timestamp_is_read_leniently_and_never_makes_a_delete_poison() {
        let delete = |ts: &str| {
            UserEvent::parse(&format!(
                r#"{{"type":"user.deleted","timestamp":{ts},"data":{{"id":"user_1","deleted":true}}}}"#
            ))
        };
        let at = |ts: &str| match delete(ts) {
            Ok(UserEvent::Deleted { at, .. }) => at,
            other => panic!("{ts}: {other:?}"),
        };
        assert_eq!(at("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(at("1700000000123.9"), Some(1_700_000_000_123));
        assert_eq!(at(r#""1700000000123""#), Some(1_700_000_000_123));
        assert_eq!(at("null"), None);
        assert_eq!(at(r#""soon""#), None);
        assert_eq!(at(r#"{"ms":1}"#), None);
        assert_eq!(at("1e300"), None);
    }

    #[test]
    fn metadata_is_kept_as_the_exact_text_clerk_sent() {
        let mut event: Value = serde_json::from_str(&devkit::fixture("user.created")).unwrap();
        event["data"]["unsafe_metadata"] = Value::Null;
        let body = event.to_string().replace(
            r#""unsafe_metadata":null"#,
            r#""unsafe_metadata":{"score":1e200, "n":-1e130}"#,
        );
        let UserEvent::Upsert(user) = UserEvent::parse(&body).unwrap() else {
            panic!("upsert expected")
        };
        assert_eq!(
            user.unsafe_metadata.as_str(),
            r#"{"score":1e200, "n":-1e130}"#
        );
        assert!(!user.public_metadata.is_null());
        let no_metadata = r#"{"type":"user.updated","data":{"id":"user_1","updated_at":1}}"#;
        let UserEvent::Upsert(user) = UserEvent::parse(no_metadata).unwrap() else {
            panic!("upsert expected")
        };
        assert!(user.private_metadata.is_null());
    }

    #[test]
    fn a_poison_reason_names_the_field_but_never_its_value() {
        let body = r#"{"type":"user.updated","data":{"id":"user_1","updated_at":1,"first_name":{"secret":"ada@example.com"}}}"#;
        let Err(EventError::Unparseable(e)) = UserEvent::parse(body) else {
            panic!("unparseable expected")
        };
        assert_eq!(e.path, "data.first_name");
        let reason = EventError::Unparseable(e).to_string();
        assert!(
            !reason.contains("ada@example.com") && !reason.contains("secret"),
            "{reason}"
        );
    }
}
