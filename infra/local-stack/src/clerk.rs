//! A local Clerk, for running without a Clerk instance: it signs session tokens with a key pair
//! generated at start, publishes the JWKS, and answers the Backend API's `GET /v1/users/{id}`
//! for the users in the webhook fixtures. Served by the gateway under [`PREFIX`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
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
    users: BTreeMap<String, Value>,
    secret_key: String,
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
            users,
            secret_key: secret_key.to_owned(),
        }
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
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", clerk.secret_key));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errors": [{"code": "authentication_invalid"}]})),
        )
            .into_response();
    }
    match clerk.users.get(&id) {
        Some(user) => axum::Json(user.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errors": [{"code": "resource_not_found"}]})),
        )
            .into_response(),
    }
}
