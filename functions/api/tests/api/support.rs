//! The harness every api test runs on: the api over the local emulator with a wiremock Clerk
//! (JWKS and Backend API), dev-signed tokens, and a check that no response leaks a private field.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::clerk::{ClerkBackendApi, HttpKeySource, SECRET_KEY_POLICY, http_client};
use api::{Api, Dependencies, Keys};
use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::adapters::secrets_manager::SecretsManagerSource;
use clerk_sync::adapters::sqs::SqsEventQueue;
use clerk_sync::domain::auth::{AdminClaim, AuthError, TokenPolicy, VerificationKeys};
use clerk_sync::domain::user::UserEvent;
use clerk_sync::ports::{ClerkApi, UserStore};
use clerk_sync::secret_cache::{CachePolicy, Jwks, JwksCache};
use devkit::apigw::{HttpResponse, read_response, request_event};
use devkit::counting::RequestCounter;
use devkit::emulator::Emulator;
use devkit::lambda::{JsonFn, http_fn};
use devkit::resources::{Names, Resources, provision};
use devkit::signing::DEV_WEBHOOK_SECRET;
use devkit::tokens::{DevKeys, LOCAL_AZP, LOCAL_ISSUER};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const ME: &str = "/v1/users/me";
pub const ADA: &str = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";
/// The fixture's `private_metadata` marker: it must never leave the api.
const PRIVATE_MARKER: &str = "cus_SECRET_DO_NOT_EXPOSE";

pub fn keys() -> &'static DevKeys {
    static KEYS: std::sync::OnceLock<DevKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(DevKeys::generate)
}

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuer: Some(LOCAL_ISSUER.to_owned()),
        authorized_parties: Some(vec![LOCAL_AZP.to_owned()]),
        leeway_seconds: 5,
        admin: Some(AdminClaim::parse("metadata.role=admin").unwrap()),
        refuse_pending_sessions: false,
    }
}

pub struct Harness {
    pub sdk: aws_config::SdkConfig,
    pub resources: Resources,
    pub clerk: MockServer,
    function: JsonFn,
    /// Every response body this harness has seen, checked for private fields on drop.
    bodies: Arc<Mutex<Vec<String>>>,
    /// Sees the Clerk secret key's Secrets Manager requests.
    pub clerk_key_requests: RequestCounter,
}

pub struct Options {
    pub users_table: Option<String>,
    pub queue_url: Option<String>,
    pub lazy_sync: bool,
    pub pinned_pem: bool,
    pub jwks_min_refresh: Duration,
    /// JWKS served on the first fetch only (then the standard one).
    pub first_jwks: Option<Value>,
    pub refuse_pending_sessions: bool,
    pub clerk_key_policy: CachePolicy,
    /// Sees the Clerk secret key's Secrets Manager requests.
    pub clerk_key_requests: RequestCounter,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users_table: None,
            queue_url: None,
            lazy_sync: true,
            pinned_pem: false,
            jwks_min_refresh: Duration::from_secs(30),
            first_jwks: None,
            refuse_pending_sessions: false,
            clerk_key_policy: SECRET_KEY_POLICY,
            clerk_key_requests: RequestCounter::default(),
        }
    }
}

pub async fn harness(label: &str) -> Harness {
    harness_with(label, Options::default()).await
}

pub async fn harness_with(label: &str, options: Options) -> Harness {
    clerk_sync::telemetry::init_for_tests();
    let sdk = Emulator::shared().sdk_config().await;
    let resources = provision(&sdk, Names::unique(label), DEV_WEBHOOK_SECRET)
        .await
        .unwrap();
    let clerk = MockServer::start().await;
    if let Some(first) = &options.first_jwks {
        Mock::given(method("GET"))
            .and(path("/.well-known/jwks.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(first))
            .up_to_n_times(1)
            .mount(&clerk)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&keys().jwks))
        .mount(&clerk)
        .await;
    let http = http_client(Duration::from_millis(800)).unwrap();
    let keys = if options.pinned_pem {
        Keys::Pinned(Arc::new(
            VerificationKeys::from_pem(&keys().public_pem).unwrap(),
        ))
    } else {
        Keys::Jwks(JwksCache::with_loader(
            Jwks(Arc::new(HttpKeySource::new(
                http.clone(),
                format!("{}/.well-known/jwks.json", clerk.uri()),
            ))),
            CachePolicy {
                min_refresh_interval: options.jwks_min_refresh,
                max_age: Duration::from_secs(300),
            },
        ))
    };
    let api_clerk: Option<Arc<dyn ClerkApi>> = options.lazy_sync.then(|| {
        Arc::new(
            ClerkBackendApi::with_key_policy(
                http,
                &format!("{}/v1", clerk.uri()),
                Arc::new(SecretsManagerSource::new(
                    options.clerk_key_requests.secrets_manager_client(&sdk),
                    &resources.clerk_secret_key_id,
                )),
                options.clerk_key_policy,
            )
            .unwrap(),
        ) as Arc<dyn ClerkApi>
    });
    let users = Arc::new(DynamoUserStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        options
            .users_table
            .as_deref()
            .unwrap_or(&resources.names.users_table),
    ));
    let app = Api::new(
        Dependencies {
            users: users.clone(),
            users_probe: users,
            queue_probe: Arc::new(SqsEventQueue::new(
                aws_sdk_sqs::Client::new(&sdk),
                options.queue_url.as_deref().unwrap_or(&resources.queue_url),
            )),
            keys,
            clerk: api_clerk,
            log: Arc::new(event_log(&sdk, &resources)),
            retention_days: 30,
        },
        TokenPolicy {
            refuse_pending_sessions: options.refuse_pending_sessions,
            ..policy()
        },
    );
    Harness {
        function: http_fn(clerk_sync::edge::service(Arc::new(app))),
        sdk,
        resources,
        clerk,
        bodies: Arc::default(),
        clerk_key_requests: options.clerk_key_requests.clone(),
    }
}

