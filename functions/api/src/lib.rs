//! The api function: user reads for holders of Clerk session tokens, and health.
//!
//! - `GET /v1/users/me`: the caller's record; fetched from Clerk (lazy sync) when the webhook has
//!   not brought it yet.
//! - `GET /v1/users/{id}`: the caller's own id, or any id with the admin claim.
//! - `GET /health`: DynamoDB, the signing-key source and the queue, with latencies.

pub mod clerk;
mod error;
mod health;
mod keys;
mod lazy_sync;
pub mod measure;
mod route;
mod users;
pub mod view;

use std::future::Future;
use std::sync::Arc;

use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::adapters::secrets_manager::SecretsManagerSource;
use clerk_sync::adapters::sqs::SqsEventQueue;
use clerk_sync::config::{ApiConfig, KeysConfig};
use clerk_sync::domain::auth::{
    BearerToken, Principal, TokenPolicy, UnverifiedToken, VerificationKeys,
};
use clerk_sync::edge::HttpHandler;
use clerk_sync::ports::{ClerkApi, EventLog, Probe, UserStore};
use clerk_sync::secret_cache::{Jwks, JwksCache};
use clerk_sync::telemetry::correlation::InvocationIds;
use clerk_sync::telemetry::metrics::{Document, Metrics};
use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};
use tracing::Instrument;

pub use crate::error::ApiError;
pub use crate::keys::Keys;
use crate::route::Route;
pub use crate::route::{HEALTH, ME, USERS};
use crate::users::user_response;

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
    metrics: Metrics,
}

impl Api {
    /// Metrics are discarded until [`Api::with_metrics`].
    pub fn new(deps: Dependencies, policy: TokenPolicy) -> Self {
        Self {
            deps,
            policy,
            metrics: Metrics::discard("api"),
        }
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
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
        )
        .with_metrics(Metrics::lambda("api")))
    }

    /// Answers one HTTP request, and writes its metrics document.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let span = tracing::info_span!("api", route = tracing::field::Empty);
        async {
            let mut document = self.metrics.document();
            document.property("requestId", InvocationIds::request_id_of(&request));
            let (route, result) = match Route::parse(request.method(), request.uri().path()) {
                Ok(route) => {
                    tracing::Span::current().record("route", route.name());
                    let name = route.name();
                    (name, self.serve(route, &request, &mut document).await)
                }
                Err(e) => (measure::NO_ROUTE, Err(e)),
            };
            let response = result.unwrap_or_else(|e| {
                measure::refusal(&mut document, &e);
                e.into_response()
            });
            measure::request(&mut document, route, response.status(), started.elapsed());
            document.emit();
            response
        }
        .instrument(span)
        .await
    }

    async fn serve(
        &self,
        route: Route,
        request: &Request,
        document: &mut Document<'_>,
    ) -> Result<Response<Body>, ApiError> {
        match route {
            Route::Health => Ok(self.health().await),
            Route::Me => {
                let principal = self.authenticate(request).await?;
                self.me(&principal, document).await.map(user_response)
            }
            Route::User(id) => {
                let principal = self.authenticate(request).await?;
                self.user(&principal, id.as_ref()).await.map(user_response)
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
        Ok(token.verify(&keys, &self.policy, clerk_sync::clock::now_ms() / 1000)?)
    }
}

fn no_store(response: &mut Response<Body>) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

impl HttpHandler for Api {
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send {
        Api::handle(self, request)
    }
}
