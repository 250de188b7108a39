//! Clerk over HTTPS: the JWKS endpoint ([`KeySource`]) and the Backend API ([`ClerkApi`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clerk_sync::domain::user::{UserId, UserProfile};
use clerk_sync::ports::{
    ClerkApi, ClerkError, ClerkUser, DependencyError, KeySource, SecretSource,
};
use clerk_sync::secret_cache::{CachePolicy, KeyCache, KeysUnavailable, Load, LoadError};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

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

/// The Clerk secret key, from Secrets Manager. A value that does not look like a key (`sk_…`: the
/// placeholder set at deploy time) is a failed read, remembered and retried like any other.
pub struct ClerkSecretKey(pub Arc<dyn SecretSource>);

#[async_trait]
impl Load for ClerkSecretKey {
    type Keys = SecretString;
    async fn load(&self) -> Result<SecretString, LoadError> {
        let key = self.0.fetch().await?;
        if !key.expose_secret().trim().starts_with("sk_") {
            return Err(LoadError::Unusable(
                "the Clerk secret key secret does not hold an sk_… key",
            ));
        }
        Ok(key)
    }
    fn describe(_: &SecretString) -> String {
        "the Clerk secret key".to_owned()
    }
}

/// How the secret key is cached: kept until Clerk refuses it; Secrets Manager is read at most once
/// per 30 s, whether the secret holds a placeholder, cannot be read, or holds a refused key.
pub const SECRET_KEY_POLICY: CachePolicy = CachePolicy {
    min_refresh_interval: Duration::from_secs(30),
    max_age: Duration::MAX,
};

/// Clerk's Backend API, authenticated with the secret key from Secrets Manager, cached per
/// container by a [`KeyCache`] (see [`SECRET_KEY_POLICY`]). When Clerk refuses the key (401/403),
/// the next request asks the cache for a refresh, so a rotated key is picked up without a restart.
pub struct ClerkBackendApi {
    http: reqwest::Client,
    /// Ends in a path segment (`…/v1`) to which `users/{id}` is appended, segment by segment.
    base_url: reqwest::Url,
    secret_key: KeyCache<ClerkSecretKey>,
    /// The cached key Clerk last refused.
    refused: std::sync::Mutex<Option<Arc<SecretString>>>,
}

impl ClerkBackendApi {
    /// Fails when `base_url` is not an http(s) URL.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        secret_source: Arc<dyn SecretSource>,
    ) -> Result<Self, InvalidApiUrl> {
        Self::with_key_policy(http, base_url, secret_source, SECRET_KEY_POLICY)
    }

    /// Fails when `base_url` is not an http(s) URL.
    pub fn with_key_policy(
        http: reqwest::Client,
        base_url: &str,
        secret_source: Arc<dyn SecretSource>,
        policy: CachePolicy,
    ) -> Result<Self, InvalidApiUrl> {
        let base_url = reqwest::Url::parse(base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && !u.cannot_be_a_base())
            .ok_or(InvalidApiUrl)?;
        Ok(Self {
            http,
            base_url,
            secret_key: KeyCache::with_loader(ClerkSecretKey(secret_source), policy),
            refused: std::sync::Mutex::new(None),
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

    async fn secret_key(&self) -> Result<Arc<SecretString>, DependencyError> {
        let failed = |e: KeysUnavailable| unavailable("GetUser", e);
        let key = self.secret_key.current().await.map_err(failed)?;
        let refused = self
            .refused
            .lock()
            .expect("not poisoned")
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &key));
        if !refused {
            return Ok(key);
        }
        // Rotated or revoked: read the secret again, at most once per interval.
        let fresh = self
            .secret_key
            .refresh_after_mismatch(&key)
            .await
            .map_err(failed)?;
        Ok(fresh.unwrap_or(key))
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
                // Rotated or revoked: the next request asks for the secret again.
                *self.refused.lock().expect("not poisoned") = Some(key.clone());
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
