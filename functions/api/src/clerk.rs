//! Clerk over HTTPS: the JWKS endpoint ([`KeySource`]) and the Backend API ([`ClerkApi`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clerk_sync::domain::user::{UserId, UserProfile};
use clerk_sync::ports::{
    ClerkApi, ClerkError, ClerkUser, DependencyError, KeySource, SecretSource,
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// An HTTPS client with bounded timeouts, verifying servers against the system's roots.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // The AWS SDK already links aws-lc-rs; rustls uses it too (a second install is a no-op).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(1))
        .timeout(timeout)
        .user_agent(concat!("clerk-sync-api/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn unavailable(
    operation: &'static str,
    e: impl Into<clerk_sync::ports::BoxError>,
) -> DependencyError {
    DependencyError::new("clerk", operation, e)
}

/// `CLERK_API_URL` is not an http(s) URL.
#[derive(Debug, thiserror::Error)]
#[error("CLERK_API_URL is not an http(s) URL")]
pub struct InvalidApiUrl;

/// `CLERK_JWKS_URL`.
pub struct HttpKeySource {
    http: reqwest::Client,
    url: String,
}

impl HttpKeySource {
    pub fn new(http: reqwest::Client, url: impl Into<String>) -> Self {
        Self {
            http,
            url: url.into(),
        }
    }
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self) -> Result<Vec<u8>, DependencyError> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| unavailable("GetJwks", e))?;
        if !response.status().is_success() {
            return Err(unavailable(
                "GetJwks",
                format!("JWKS endpoint answered {}", response.status()),
            ));
        }
        Ok(response
            .bytes()
            .await
            .map_err(|e| unavailable("GetJwks", e))?
            .to_vec())
    }
}

/// Clerk's Backend API, authenticated with the secret key from Secrets Manager. The key is cached
/// per container once it looks like one (`sk_…`: a placeholder set at deploy time is not kept) and
/// dropped when Clerk refuses it (401), so a rotated key is picked up on the next request.
pub struct ClerkBackendApi {
    http: reqwest::Client,
    /// Ends in a path segment (`…/v1`) to which `users/{id}` is appended, segment by segment.
    base_url: reqwest::Url,
    secret_source: Arc<dyn SecretSource>,
    secret_key: Mutex<Option<SecretString>>,
}

impl ClerkBackendApi {
    /// Fails when `base_url` is not an http(s) URL.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        secret_source: Arc<dyn SecretSource>,
    ) -> Result<Self, InvalidApiUrl> {
        let base_url = reqwest::Url::parse(base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && !u.cannot_be_a_base())
            .ok_or(InvalidApiUrl)?;
        Ok(Self {
            http,
            base_url,
            secret_source,
            secret_key: Mutex::new(None),
        })
    }

    /// `{base}/users/{id}`, the id encoded as one path segment.
    fn user_url(&self, id: &UserId) -> reqwest::Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("checked in new: the base URL has a path")
            .pop_if_empty()
            .extend(["users", id.as_str()]);
        url
    }

    async fn secret_key(&self) -> Result<SecretString, DependencyError> {
        let mut cached = self.secret_key.lock().await;
        if let Some(key) = cached.as_ref() {
            return Ok(key.clone());
        }
        let key = self.secret_source.fetch().await?;
        if !key.expose_secret().trim().starts_with("sk_") {
            return Err(unavailable(
                "GetUser",
                "the Clerk secret key secret does not hold an sk_… key",
            ));
        }
        *cached = Some(key.clone());
        Ok(key)
    }
}

#[async_trait]
impl ClerkApi for ClerkBackendApi {
    async fn get_user(&self, id: &UserId) -> Result<ClerkUser, ClerkError> {
        let key = self.secret_key().await?;
        let response = self
            .http
            .get(self.user_url(id))
            .bearer_auth(key.expose_secret().trim())
            .send()
            .await
            .map_err(|e| unavailable("GetUser", e))?;
        match response.status() {
            StatusCode::OK => {
                let body = response
                    .text()
                    .await
                    .map_err(|e| unavailable("GetUser", e))?;
                let profile =
                    UserProfile::from_clerk_json(&body).map_err(|e| unavailable("GetUser", e))?;
                if profile.id != *id {
                    return Err(unavailable("GetUser", "Clerk answered with another user").into());
                }
                Ok(ClerkUser::Found(Box::new(profile)))
            }
            StatusCode::NOT_FOUND => Ok(ClerkUser::NotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                // Rotated or revoked: read the secret again next time.
                *self.secret_key.lock().await = None;
                Err(unavailable("GetUser", "Clerk refused the secret key").into())
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_after_seconds = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 60);
                Err(ClerkError::RateLimited {
                    retry_after_seconds,
                })
            }
            status => Err(unavailable("GetUser", format!("Clerk answered {status}")).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSecret;

    #[async_trait]
    impl SecretSource for NoSecret {
        async fn fetch(&self) -> Result<SecretString, DependencyError> {
            Err(unavailable("GetSecretValue", "not in this test"))
        }
    }

    fn api(base: &str) -> Result<ClerkBackendApi, InvalidApiUrl> {
        let http = http_client(std::time::Duration::from_secs(1)).unwrap();
        ClerkBackendApi::new(http, base, Arc::new(NoSecret))
    }

    #[test]
    fn the_user_url_appends_the_id_as_one_path_segment_to_any_base() {
        let id = UserId::parse("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa").unwrap();
        for base in ["https://api.clerk.com/v1", "https://api.clerk.com/v1/"] {
            assert_eq!(
                api(base).unwrap().user_url(&id).as_str(),
                "https://api.clerk.com/v1/users/user_35kQ7zvT0cWnHq1d2xXy9RbLmAa"
            );
        }
        for bad in [
            "api.clerk.com/v1",
            "mailto:ops@example.com",
            "ftp://x/v1",
            "",
        ] {
            assert!(api(bad).is_err(), "{bad}");
        }
    }
}
