//! The HTTP client: every request waits for the [`RateLimiter`], sends the secret key and
//! `Clerk-API-Version`; a 429 pauses the whole run for its `Retry-After`, a 5xx or a network
//! failure is retried with jittered exponential backoff, a refused key stops the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clerk_sync::domain::user::{UserId, UserProfile};
use clerk_sync::ports::ClerkUser;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::RateLimiter;

/// The largest page `GET /v1/users` serves.
pub const MAX_PAGE: usize = 500;

/// The Backend API version the user objects are read as (the `Clerk-API-Version` header).
pub const API_VERSION: &str = "2025-04-10";

/// Why Clerk could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClerkFailure {
    /// 401/403: the secret key is wrong, revoked, or for another instance.
    #[error("Clerk refused the secret key ({0}) for {1}")]
    Unauthorized(StatusCode, &'static str),
    /// Any other 4xx: the request itself is wrong; repeating it cannot help.
    #[error("Clerk answered {status} to {operation}")]
    Refused {
        operation: &'static str,
        status: StatusCode,
    },
    /// 429s, 5xx or network failures until the retry budget ran out.
    #[error("Clerk {operation} still failing after {attempts} attempts: {last}")]
    Exhausted {
        operation: &'static str,
        attempts: u32,
        last: String,
    },
    /// A 200 whose body is not what the Backend API sends.
    #[error("Clerk answered {operation} with a body that does not read: {reason}")]
    Unreadable {
        operation: &'static str,
        reason: String,
    },
}

/// One page of the user list: each user parsed, or why not (with its id when it has one), and
/// the cursor for the next page.
#[derive(Debug)]
pub struct Page {
    pub users: Vec<Result<UserProfile, Unparsed>>,
    /// The id of the page's last user, parsed or not: the next page's `starting_after`.
    pub last_id: Option<String>,
}

/// A user in a page that does not parse as a user (no id, no `updated_at`…).
#[derive(Debug, Clone)]
pub struct Unparsed {
    pub id: Option<String>,
    pub reason: String,
}

impl Page {
    /// Fewer users than asked for: the list ends here.
    pub fn is_last(&self, limit: usize) -> bool {
        self.users.len() < limit
    }
}

/// How hard a request is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts for 5xx and network failures.
    pub attempts: u32,
    /// First backoff; doubled each attempt, jittered, at most 30 s.
    pub backoff: Duration,
    /// 429s in a row before giving up.
    pub rate_limited: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 6,
            backoff: Duration::from_millis(500),
            rate_limited: 30,
        }
    }
}

pub struct ClerkClient {
    http: reqwest::Client,
    /// Ends in the version segment (`…/v1`).
    base: Url,
    key: SecretString,
    limiter: RateLimiter,
    retry: Retry,
    rate_limited: AtomicU64,
    retried: AtomicU64,
    requests: AtomicU64,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<String>,
}

#[derive(Deserialize)]
struct TotalCount {
    total_count: u64,
}

