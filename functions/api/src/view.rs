//! What the api answers with: the public view of a user (never `private_metadata` or
//! `unsafe_metadata`) and the health report.

use std::collections::BTreeMap;
use std::time::Duration;

use clerk_sync::domain::user::{EmailAddress, UserProfile};
use serde::Serialize;
use serde_json::value::RawValue;

/// `GET /v1/users/me` and `/v1/users/{id}`. Times are Clerk's Unix milliseconds.
#[derive(Debug, Serialize)]
pub struct UserView<'a> {
    pub id: &'a str,
    pub email: Option<&'a str>,
    pub email_addresses: Vec<EmailView<'a>>,
    pub username: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub image_url: Option<&'a str>,
    /// Exactly the JSON Clerk sent (`{}` when it sent none).
    pub public_metadata: &'a RawValue,
    pub created_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Serialize)]
pub struct EmailView<'a> {
    pub id: &'a str,
    pub email_address: &'a str,
    pub verification_status: Option<&'a str>,
}

impl<'a> From<&'a EmailAddress> for EmailView<'a> {
    fn from(e: &'a EmailAddress) -> Self {
        Self {
            id: &e.id,
            email_address: &e.email_address,
            verification_status: e.verification_status.as_deref(),
        }
    }
}

static EMPTY_OBJECT: std::sync::LazyLock<Box<RawValue>> =
    std::sync::LazyLock::new(|| RawValue::from_string("{}".to_owned()).expect("{} is JSON"));

impl<'a> From<&'a UserProfile> for UserView<'a> {
    fn from(u: &'a UserProfile) -> Self {
        Self {
            id: u.id.as_str(),
            email: u.email.as_deref(),
            email_addresses: u.email_addresses.iter().map(EmailView::from).collect(),
            username: u.username.as_deref(),
            first_name: u.first_name.as_deref(),
            last_name: u.last_name.as_deref(),
            image_url: u.image_url.as_deref(),
            public_metadata: if u.public_metadata.is_null() {
                &EMPTY_OBJECT
            } else {
                u.public_metadata.as_raw()
            },
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// One dependency's health.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `ok` or `down`.
    pub status: &'static str,
    pub latency_ms: u64,
}

impl Check {
    pub fn new(ok: bool, latency: Duration) -> Self {
        Self {
            status: if ok { "ok" } else { "down" },
            latency_ms: latency.as_millis() as u64,
        }
    }
}

/// `GET /health`: `ok` with 200 when every check is; else `unavailable` with 503 and the
/// failing checks named.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<&'static str>,
    pub checks: BTreeMap<&'static str, Check>,
}

impl Health {
    pub fn from_checks(checks: impl IntoIterator<Item = (&'static str, Check)>) -> Self {
        let checks: BTreeMap<_, _> = checks.into_iter().collect();
        let failing: Vec<_> = checks
            .iter()
            .filter(|(_, c)| c.status != "ok")
            .map(|(name, _)| *name)
            .collect();
        Self {
            status: if failing.is_empty() {
                "ok"
            } else {
                "unavailable"
            },
            failing,
            checks,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.failing.is_empty()
    }
}
