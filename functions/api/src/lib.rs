//! The api function: user reads for holders of Clerk session tokens, and health.
//!
//! - `GET /v1/users/me`: the caller's record; fetched from Clerk (lazy sync) when the webhook has
//!   not brought it yet.
//! - `GET /v1/users/{id}`: the caller's own id, or any id with the admin claim.
//! - `GET /health`: DynamoDB, the signing-key source and the queue, with latencies.

pub mod clerk;
pub mod view;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::adapters::secrets_manager::SecretsManagerSource;
use clerk_sync::adapters::sqs::SqsEventQueue;
use clerk_sync::config::{ApiConfig, KeysConfig};
use clerk_sync::domain::auth::{
    AuthError, BearerToken, Principal, TokenPolicy, UnverifiedToken, VerificationKeys,
};
use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::outcome::{Failure, Outcome};
use clerk_sync::domain::user::{Stored, UserEvent, UserId, UserProfile};
pub use clerk_sync::edge::Reply;
use clerk_sync::edge::{HttpHandler, error_response, json_response};
use clerk_sync::ports::{
    ClerkApi, ClerkError, ClerkUser, DependencyError, EventLog, Probe, UserStore,
};
use clerk_sync::secret_cache::{Jwks, JwksCache, KeysUnavailable};
use clerk_sync::telemetry::error_chain;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, LambdaEvent, Request, Response, Service};
use serde::Serialize;
use tracing::Instrument;

use crate::view::{Check, Health, UserView};

pub const ME: &str = "/v1/users/me";
pub const USERS: &str = "/v1/users/";
pub const HEALTH: &str = "/health";