impl ClerkClient {
    /// `base` is the Backend API's base URL (`https://api.clerk.com/v1`); `per_second` the
    /// client-side rate limit.
    pub fn new(base: &str, key: SecretString, per_second: f64) -> anyhow::Result<Self> {
        let base = Url::parse(base.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && !u.cannot_be_a_base())
            .ok_or_else(|| anyhow::anyhow!("the Clerk API URL is not an http(s) URL"))?;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("clerk-sync-ops/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base,
            key,
            limiter: RateLimiter::per_second(per_second),
            retry: Retry::default(),
            rate_limited: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// 429s answered so far (each paused the run for its `Retry-After`).
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Requests repeated after a 5xx or a network failure.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// `GET /v1/users/count`.
    pub async fn count(&self) -> Result<u64, ClerkFailure> {
        const OP: &str = "CountUsers";
        let body =
            self.get(OP, self.url(&["users", "count"]))
                .await?
                .ok_or(ClerkFailure::Refused {
                    operation: OP,
                    status: StatusCode::NOT_FOUND,
                })?;
        serde_json::from_str::<TotalCount>(&body)
            .map(|c| c.total_count)
            .map_err(|e| ClerkFailure::Unreadable {
                operation: OP,
                reason: e.to_string(),
            })
    }

    /// `GET /v1/users?limit=…&order_by=+created_at[&starting_after=…]`: oldest first, so users
    /// created while a backfill runs come at the end and are not skipped.
    pub async fn list_page(
        &self,
        starting_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, ClerkFailure> {
        const OP: &str = "ListUsers";
        let mut url = self.url(&["users"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.clamp(1, MAX_PAGE).to_string());
            query.append_pair("order_by", "+created_at");
            if let Some(after) = starting_after {
                query.append_pair("starting_after", after);
            }
        }
        let body = self.get(OP, url).await?.ok_or(ClerkFailure::Refused {
            operation: OP,
            status: StatusCode::NOT_FOUND,
        })?;
        parse_page(&body).map_err(|reason| ClerkFailure::Unreadable {
            operation: OP,
            reason,
        })
    }

    /// `GET /v1/users/{id}`.
    pub async fn get_user(&self, id: &UserId) -> Result<ClerkUser, ClerkFailure> {
        const OP: &str = "GetUser";
        let Some(body) = self.get(OP, self.url(&["users", id.as_str()])).await? else {
            return Ok(ClerkUser::NotFound);
        };
        let profile =
            UserProfile::from_clerk_json(&body).map_err(|e| ClerkFailure::Unreadable {
                operation: OP,
                reason: e.to_string(),
            })?;
        if profile.id != *id {
            return Err(ClerkFailure::Unreadable {
                operation: OP,
                reason: "Clerk answered with another user".into(),
            });
        }
        Ok(ClerkUser::Found(Box::new(profile)))
    }

    /// One GET, paced and retried: the body of a 200, `None` for a 404.
    async fn get(&self, operation: &'static str, url: Url) -> Result<Option<String>, ClerkFailure> {
        let mut failures = 0u32;
        let mut rate_limited = 0u32;
        loop {
            self.limiter.acquire().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(self.key.expose_secret().trim())
                .header("Clerk-API-Version", API_VERSION)
                .send()
                .await;
            let last = match sent {
                Ok(response) => match response.status() {
                    StatusCode::OK => match response.text().await {
                        Ok(body) => return Ok(Some(body)),
                        Err(e) => format!("reading the body: {e}"),
                    },
                    StatusCode::NOT_FOUND => return Ok(None),
                    status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                        return Err(ClerkFailure::Unauthorized(status, operation));
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        rate_limited += 1;
                        self.rate_limited.fetch_add(1, Ordering::Relaxed);
                        if rate_limited > self.retry.rate_limited {
                            return Err(ClerkFailure::Exhausted {
                                operation,
                                attempts: failures + rate_limited,
                                last: "429 Too Many Requests".into(),
                            });
                        }
                        let wait = retry_after(response.headers());
                        tracing::info!(
                            operation,
                            seconds = wait.as_secs(),
                            "Clerk answered 429; pausing"
                        );
                        self.limiter.pause(wait);
                        continue;
                    }
                    status if status.is_server_error() => format!("Clerk answered {status}"),
                    status => {
                        return Err(ClerkFailure::Refused { operation, status });
                    }
                },
                Err(e) => format!("request failed: {}", without_url(&e)),
            };
            failures += 1;
            if failures >= self.retry.attempts {
                return Err(ClerkFailure::Exhausted {
                    operation,
                    attempts: failures + rate_limited,
                    last,
                });
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(self.retry.backoff, failures)).await;
        }
    }
}

/// A 429's `Retry-After` (seconds; an HTTP date or nothing counts as 1 s), at most 10 minutes.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    let seconds = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, 600);
    Duration::from_secs(seconds)
}

/// The `failures`-th backoff: `first` doubled each time, at most 30 s, with up to 50% jitter.
fn backoff(first: Duration, failures: u32) -> Duration {
    let exp = first.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let capped = exp.min(Duration::from_secs(30));
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// reqwest's message without the URL (it holds a user id, and a query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    kind.to_owned()
}

/// A page body: a bare JSON array of user objects.
fn parse_page(body: &str) -> Result<Page, String> {
    let raw: Vec<Box<RawValue>> = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let id_of = |raw: &RawValue| {
        serde_json::from_str::<IdOnly>(raw.get())
            .ok()
            .and_then(|u| u.id)
    };
    let last_id = raw.last().and_then(|r| id_of(r));
    let users = raw
        .iter()
        .map(|r| {
            UserProfile::from_clerk_json(r.get()).map_err(|e| Unparsed {
                id: id_of(r),
                reason: e.to_string(),
            })
        })
        .collect();
    Ok(Page { users, last_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_keeps_its_cursor_even_when_its_last_user_does_not_parse() {
        let body = r#"[{"id":"user_a","updated_at":5},{"id":"user_b"}]"#;
        let page = parse_page(body).unwrap();
        assert_eq!(page.last_id.as_deref(), Some("user_b"));
        assert!(page.users[0].is_ok());
        let unparsed = page.users[1].as_ref().unwrap_err();
        assert_eq!(unparsed.id.as_deref(), Some("user_b"));
        assert!(page.is_last(500) && !page.is_last(2));
    }

    #[test]
    fn retry_after_reads_seconds_and_falls_back_to_one_second() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), Duration::from_secs(1));
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Duration::from_secs(7));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds_with_jitter() {
        let first = Duration::from_millis(500);
        for failures in 1..=12 {
            let d = backoff(first, failures);
            let full = first
                .saturating_mul(1 << (failures - 1))
                .min(Duration::from_secs(30));
            assert!(d >= full / 2 && d <= full, "{failures}: {d:?}");
        }
    }
}
