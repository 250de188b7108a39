//! Clerk webhook bodies for tests, built from the fixtures with chosen ids and times.

use serde_json::Value;

/// A `user.created` / `user.updated` body for `user_id` at `updated_at` (Unix ms). The first
/// name and email are derived from the time, so different versions have different content.
pub fn user_upsert(event_type: &str, user_id: &str, updated_at: i64) -> String {
    let mut event: Value = serde_json::from_str(&crate::fixture("user.updated")).expect("JSON");
    event["type"] = event_type.into();
    event["timestamp"] = (updated_at + 100).into();
    let data = &mut event["data"];
    data["id"] = user_id.into();
    data["updated_at"] = updated_at.into();
    data["first_name"] = format!("Version {updated_at}").into();
    data["email_addresses"][0]["email_address"] = format!("v{updated_at}@example.com").into();
    event.to_string()
}

/// A `user.deleted` body for `user_id`, sent at `timestamp` (Unix ms).
pub fn user_deleted(user_id: &str, timestamp: i64) -> String {
    let mut event: Value = serde_json::from_str(&crate::fixture("user.deleted")).expect("JSON");
    event["timestamp"] = timestamp.into();
    event["data"]["id"] = user_id.into();
    event.to_string()
}
