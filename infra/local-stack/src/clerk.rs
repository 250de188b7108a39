//! A local Clerk, for running without a Clerk instance: it signs session tokens with a key pair
//! generated at start, publishes the JWKS, and answers the Backend API's `GET /v1/users/{id}`,
//! `GET /v1/users` (paged by `limit` and `starting_after`, in `created_at` order) and
//! `GET /v1/users/count` for the users in the webhook fixtures plus any generated ones, with a
//! 429 on demand. Served by the gateway under [`PREFIX`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use devkit::tokens::DevKeys;
use serde_json::{Value, json};

/// Where the local Clerk lives on the gateway.
pub const PREFIX: &str = "/_clerk";
pub const JWKS_PATH: &str = "/_clerk/.well-known/jwks.json";
pub const API_PREFIX: &str = "/_clerk/v1";

/// What the dev tool needs to mint tokens the running stack accepts.
pub fn key_file() -> PathBuf {
    crate::files::local_dir().join("clerk-dev-key.json")
}

pub struct LocalClerk {
    pub keys: DevKeys,
    /// Users by id, as the Backend API returns them.
    users: RwLock<BTreeMap<String, Value>>,
    secret_key: String,
    /// Every `rate_limit_every`-th Backend API request answers 429 (0: never).
    rate_limit_every: u64,
    retry_after_seconds: u64,
    requests: AtomicU64,
    rate_limited: AtomicU64,
}

/// The Backend API's page size limit.
pub const MAX_PAGE: usize = 500;

/// When the generated users were created: the first at this time (Unix ms), one a second after.
const GENERATED_FROM_MS: i64 = 1_735_689_600_000;

/// Generated user number `n`, as the Backend API returns a user: its id, email and times derive
/// from `n`, so every run generates the same users.
pub fn generated_user(n: usize) -> Value {
    let created_at = GENERATED_FROM_MS + n as i64 * 1000;
    json!({
        "id": format!("user_local{n:07}"),
        "object": "user",
        "username": format!("user{n}"),
        "first_name": "Generated",
        "last_name": format!("User {n}"),
        "image_url": null,
        "primary_email_address_id": format!("idn_local{n:07}"),
        "email_addresses": [{
            "id": format!("idn_local{n:07}"),
            "object": "email_address",
            "email_address": format!("user{n}@example.test"),
            "verification": {"status": "verified", "strategy": "email_code"},
        }],
        "public_metadata": {},
        "private_metadata": {},
        "unsafe_metadata": {},
        "banned": false,
        "locked": false,
        "created_at": created_at,
        "updated_at": created_at + 500,
        "last_sign_in_at": null,
    })
}

/// How the local stack's Clerk is seeded and how it misbehaves: `LOCAL_CLERK_USERS` generated
/// users (default 0), a 429 on every `LOCAL_CLERK_429_EVERY`-th Backend API request (default
/// never) with `Retry-After: LOCAL_CLERK_RETRY_AFTER` seconds (default 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalClerkOptions {
    pub generated_users: usize,
    pub rate_limit_every: u64,
    pub retry_after_seconds: u64,
}

impl LocalClerkOptions {
    pub fn from_env() -> anyhow::Result<Self> {
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse()
                    .with_context(|| format!("{name} must be a whole number")),
                _ => Ok(default),
            }
        };
        Ok(Self {
            generated_users: number("LOCAL_CLERK_USERS", 0)? as usize,
            rate_limit_every: number("LOCAL_CLERK_429_EVERY", 0)?,
            retry_after_seconds: number("LOCAL_CLERK_RETRY_AFTER", 1)?,
        })
    }
}

impl LocalClerk {
    /// A new key pair, and the users of `tests/fixtures/clerk` (latest `updated_at` per id).
    pub fn new(secret_key: &str) -> Self {
        let mut users: BTreeMap<String, Value> = BTreeMap::new();
        for fixture in ["user.created", "user.updated"] {
            let event: Value =
                serde_json::from_str(&devkit::fixture(fixture)).expect("fixture is JSON");
            let data = event["data"].clone();
            let id = data["id"].as_str().unwrap_or_default().to_owned();
            let newer = users
                .get(&id)
                .is_none_or(|u| u["updated_at"].as_i64() < data["updated_at"].as_i64());
            if newer {
                users.insert(id, data);
            }
        }
        Self {
            keys: DevKeys::generate(),
            users: RwLock::new(users),
            secret_key: secret_key.to_owned(),
            rate_limit_every: 0,
            retry_after_seconds: 1,
            requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// [`Self::new`], plus the generated users and the 429 knob of `options`.
    pub fn with_options(secret_key: &str, options: LocalClerkOptions) -> Self {
        let mut clerk = Self::new(secret_key);
        for n in 0..options.generated_users {
            clerk.put_user(generated_user(n));
        }
        clerk.rate_limit_every = options.rate_limit_every;
        clerk.retry_after_seconds = options.retry_after_seconds.max(1);
        clerk
    }

    /// Adds or replaces a user (a Backend API user object with an `id`).
    pub fn put_user(&self, user: Value) {
        let id = user["id"].as_str().unwrap_or_default().to_owned();
        self.users.write().expect("not poisoned").insert(id, user);
    }

    /// Deletes a user, as deleting it in Clerk's dashboard does (no webhook is sent here).
    pub fn remove_user(&self, id: &str) -> bool {
        self.users
            .write()
            .expect("not poisoned")
            .remove(id)
            .is_some()
    }

    /// How many users it holds.
    pub fn user_count(&self) -> usize {
        self.users.read().expect("not poisoned").len()
    }

    /// How many Backend API requests it has answered with 429.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// How many Backend API requests it has had.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The refusal for a request without the secret key, or the 429 that is due.
    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {}", self.secret_key));
        if !authorized {
            return Some(
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"errors": [{"code": "authentication_invalid"}]})),
                )
                    .into_response(),
            );
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if self.rate_limit_every > 0 && n.is_multiple_of(self.rate_limit_every) {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", self.retry_after_seconds.to_string())],
                    axum::Json(json!({"errors": [{"code": "too_many_requests"}]})),
                )
                    .into_response(),
            );
        }
        None
    }

    /// Writes the signing key for `devtool token` (a local, throwaway key) to [`key_file`].
    pub fn write_key_file(&self) -> anyhow::Result<()> {
        self.write_key_file_at(&key_file())
    }

    /// Writes the signing key file at `path`.
    pub fn write_key_file_at(&self, path: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let content = json!({
            "kid": self.keys.kid,
            "private_pem": self.keys.private_pem,
            "public_pem": self.keys.public_pem,
            "jwks": self.keys.jwks,
        });
        std::fs::write(path, serde_json::to_string_pretty(&content)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route(JWKS_PATH, axum::routing::get(jwks))
            .route(
                &format!("{API_PREFIX}/users"),
                axum::routing::get(list_users),
            )
            .route(
                &format!("{API_PREFIX}/users/count"),
                axum::routing::get(count_users),
            )
            .route(
                &format!("{API_PREFIX}/users/{{id}}"),
                axum::routing::get(get_user),
            )
            .with_state(self)
    }
}