/// Everything a request is answered with other than success, mapped to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route for this path")]
    NotFound,
    #[error("only GET is allowed here")]
    MethodNotAllowed,
    #[error("the request body is flagged base64 but is not valid base64")]
    InvalidBase64,
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("this token may not read other users")]
    Forbidden,
    #[error("no such user")]
    UserNotFound,
    #[error("token verification keys are unavailable")]
    KeysUnavailable(#[source] KeysUnavailable),
    #[error("the user store is unavailable")]
    StoreUnavailable(#[source] DependencyError),
    #[error("the user store is unavailable")]
    NotStored(#[source] Failure),
    #[error("Clerk is rate-limiting user lookups; retry later")]
    ClerkRateLimited { retry_after_seconds: u64 },
    #[error("Clerk is unavailable; retry later")]
    ClerkUnavailable(#[source] DependencyError),
}

impl ApiError {
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::InvalidBase64 => (StatusCode::BAD_REQUEST, "invalid_base64"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::UserNotFound => (StatusCode::NOT_FOUND, "user_not_found"),
            Self::KeysUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "keys_unavailable"),
            Self::StoreUnavailable(_) | Self::NotStored(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
            Self::ClerkRateLimited { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "clerk_rate_limited")
            }
            Self::ClerkUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "clerk_unavailable"),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let (status, code) = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, error = %error_chain(&self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code, reason = %self, "request refused");
        }
        let mut response = error_response(status, code, &self.to_string());
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(e) => {
                let challenge = HeaderValue::from_str(&e.challenge())
                    .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            Self::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::ClerkRateLimited {
                retry_after_seconds,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            Self::ClerkUnavailable(_)
            | Self::StoreUnavailable(_)
            | Self::NotStored(_)
            | Self::KeysUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<ClerkError> for ApiError {
    fn from(e: ClerkError) -> Self {
        match e {
            ClerkError::RateLimited {
                retry_after_seconds,
            } => Self::ClerkRateLimited {
                retry_after_seconds,
            },
            ClerkError::Unavailable(e) => Self::ClerkUnavailable(e),
        }
    }
}

/// Where token verification keys come from.
pub enum Keys {
    /// `CLERK_JWT_KEY`: fixed, no network.
    Pinned(Arc<VerificationKeys>),
    /// `CLERK_JWKS_URL`: cached, refetched on an unknown `kid` at most once per interval.
    Jwks(JwksCache),
}

impl Keys {
    /// The keys to check a token naming `kid` with.
    async fn for_kid(&self, kid: Option<&str>) -> Result<Arc<VerificationKeys>, ApiError> {
        match self {
            Self::Pinned(keys) => Ok(keys.clone()),
            Self::Jwks(cache) => {
                let keys = cache.current().await.map_err(ApiError::KeysUnavailable)?;
                if keys.knows(kid) {
                    return Ok(keys);
                }
                // A new signing key (Clerk rotated), or a forged kid: refetch, bounded.
                match cache.refresh_after_mismatch(&keys).await {
                    Ok(Some(fresh)) => Ok(fresh),
                    Ok(None) => Ok(keys),
                    Err(e) => {
                        tracing::warn!(error = %e, "JWKS refetch failed; using cached keys");
                        Ok(keys)
                    }
                }
            }
        }
    }

    async fn probe(&self) -> Result<(), KeysUnavailable> {
        match self {
            Self::Pinned(_) => Ok(()),
            Self::Jwks(cache) => cache.current().await.map(|_| ()),
        }
    }
}

/// What the api talks to.
pub struct Dependencies {
    pub users: Arc<dyn UserStore>,
    pub users_probe: Arc<dyn Probe>,
    pub queue_probe: Arc<dyn Probe>,
    pub keys: Keys,
    /// Clerk's Backend API, when lazy sync is on.
    pub clerk: Option<Arc<dyn ClerkApi>>,
    /// Where each lazy sync is recorded.
    pub log: Arc<dyn EventLog>,
    /// Days a lazy sync's record is kept.
    pub retention_days: u32,
}

pub struct Api {
    deps: Dependencies,
    policy: TokenPolicy,
}

/// Bound on one health check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Api {
    pub fn new(deps: Dependencies, policy: TokenPolicy) -> Self {
        Self { deps, policy }
    }

    pub fn from_config(
        config: &ApiConfig,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let users = Arc::new(DynamoUserStore::new(dynamodb.clone(), &config.users_table));
        let http = clerk::http_client(config.clerk_api_timeout)?;
        let keys = match &config.keys {
            KeysConfig::Pem(pem) => Keys::Pinned(Arc::new(VerificationKeys::from_pem(pem)?)),
            KeysConfig::Jwks(url) => Keys::Jwks(JwksCache::with_loader(
                Jwks(Arc::new(clerk::HttpKeySource::new(http.clone(), url))),
                config.jwks_cache,
            )),
        };
        let clerk: Option<Arc<dyn ClerkApi>> = match (&config.clerk_secret_key_id, config.lazy_sync)
        {
            (Some(secret_id), true) => Some(Arc::new(clerk::ClerkBackendApi::new(
                http,
                &config.clerk_api_url,
                Arc::new(SecretsManagerSource::new(
                    aws_sdk_secretsmanager::Client::new(sdk),
                    secret_id,
                )),
            )?)),
            _ => None,
        };
        Ok(Self::new(
            Dependencies {
                users: users.clone(),
                users_probe: users,
                queue_probe: Arc::new(SqsEventQueue::new(
                    aws_sdk_sqs::Client::new(sdk),
                    &config.queue_url,
                )),
                keys,
                clerk,
                log: Arc::new(DynamoEventLog::new(dynamodb, &config.event_log_table)),
                retention_days: config.event_log_retention_days,
            },
            config.policy.clone(),
        ))
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let span = tracing::info_span!("api", route = tracing::field::Empty);
        async {
            match self.route(&request).await {
                Ok(response) => response,
                Err(e) => e.into_response(),
            }
        }
        .instrument(span)
        .await
    }

    async fn route(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let path = request.uri().path();
        let route = if path == HEALTH {
            "health"
        } else if path == ME {
            "me"
        } else if path
            .strip_prefix(USERS)
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        {
            "user"
        } else {
            return Err(ApiError::NotFound);
        };
        tracing::Span::current().record("route", route);
        if request.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        match route {
            "health" => Ok(self.health().await),
            "me" => {
                let principal = self.authenticate(request).await?;
                self.me(&principal).await.map(user_response)
            }
            _ => {
                let principal = self.authenticate(request).await?;
                let raw = &path[USERS.len()..];
                self.user(&principal, raw).await.map(user_response)
            }
        }
    }

    /// The caller, from the `Authorization: Bearer` token only.
    pub async fn authenticate(&self, request: &Request) -> Result<Principal, ApiError> {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let token = BearerToken::from_authorization(header)?;
        // Header checks first: a token they refuse costs no key lookup or JWKS fetch.
        let token = UnverifiedToken::parse(&token)?;
        let keys = self.deps.keys.for_kid(token.kid()).await?;
        Ok(token.verify(&keys, &self.policy, now_ms() / 1000)?)
    }

    async fn stored(&self, id: &UserId) -> Result<Option<Stored>, ApiError> {
        self.deps
            .users
            .get(id)
            .await
            .map_err(ApiError::StoreUnavailable)
    }

    async fn me(&self, principal: &Principal) -> Result<UserProfile, ApiError> {
        match self.stored(&principal.user_id).await? {
            Some(Stored::Live(user)) => Ok(*user),
            Some(Stored::Tombstone { .. }) => Err(ApiError::UserNotFound),
            None => self.lazy_sync(&principal.user_id).await,
        }
    }

    /// The user exists in Clerk but the webhook has not brought it yet: fetch it, store it under
    /// the same ordering rules as the sync worker (so a newer webhook or a delete is never
    /// overwritten), record it in the event log, and answer with what is stored.
    async fn lazy_sync(&self, id: &UserId) -> Result<UserProfile, ApiError> {
        let Some(clerk) = &self.deps.clerk else {
            return Err(ApiError::UserNotFound);
        };
        let profile = match clerk.get_user(id).await? {
            ClerkUser::Found(profile) => profile,
            ClerkUser::NotFound => return Err(ApiError::UserNotFound),
        };
        let event = UserEvent::Upsert(profile);
        // Unique to this fetch: another writer's id never matches it, so a refused write is
        // never mistaken for a redelivery of our own.
        let writer = LogRecord::lazy_sync_writer();
        let applied =
            (self.deps.users.apply(&event, &writer, now_ms()).await).map_err(Failure::from);
        let record =
            LogRecord::lazy_sync(&writer, id, &applied, now_ms(), self.deps.retention_days);
        if let Err(e) = self.deps.log.record(&record).await {
            // The user is stored (or not) either way; the audit record is what is missing.
            tracing::error!(error = %error_chain(&e), writer, "lazy sync not recorded in the event log");
        }
        let outcome = applied.map_err(ApiError::NotStored)?;
        tracing::info!(
            outcome = outcome.as_str(),
            writer,
            "user fetched from Clerk (lazy sync)"
        );
        match (outcome, event) {
            (Outcome::Applied, UserEvent::Upsert(profile)) => Ok(*profile),
            // Refused: something newer (a webhook, another lazy sync, a delete) is stored.
            _ => match self.stored(id).await? {
                Some(Stored::Live(user)) => Ok(*user),
                _ => Err(ApiError::UserNotFound),
            },
        }
    }

    async fn user(&self, principal: &Principal, raw_id: &str) -> Result<UserProfile, ApiError> {
        let allowed = raw_id == principal.user_id.as_str() || principal.is_admin;
        if !allowed {
            return Err(ApiError::Forbidden);
        }
        let id = UserId::parse(raw_id).map_err(|_| ApiError::UserNotFound)?;
        match self.stored(&id).await? {
            Some(Stored::Live(user)) => Ok(*user),
            _ => Err(ApiError::UserNotFound),
        }
    }

    async fn health(&self) -> Response<Body> {
        async fn timed<E: std::fmt::Display>(
            name: &'static str,
            check: impl Future<Output = Result<(), E>>,
        ) -> (&'static str, Check) {
            let start = Instant::now();
            let ok = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::warn!(check = name, error = %e, "health check failed");
                    false
                }
                Err(_) => {
                    tracing::warn!(check = name, "health check timed out");
                    false
                }
            };
            (name, Check::new(ok, start.elapsed()))
        }
        let (dynamodb, keys, queue) = tokio::join!(
            timed("dynamodb", self.deps.users_probe.probe()),
            timed("signing_keys", self.deps.keys.probe()),
            timed("queue", self.deps.queue_probe.probe()),
        );
        let health = Health::from_checks([dynamodb, keys, queue]);
        let status = if health.is_ok() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut response = json_response(status, &health);
        no_store(&mut response);
        response
    }
}

fn now_ms() -> i64 {
    std::time::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn no_store(response: &mut Response<Body>) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn user_response(user: UserProfile) -> Response<Body> {
    let mut response = json_response(StatusCode::OK, &UserView::from(&user));
    no_store(&mut response);
    response
}

impl HttpHandler for Api {
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send {
        Api::handle(self, request)
    }

    fn invalid_base64(&self) -> Response<Body> {
        ApiError::InvalidBase64.into_response()
    }
}

/// The Lambda-facing service (see [`clerk_sync::edge::lambda_service`]).
pub fn lambda_service(
    app: Arc<Api>,
) -> impl Service<
    LambdaEvent<LambdaRequest>,
    Response = Reply<impl Serialize + Send + 'static>,
    Error = lambda_http::Error,
    Future: Send + 'static,
> + Clone {
    clerk_sync::edge::lambda_service(app)
}