fn event_log(sdk: &aws_config::SdkConfig, resources: &Resources) -> DynamoEventLog {
    DynamoEventLog::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &resources.names.event_log_table,
    )
}

impl Drop for Harness {
    fn drop(&mut self) {
        for body in self.bodies.lock().unwrap().iter() {
            assert!(
                !body.contains(PRIVATE_MARKER)
                    && !body.contains("private_metadata")
                    && !body.contains("unsafe_metadata"),
                "a response leaked a private field: {body}"
            );
        }
    }
}

pub fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

impl Harness {
    pub async fn request(&self, method: &str, path: &str, headers: &HeaderMap) -> HttpResponse {
        let event = request_event(method, path, headers, b"");
        let response = read_response(&(self.function)(event).await.unwrap()).unwrap();
        self.bodies
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&response.body).into_owned());
        response
    }

    pub async fn get(&self, path: &str, token: &str) -> HttpResponse {
        self.request("GET", path, &bearer(token)).await
    }

    /// The api with a PEM key, no lazy sync, and its users table reached through `dynamodb`.
    pub fn api_over(&self, dynamodb: aws_sdk_dynamodb::Client) -> JsonFn {
        let users = Arc::new(DynamoUserStore::new(
            dynamodb,
            &self.resources.names.users_table,
        ));
        let app = Api::new(
            Dependencies {
                users: users.clone(),
                users_probe: users,
                queue_probe: Arc::new(SqsEventQueue::new(
                    aws_sdk_sqs::Client::new(&self.sdk),
                    &self.resources.queue_url,
                )),
                keys: Keys::Pinned(Arc::new(
                    VerificationKeys::from_pem(&keys().public_pem).unwrap(),
                )),
                clerk: None,
                log: Arc::new(event_log(&self.sdk, &self.resources)),
                retention_days: 30,
            },
            policy(),
        );
        http_fn(clerk_sync::edge::service(Arc::new(app)))
    }

    pub fn store(&self) -> DynamoUserStore {
        DynamoUserStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.resources.names.users_table,
        )
    }

    /// Stores `user` at `updated_at` as the sync worker would.
    pub async fn seed(&self, user: &str, updated_at: i64) {
        let event = UserEvent::parse(&devkit::clerk::user_upsert(
            "user.updated",
            user,
            updated_at,
        ))
        .unwrap();
        self.store().apply(&event, "msg_seed", 1).await.unwrap();
    }

    pub async fn seed_deleted(&self, user: &str) {
        let event = UserEvent::parse(&devkit::clerk::user_deleted(user, 1)).unwrap();
        self.store()
            .apply(&event, "msg_seed_delete", 1)
            .await
            .unwrap();
    }

    /// Clerk's Backend API answers `GET /v1/users/{user}` with `response`.
    pub async fn clerk_answers(&self, user: &str, response: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(format!("/v1/users/{user}")))
            .and(header(
                "authorization",
                format!("Bearer {}", devkit::resources::DEV_CLERK_SECRET_KEY).as_str(),
            ))
            .respond_with(response)
            .mount(&self.clerk)
            .await;
    }
}

/// A Clerk Backend API user object for `user` at `updated_at`.
pub fn clerk_user(user: &str, updated_at: i64) -> Value {
    let event: Value = serde_json::from_str(&devkit::clerk::user_upsert(
        "user.updated",
        user,
        updated_at,
    ))
    .unwrap();
    event["data"].clone()
}

pub fn assert_unauthorized(response: &HttpResponse, error: &str) {
    assert_eq!(response.status, 401, "{}", response.json());
    let challenge = response
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("401 without WWW-Authenticate: {:?}", response.headers));
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    assert_eq!(response.json()["error"]["code"], "unauthorized");
}

/// A 401 for exactly `refusal`: its RFC 6750 challenge and its message.
pub fn assert_refused(response: &HttpResponse, refusal: AuthError) {
    assert_unauthorized(response, "invalid_token");
    assert_eq!(
        response.header("www-authenticate"),
        Some(refusal.challenge().as_str())
    );
    assert_eq!(response.json()["error"]["message"], refusal.to_string());
}

/// Valid claims for `user`, to be spoiled one at a time.
pub fn claims(user: &str) -> Value {
    keys().claims(user)
}