/// The key file's keys, for minting tokens outside the stack.
pub fn read_key_file() -> anyhow::Result<DevKeys> {
    let path = key_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is the local stack running with its local Clerk? `make local`)",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text)?;
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .context("malformed key file")
    };
    Ok(DevKeys {
        kid: field("kid")?,
        private_pem: field("private_pem")?,
        public_pem: field("public_pem")?,
        jwks: v["jwks"].clone(),
    })
}

async fn jwks(State(clerk): State<Arc<LocalClerk>>) -> Response {
    axum::Json(clerk.keys.jwks.clone()).into_response()
}

async fn get_user(
    State(clerk): State<Arc<LocalClerk>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = clerk.refuse(&headers) {
        return refusal;
    }
    match clerk.users.read().expect("not poisoned").get(&id) {
        Some(user) => axum::Json(user.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errors": [{"code": "resource_not_found"}]})),
        )
            .into_response(),
    }
}

async fn count_users(State(clerk): State<Arc<LocalClerk>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = clerk.refuse(&headers) {
        return refusal;
    }
    axum::Json(json!({"object": "total_count", "total_count": clerk.user_count()})).into_response()
}

/// `GET /v1/users?limit=&starting_after=&order_by=`: a bare JSON array, as Clerk answers.
async fn list_users(
    State(clerk): State<Arc<LocalClerk>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = clerk.refuse(&headers) {
        return refusal;
    }
    let query = parse_query(uri.query().unwrap_or_default());
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(l)) if (1..=MAX_PAGE).contains(&l) => l,
        Some(_) => return bad_request("limit must be between 1 and 500"),
    };
    let descending = match query.get("order_by").map(String::as_str) {
        None | Some("-created_at") => true,
        Some("+created_at" | " created_at" | "created_at") => false,
        Some(_) => return bad_request("order_by: only created_at is served locally"),
    };
    let users = clerk.users.read().expect("not poisoned");
    let mut ordered: Vec<&Value> = users.values().collect();
    ordered.sort_by_key(|u| (u["created_at"].as_i64().unwrap_or(0), u["id"].as_str()));
    if descending {
        ordered.reverse();
    }
    let start = match query.get("starting_after") {
        None => 0,
        Some(after) => match ordered.iter().position(|u| u["id"].as_str() == Some(after)) {
            Some(i) => i + 1,
            None => return bad_request("starting_after is not a user id"),
        },
    };
    let page: Vec<&Value> = ordered.into_iter().skip(start).take(limit).collect();
    axum::Json(page).into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({"errors": [{"code": "form_param_invalid", "message": message}]})),
    )
        .into_response()
}

/// A query string's parameters, percent-decoded (`+` is a space, `%2B` a plus).
fn parse_query(query: &str) -> BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_percent_decoded_with_plus_as_space() {
        let q = parse_query("order_by=%2Bcreated_at&limit=500&starting_after=user_a&x=a+b&y=%");
        assert_eq!(q["order_by"], "+created_at");
        assert_eq!(q["limit"], "500");
        assert_eq!(q["starting_after"], "user_a");
        assert_eq!(q["x"], "a b");
        assert_eq!(q["y"], "%");
    }

    #[test]
    fn generated_users_parse_as_clerk_users_with_increasing_created_at() {
        let a = generated_user(0);
        let b = generated_user(1);
        assert!(a["created_at"].as_i64() < b["created_at"].as_i64());
        let profile =
            clerk_sync::domain::user::UserProfile::from_clerk_json(&b.to_string()).unwrap();
        assert_eq!(profile.id.as_str(), "user_local0000001");
        assert_eq!(profile.email.as_deref(), Some("user1@example.test"));
    }
}
