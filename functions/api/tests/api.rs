//! The api function against DynamoDB and SQS in the local emulator, with a fake Clerk (JWKS and
//! Backend API) served by wiremock: every token attack, authorisation, lazy sync, health.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::clerk::{ClerkBackendApi, HttpKeySource, SECRET_KEY_POLICY, http_client};
use api::{Api, Dependencies, Keys};
use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::adapters::secrets_manager::SecretsManagerSource;
use clerk_sync::adapters::sqs::SqsEventQueue;
use clerk_sync::domain::auth::{AdminClaim, AuthError, TokenPolicy, VerificationKeys};
use clerk_sync::domain::event_log::{LogRecord, Source};
use clerk_sync::domain::outcome::Outcome;
use clerk_sync::domain::user::{Stored, UserEvent, UserId};
use clerk_sync::ports::{ClerkApi, UserStore};
use clerk_sync::secret_cache::{CachePolicy, Jwks, JwksCache};
use devkit::apigw::{HttpResponse, read_response, request_event};
use devkit::counting::RequestCounter;
use devkit::emulator::{Emulator, sdk_config_for};
use devkit::lambda::{JsonFn, json_fn};
use devkit::resources::{Names, Resources, provision};
use devkit::signing::{DEV_WEBHOOK_SECRET, now};
use devkit::tokens::{DevKeys, LOCAL_AZP, LOCAL_ISSUER, category, forge};
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ME: &str = "/v1/users/me";
const ADA: &str = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";
/// The fixture's `private_metadata` marker: it must never leave the api.
const PRIVATE_MARKER: &str = "cus_SECRET_DO_NOT_EXPOSE";

fn keys() -> &'static DevKeys {
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

struct Harness {
    sdk: aws_config::SdkConfig,
    resources: Resources,
    clerk: MockServer,
    function: JsonFn,
    /// Every response body this harness has seen, checked for private fields on drop.
    bodies: Arc<Mutex<Vec<String>>>,
    /// Sees the Clerk secret key's Secrets Manager requests.
    clerk_key_requests: RequestCounter,
}

struct Options {
    users_table: Option<String>,
    queue_url: Option<String>,
    lazy_sync: bool,
    pinned_pem: bool,
    jwks_min_refresh: Duration,
    /// JWKS served on the first fetch only (then the standard one).
    first_jwks: Option<Value>,
    refuse_pending_sessions: bool,
    clerk_key_policy: CachePolicy,
    /// Sees the Clerk secret key's Secrets Manager requests.
    clerk_key_requests: RequestCounter,
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

async fn harness(label: &str) -> Harness {
    harness_with(label, Options::default()).await
}

async fn harness_with(label: &str, options: Options) -> Harness {
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
        function: json_fn(api::lambda_service(Arc::new(app))),
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

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

impl Harness {
    async fn request(&self, method: &str, path: &str, headers: &HeaderMap) -> HttpResponse {
        let event = request_event(method, path, headers, b"");
        let response = read_response(&(self.function)(event).await.unwrap()).unwrap();
        self.bodies
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&response.body).into_owned());
        response
    }

    async fn get(&self, path: &str, token: &str) -> HttpResponse {
        self.request("GET", path, &bearer(token)).await
    }

    /// The api with a PEM key, no lazy sync, and its users table reached through `dynamodb`.
    fn api_over(&self, dynamodb: aws_sdk_dynamodb::Client) -> JsonFn {
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
        json_fn(api::lambda_service(Arc::new(app)))
    }

    fn store(&self) -> DynamoUserStore {
        DynamoUserStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.resources.names.users_table,
        )
    }

    /// Stores `user` at `updated_at` as the sync worker would.
    async fn seed(&self, user: &str, updated_at: i64) {
        let event = UserEvent::parse(&devkit::clerk::user_upsert(
            "user.updated",
            user,
            updated_at,
        ))
        .unwrap();
        self.store().apply(&event, "msg_seed", 1).await.unwrap();
    }

    async fn seed_deleted(&self, user: &str) {
        let event = UserEvent::parse(&devkit::clerk::user_deleted(user, 1)).unwrap();
        self.store()
            .apply(&event, "msg_seed_delete", 1)
            .await
            .unwrap();
    }

    /// Clerk's Backend API answers `GET /v1/users/{user}` with `response`.
    async fn clerk_answers(&self, user: &str, response: ResponseTemplate) {
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
fn clerk_user(user: &str, updated_at: i64) -> Value {
    let event: Value = serde_json::from_str(&devkit::clerk::user_upsert(
        "user.updated",
        user,
        updated_at,
    ))
    .unwrap();
    event["data"].clone()
}

fn assert_unauthorized(response: &HttpResponse, error: &str) {
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
fn assert_refused(response: &HttpResponse, refusal: AuthError) {
    assert_unauthorized(response, "invalid_token");
    assert_eq!(
        response.header("www-authenticate"),
        Some(refusal.challenge().as_str())
    );
    assert_eq!(response.json()["error"]["message"], refusal.to_string());
}

/// Valid claims for `user`, to be spoiled one at a time.
fn claims(user: &str) -> Value {
    keys().claims(user)
}

/// A token for `user` signed with the instance key, its session-token header changed: `field`
/// set to `value`, or removed when `value` is null.
fn with_header(user: &str, field: &str, value: Value) -> String {
    let mut header = keys().header();
    match value {
        Value::Null => drop(header.as_object_mut().unwrap().remove(field)),
        value => header[field] = value,
    }
    keys().sign_with_header(&header, &claims(user))
}

/// A token for `user` whose session status (`sts`) is `status`.
fn with_session_status(user: &str, status: &str) -> String {
    let mut c = claims(user);
    c["sts"] = status.into();
    keys().sign(&c)
}

#[tokio::test]
async fn a_valid_token_reads_its_own_record_without_private_fields() {
    let h = harness("me").await;
    h.seed(ADA, 20).await;

    let response = h.get(ME, &keys().mint(ADA)).await;

    assert_eq!(response.status, 200, "{}", response.json());
    let user = response.json();
    assert_eq!(user["id"], ADA);
    assert_eq!(user["first_name"], "Version 20");
    assert_eq!(user["updated_at"], 20);
    assert_eq!(
        user["email_addresses"][0]["verification_status"],
        "verified"
    );
    let mut fields: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "email",
            "email_addresses",
            "first_name",
            "id",
            "image_url",
            "last_name",
            "public_metadata",
            "updated_at",
            "username"
        ]
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn a_pem_key_verifies_tokens_without_any_network() {
    let h = harness_with(
        "pem",
        Options {
            pinned_pem: true,
            ..Options::default()
        },
    )
    .await;
    h.seed(ADA, 20).await;
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
    assert!(h.clerk.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_not_yet_valid_and_future_issued_tokens_are_refused() {
    let h = harness("times").await;
    h.seed(ADA, 20).await;
    let t = now();
    let cases = [
        ("exp", t - 30, "invalid_token"),
        ("nbf", t + 30, "invalid_token"),
        ("iat", t + 30, "invalid_token"),
    ];
    for (claim, value, error) in cases {
        let mut c = claims(ADA);
        c[claim] = value.into();
        assert_unauthorized(&h.get(ME, &keys().sign(&c)).await, error);
    }
    // Within the 5 s skew, a just-expired token still passes.
    let mut c = claims(ADA);
    c["exp"] = (t - 2).into();
    assert_eq!(h.get(ME, &keys().sign(&c)).await.status, 200);
}

#[tokio::test]
async fn wrong_issuer_and_missing_or_unlisted_authorized_party_are_refused() {
    let h = harness("iss-azp").await;
    h.seed(ADA, 20).await;
    let mut wrong_iss = claims(ADA);
    wrong_iss["iss"] = "https://evil.example.com".into();
    let mut no_azp = claims(ADA);
    no_azp.as_object_mut().unwrap().remove("azp");
    let mut other_azp = claims(ADA);
    other_azp["azp"] = "https://evil.example.com".into();
    for c in [wrong_iss, no_azp, other_azp] {
        assert_unauthorized(&h.get(ME, &keys().sign(&c)).await, "invalid_token");
    }
}

#[tokio::test]
async fn alg_none_and_hs256_signed_with_the_public_key_are_refused() {
    let h = harness("alg").await;
    h.seed(ADA, 20).await;
    let none = forge(
        &json!({"alg": "none", "typ": "JWT", "kid": keys().kid}),
        &claims(ADA),
        b"",
    );
    assert_unauthorized(&h.get(ME, &none).await, "invalid_token");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(keys().kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &claims(ADA),
        &jsonwebtoken::EncodingKey::from_secret(keys().public_pem.as_bytes()),
    )
    .unwrap();
    assert_unauthorized(&h.get(ME, &confused).await, "invalid_token");
}

#[tokio::test]
async fn a_known_kid_signed_by_another_key_an_unknown_kid_and_a_tampered_payload_are_refused() {
    let h = harness("keys").await;
    h.seed(ADA, 20).await;
    h.seed("user_mallory", 20).await;
    let mut impostor = DevKeys::generate();
    impostor.kid = keys().kid.clone();
    assert_unauthorized(&h.get(ME, &impostor.mint(ADA)).await, "invalid_token");

    let stranger = DevKeys::generate();
    assert_unauthorized(&h.get(ME, &stranger.mint(ADA)).await, "invalid_token");

    let genuine = keys().mint("user_mallory");
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut c = claims("user_mallory");
    c["sub"] = ADA.into();
    parts[1] = forge(&json!({}), &c, b"")
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    assert_unauthorized(&h.get(ME, &parts.join(".")).await, "invalid_token");
}

#[tokio::test]
async fn unknown_kids_cannot_make_the_api_hammer_the_jwks_endpoint() {
    let h = harness("refetch").await;
    h.seed(ADA, 20).await;
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
    let stranger = DevKeys::generate();
    for _ in 0..20 {
        assert_unauthorized(&h.get(ME, &stranger.mint(ADA)).await, "invalid_token");
    }
    let fetches = h
        .clerk
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/.well-known/jwks.json")
        .count();
    assert_eq!(
        fetches, 1,
        "refetches are at most one per 30 s, the first load included"
    );
}

#[tokio::test]
async fn a_key_clerk_starts_signing_with_is_fetched_on_its_first_unknown_kid() {
    let old = DevKeys::generate();
    let h = harness_with(
        "rotation",
        Options {
            jwks_min_refresh: Duration::ZERO,
            first_jwks: Some(old.jwks.clone()),
            ..Options::default()
        },
    )
    .await;
    h.seed(ADA, 20).await;
    assert_eq!(h.get(ME, &old.mint(ADA)).await.status, 200);
    // Clerk rotated: tokens now carry the new key's kid, which the cached JWKS lacks.
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
}

#[tokio::test]
async fn session_tokens_read_the_user_with_the_session_category_or_without_any() {
    let h = harness("cat-session").await;
    h.seed(ADA, 20).await;
    // The session category, and the one instances with `use_ignore_jwt_cat` put on every token.
    for cat in [category::SESSION_TOKEN, category::IGNORED] {
        let session = with_header(ADA, "cat", cat.into());
        let response = h.get(ME, &session).await;
        assert_eq!(response.status, 200, "{cat}: {}", response.json());
        assert_eq!(response.json()["id"], ADA);
    }
    // Tokens minted before Clerk added `cat` have none.
    let uncategorised = with_header(ADA, "cat", Value::Null);
    let response = h.get(ME, &uncategorised).await;
    assert_eq!(response.status, 200, "{}", response.json());
    assert_eq!(response.json()["id"], ADA);
}

#[tokio::test]
async fn jwt_template_and_machine_tokens_signed_with_the_instance_key_cannot_read_users() {
    let h = harness("cat-other").await;
    h.seed(ADA, 20).await;
    for cat in [category::JWT_TEMPLATE, category::MACHINE_TOKEN] {
        let token = with_header(ADA, "cat", cat.into());
        assert_refused(&h.get(ME, &token).await, AuthError::NotASessionToken);
        assert_refused(
            &h.get(&format!("/v1/users/{ADA}"), &token).await,
            AuthError::NotASessionToken,
        );
    }
}

#[tokio::test]
async fn a_token_typed_other_than_jwt_is_refused() {
    let h = harness("typ").await;
    h.seed(ADA, 20).await;
    let access_token = with_header(ADA, "typ", "at+jwt".into());
    assert_refused(&h.get(ME, &access_token).await, AuthError::WrongType);
}

#[tokio::test]
async fn pending_sessions_read_users_unless_the_api_refuses_them() {
    let lenient = harness("sts-default").await;
    lenient.seed(ADA, 20).await;
    let response = lenient.get(ME, &with_session_status(ADA, "pending")).await;
    assert_eq!(response.status, 200, "{}", response.json());

    let strict = harness_with(
        "sts-refused",
        Options {
            refuse_pending_sessions: true,
            ..Options::default()
        },
    )
    .await;
    strict.seed(ADA, 20).await;
    assert_refused(
        &strict.get(ME, &with_session_status(ADA, "pending")).await,
        AuthError::PendingSession,
    );
    let response = strict.get(ME, &with_session_status(ADA, "active")).await;
    assert_eq!(response.status, 200, "{}", response.json());
    assert_eq!(response.json()["id"], ADA);
}

#[tokio::test]
async fn a_token_without_sub_is_refused() {
    let h = harness("sub").await;
    let mut c = claims(ADA);
    c.as_object_mut().unwrap().remove("sub");
    assert_unauthorized(&h.get(ME, &keys().sign(&c)).await, "invalid_token");
}

#[tokio::test]
async fn empty_garbage_and_non_bearer_authorization_is_refused() {
    let h = harness("header").await;
    h.seed(ADA, 20).await;
    let cases = [
        ("", "invalid_request"),
        ("Bearer", "invalid_request"),
        ("Bearer    ", "invalid_request"),
        ("Bearer !!!not-a-token!!!", "invalid_token"),
        ("Bearer abc.def", "invalid_token"),
        ("Bearer a.b.c", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "invalid_request"),
        ("Token abc.def.ghi", "invalid_request"),
    ];
    for (value, error) in cases {
        let mut headers = HeaderMap::new();
        if !value.is_empty() {
            headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        }
        let response = h.request("GET", ME, &headers).await;
        assert_unauthorized(&response, error);
    }
    let token = keys().mint(ADA);
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
    );
    assert_unauthorized(&h.request("GET", ME, &headers).await, "invalid_request");
}

#[tokio::test]
async fn a_token_only_in_the_query_string_is_ignored() {
    let h = harness("query").await;
    h.seed(ADA, 20).await;
    let token = keys().mint(ADA);
    for query in ["token", "access_token", "__session"] {
        let response = h
            .request("GET", &format!("{ME}?{query}={token}"), &HeaderMap::new())
            .await;
        assert_unauthorized(&response, "invalid_request");
    }
}

#[tokio::test]
async fn another_users_record_is_forbidden_unless_the_token_carries_the_admin_claim() {
    let h = harness("others").await;
    h.seed(ADA, 20).await;
    h.seed("user_bob", 20).await;

    let bob = keys().mint("user_bob");
    let response = h.get(&format!("/v1/users/{ADA}"), &bob).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json()["error"]["code"], "forbidden");
    assert_eq!(h.get("/v1/users/user_bob", &bob).await.status, 200);

    let mut admin = claims("user_bob");
    admin["metadata"] = json!({"role": "admin"});
    let admin = keys().sign(&admin);
    let response = h.get(&format!("/v1/users/{ADA}"), &admin).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["id"], ADA);
    assert_eq!(h.get("/v1/users/user_nobody", &admin).await.status, 404);
}

#[tokio::test]
async fn deleted_users_are_not_found_everywhere_and_not_fetched_from_clerk() {
    let h = harness("deleted").await;
    h.seed(ADA, 20).await;
    h.seed_deleted(ADA).await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 30)),
    )
    .await;
    let token = keys().mint(ADA);
    for route in [ME.to_owned(), format!("/v1/users/{ADA}")] {
        let response = h.get(&route, &token).await;
        assert_eq!(response.status, 404, "{route}");
        assert_eq!(response.json()["error"]["code"], "user_not_found");
    }
    let asked = h.clerk.received_requests().await.unwrap();
    assert!(asked.iter().all(|r| !r.url.path().starts_with("/v1/users")));
}

#[tokio::test]
async fn a_user_missing_from_the_table_is_fetched_from_clerk_and_stored() {
    let h = harness("lazy").await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)),
    )
    .await;

    let response = h.get(ME, &keys().mint(ADA)).await;

    assert_eq!(response.status, 200, "{}", response.json());
    assert_eq!(response.json()["first_name"], "Version 10");
    let stored = h.store().get(&UserId::parse(ADA).unwrap()).await.unwrap();
    assert!(
        matches!(stored, Some(clerk_sync::domain::user::Stored::Live(p)) if p.updated_at == 10)
    );
}

#[tokio::test]
async fn a_user_clerk_does_not_know_is_not_found_and_nothing_is_stored() {
    let h = harness("lazy-404").await;
    h.clerk_answers(ADA, ResponseTemplate::new(404)).await;
    let response = h.get(ME, &keys().mint(ADA)).await;
    assert_eq!(response.status, 404);
    assert!(
        h.store()
            .get(&UserId::parse(ADA).unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn clerk_rate_limits_and_timeouts_are_503_with_retry_after_and_store_nothing() {
    let h = harness("lazy-503").await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(429).insert_header("retry-after", "7"),
    )
    .await;
    h.clerk_answers(
        "user_slow",
        ResponseTemplate::new(200)
            .set_body_json(clerk_user("user_slow", 10))
            .set_delay(Duration::from_secs(3)),
    )
    .await;

    let limited = h.get(ME, &keys().mint(ADA)).await;
    assert_eq!(limited.status, 503);
    assert_eq!(limited.json()["error"]["code"], "clerk_rate_limited");
    assert_eq!(limited.header("retry-after"), Some("7"));

    let slow = h.get(ME, &keys().mint("user_slow")).await;
    assert_eq!(slow.status, 503);
    assert_eq!(slow.json()["error"]["code"], "clerk_unavailable");
    assert!(slow.header("retry-after").is_some());

    for user in [ADA, "user_slow"] {
        assert!(
            h.store()
                .get(&UserId::parse(user).unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_concurrent_webhook_newer_than_the_fetched_copy_wins() {
    let h = harness("lazy-race").await;
    // Clerk's answer (t=10) arrives after a webhook stored t=20.
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200)
            .set_body_json(clerk_user(ADA, 10))
            .set_delay(Duration::from_millis(700)),
    )
    .await;
    let response = h.me_while_clerk_answers(ADA, h.seed(ADA, 20)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["updated_at"], 20);
    let stored = h.store().get(&UserId::parse(ADA).unwrap()).await.unwrap();
    assert!(
        matches!(stored, Some(clerk_sync::domain::user::Stored::Live(p)) if p.updated_at == 20)
    );
}

#[tokio::test]
async fn with_lazy_sync_off_a_missing_user_is_not_found_without_asking_clerk() {
    let h = harness_with(
        "lazy-off",
        Options {
            lazy_sync: false,
            ..Options::default()
        },
    )
    .await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)),
    )
    .await;
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 404);
}

#[tokio::test]
async fn health_is_ok_with_every_dependency_and_names_the_one_that_is_down() {
    let h = harness("health").await;
    let response = h.request("GET", "/health", &HeaderMap::new()).await;
    assert_eq!(response.status, 200, "{}", response.json());
    let body = response.json();
    assert_eq!(body["status"], "ok");
    for check in ["dynamodb", "signing_keys", "queue"] {
        assert_eq!(body["checks"][check]["status"], "ok", "{check}");
        assert!(body["checks"][check]["latency_ms"].is_u64());
    }

    let no_table = harness_with(
        "health-db",
        Options {
            users_table: Some("no-such-table".into()),
            ..Options::default()
        },
    )
    .await;
    let no_queue = harness_with(
        "health-q",
        Options {
            queue_url: Some(format!(
                "{}/123456789012/no-such-queue",
                Emulator::shared().endpoint()
            )),
            ..Options::default()
        },
    )
    .await;
    let no_jwks = harness("health-keys").await;
    no_jwks.clerk.reset().await;
    Mock::given(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&no_jwks.clerk)
        .await;
    for (harness, failing) in [
        (&no_table, "dynamodb"),
        (&no_queue, "queue"),
        (&no_jwks, "signing_keys"),
    ] {
        let response = harness.request("GET", "/health", &HeaderMap::new()).await;
        assert_eq!(response.status, 503, "{failing}");
        let body = response.json();
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["failing"], json!([failing]));
        assert_eq!(body["checks"][failing]["status"], "down");
        let text = String::from_utf8_lossy(&response.body);
        assert!(!text.contains("no-such"), "no internals: {text}");
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_other_methods_405_in_the_error_format() {
    let h = harness("routes").await;
    let token = keys().mint(ADA);
    for route in [
        "/",
        "/v1/users",
        "/v1/users/",
        "/v1/users/a/b",
        "/v2/users/me",
    ] {
        let response = h.get(route, &token).await;
        assert_eq!(response.status, 404, "{route}");
        assert_eq!(response.json()["error"]["code"], "not_found");
    }
    let response = h.request("POST", ME, &bearer(&token)).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET"));
}

#[tokio::test]
async fn an_unreachable_user_store_is_503_not_404() {
    let h = harness("store-down").await;
    let nowhere = sdk_config_for("http://127.0.0.1:9").await;
    let function = h.api_over(aws_sdk_dynamodb::Client::new(&nowhere));
    let event = request_event("GET", ME, &bearer(&keys().mint(ADA)), b"");
    let response = read_response(&function(event).await.unwrap()).unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.json()["error"]["code"], "store_unavailable");
}

#[tokio::test]
async fn reading_me_with_warm_keys_spends_exactly_one_dynamodb_read() {
    let h = harness("one-read").await;
    h.seed(ADA, 20).await;
    let counter = devkit::counting::RequestCounter::default();
    let function = h.api_over(counter.client(&h.sdk));
    let event = request_event("GET", ME, &bearer(&keys().mint(ADA)), b"");
    let response = read_response(&function(event).await.unwrap()).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        counter.counts(),
        std::collections::HashMap::from([("GetItem".to_owned(), 1)])
    );
}

/// The committed OpenAPI document.
fn openapi() -> Value {
    let path = devkit::workspace_root().join("functions/api/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Checks a real response against the document's entry for `route` (a path template) and its
/// status: required headers and their schemas, and the JSON body's schema.
fn assert_conforms(doc: &Value, route: &str, response: &HttpResponse) {
    let status = response.status.to_string();
    let mut entry = &doc["paths"][route]["get"]["responses"][&status];
    assert!(!entry.is_null(), "{route} {status} is not documented");
    if let Some(reference) = entry["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        entry = &doc["components"]["responses"][name];
    }
    let validator = |schema: &Value| {
        let mut root = schema.clone();
        root["components"] = doc["components"].clone();
        jsonschema::draft202012::new(&root).unwrap()
    };
    for (name, header) in entry["headers"].as_object().into_iter().flatten() {
        let value = response.header(name);
        if header["required"] == true {
            assert!(value.is_some(), "{route} {status}: header {name} missing");
        }
        if let Some(value) = value {
            let errors: Vec<String> = validator(&header["schema"])
                .iter_errors(&Value::from(value))
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{route} {status}: header {name}: {errors:?}"
            );
        }
    }
    let schema = &entry["content"]["application/json"]["schema"];
    let body = response.json();
    let errors: Vec<String> = validator(schema)
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{route} {status}: {errors:?} in {body}");
}

#[tokio::test]
async fn every_route_answers_as_the_openapi_document_says() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut routes: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    routes.sort_unstable();
    assert_eq!(routes, ["/health", "/v1/users/me", "/v1/users/{id}"]);

    let h = harness("openapi").await;
    h.seed(ADA, 20).await;
    h.clerk_answers(
        "user_limited",
        ResponseTemplate::new(429).insert_header("retry-after", "3"),
    )
    .await;
    let ada = keys().mint(ADA);
    let me = "/v1/users/me";
    let by_id = "/v1/users/{id}";
    let cases = [
        (me, h.get(ME, &ada).await),
        (me, h.request("GET", ME, &HeaderMap::new()).await),
        (me, h.get(ME, &keys().mint("user_limited")).await),
        (me, h.request("POST", ME, &bearer(&ada)).await),
        (by_id, h.get(&format!("/v1/users/{ADA}"), &ada).await),
        (by_id, h.get("/v1/users/user_other", &ada).await),
        (by_id, h.get(&format!("/v1/users/{ADA}"), "garbage").await),
        (
            "/health",
            h.request("GET", "/health", &HeaderMap::new()).await,
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (route, response) in &cases {
        assert_conforms(&doc, route, response);
        seen.insert((*route, response.status));
    }
    h.seed_deleted(ADA).await;
    let gone = h.get(&format!("/v1/users/{ADA}"), &ada).await;
    assert_conforms(&doc, by_id, &gone);
    assert_eq!(gone.status, 404);
    let down = harness_with(
        "openapi-down",
        Options {
            users_table: Some("no-such-table".into()),
            ..Options::default()
        },
    )
    .await;
    let health = down.request("GET", "/health", &HeaderMap::new()).await;
    assert_conforms(&doc, "/health", &health);
    let store_down = down.get(ME, &ada).await;
    assert_conforms(&doc, me, &store_down);
    assert_eq!(
        seen.into_iter()
            .map(|(_, s)| s)
            .collect::<std::collections::BTreeSet<_>>(),
        [200, 401, 403, 405, 503].into()
    );
    assert_eq!((health.status, store_down.status), (503, 503));
}

#[tokio::test]
async fn a_refused_clerk_secret_key_is_read_again_on_the_next_request() {
    let h = harness_with(
        "rotated-key",
        Options {
            // Re-reads are not held back by an interval here (see the next test for that).
            clerk_key_policy: CachePolicy {
                min_refresh_interval: Duration::ZERO,
                ..SECRET_KEY_POLICY
            },
            ..Options::default()
        },
    )
    .await;
    // Clerk accepts only the rotated key.
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .and(header("authorization", "Bearer sk_test_rotated"))
        .respond_with(ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)))
        .mount(&h.clerk)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .respond_with(ResponseTemplate::new(401))
        .mount(&h.clerk)
        .await;
    let token = keys().mint(ADA);
    assert_eq!(h.get(ME, &token).await.status, 503);

    devkit::resources::put_secret(&h.sdk, &h.resources.clerk_secret_key_id, "sk_test_rotated")
        .await
        .unwrap();

    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
    assert_eq!(
        secret_reads(&h),
        2,
        "read once, then once more after the refusal"
    );
}

/// The Clerk secret key's `GetSecretValue` requests so far.
fn secret_reads(h: &Harness) -> usize {
    let counts = h.clerk_key_requests.counts();
    assert!(counts.keys().all(|op| op == "GetSecretValue"), "{counts:?}");
    counts.get("GetSecretValue").copied().unwrap_or_default()
}

/// One hour between reads of the Clerk secret key: every read a test sees beyond the first is a
/// bug, not timing.
fn clerk_key_read_hourly() -> Options {
    Options {
        clerk_key_policy: CachePolicy {
            min_refresh_interval: Duration::from_secs(3600),
            ..SECRET_KEY_POLICY
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn a_placeholder_clerk_secret_key_is_read_once_per_interval_however_many_lazy_syncs_need_it()
{
    let h = harness_with("placeholder-key", clerk_key_read_hourly()).await;
    // What the stack stores until someone puts the real value (GenerateSecretString: 32 chars).
    devkit::resources::put_secret(
        &h.sdk,
        &h.resources.clerk_secret_key_id,
        "R4nd0mPlaceh0lderNotAClerkKey123",
    )
    .await
    .unwrap();
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)),
    )
    .await;
    let token = keys().mint(ADA);

    for i in 0..50 {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 503, "#{i}: {}", response.json());
        assert_eq!(response.json()["error"]["code"], "clerk_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
    }

    assert_eq!(secret_reads(&h), 1);
    let asked = h.clerk.received_requests().await.unwrap();
    assert!(
        asked.iter().all(|r| !r.url.path().starts_with("/v1/users")),
        "Clerk never sees the placeholder"
    );
}

#[tokio::test]
async fn a_refused_clerk_secret_key_is_read_again_at_most_once_per_interval() {
    let h = harness_with("refused-key", clerk_key_read_hourly()).await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .respond_with(ResponseTemplate::new(401))
        .mount(&h.clerk)
        .await;
    let token = keys().mint(ADA);

    for i in 0..20 {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 503, "#{i}");
        assert_eq!(response.json()["error"]["code"], "clerk_unavailable");
    }

    assert_eq!(
        secret_reads(&h),
        1,
        "the first read only, within the interval"
    );
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_fetched_once_per_interval_however_many_requests_need_keys() {
    let h = harness_with(
        "jwks-500",
        Options {
            jwks_min_refresh: Duration::from_secs(3600),
            ..Options::default()
        },
    )
    .await;
    h.clerk.reset().await;
    Mock::given(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&h.clerk)
        .await;
    let token = keys().mint(ADA);

    for i in 0..100 {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 503, "#{i}: {}", response.json());
        assert_eq!(response.json()["error"]["code"], "keys_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
        if i % 20 == 0 {
            let health = h.request("GET", "/health", &HeaderMap::new()).await;
            assert_eq!(health.status, 503);
            assert_eq!(health.json()["failing"], json!(["signing_keys"]));
        }
    }

    let fetches = h
        .clerk
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/.well-known/jwks.json")
        .count();
    assert_eq!(fetches, 1, "100 token requests and 5 health checks");
}

impl Harness {
    /// Every event-log record of a lazy sync of `user`.
    async fn lazy_sync_records(&self, user: &str) -> Vec<LogRecord> {
        let items = aws_sdk_dynamodb::Client::new(&self.sdk)
            .scan()
            .table_name(&self.resources.names.event_log_table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let records: Vec<LogRecord> = serde_dynamo::from_items(items).unwrap();
        records
            .into_iter()
            .filter(|r| {
                r.source == Source::LazySync && r.user_id.as_ref().map(UserId::as_str) == Some(user)
            })
            .collect()
    }

    /// `GET /v1/users/me` as `user`, with `meanwhile` run once Clerk has been asked for the user
    /// and while its (delayed) answer is still on the way: no timing margin to miss.
    async fn me_while_clerk_answers(
        &self,
        user: &str,
        meanwhile: impl std::future::Future<Output = ()>,
    ) -> HttpResponse {
        let token = keys().mint(user);
        let asked = async {
            loop {
                let requests = self.clerk.received_requests().await.unwrap_or_default();
                if requests
                    .iter()
                    .any(|r| r.url.path() == format!("/v1/users/{user}"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            meanwhile.await;
        };
        tokio::join!(self.get(ME, &token), asked).0
    }

    async fn stored(&self, user: &str) -> Option<Stored> {
        self.store()
            .get(&UserId::parse(user).unwrap())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn two_concurrent_lazy_syncs_with_different_clerk_snapshots_both_answer_what_is_stored() {
    let h = harness("lazy-twice").await;
    // Two copies with the same updated_at: the second to be written must be refused, and must
    // then answer with the first, not with its own copy.
    let mut first = clerk_user(ADA, 20);
    first["first_name"] = "First copy".into();
    let mut second = clerk_user(ADA, 20);
    second["first_name"] = "Second copy".into();
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(&first))
        .up_to_n_times(1)
        .mount(&h.clerk)
        .await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200)
            .set_body_json(&second)
            .set_delay(Duration::from_millis(400)),
    )
    .await;
    let token = keys().mint(ADA);

    let (a, b) = tokio::join!(h.get(ME, &token), h.get(ME, &token));

    assert_eq!((a.status, b.status), (200, 200));
    let Some(Stored::Live(stored)) = h.stored(ADA).await else {
        panic!("nothing stored")
    };
    assert_eq!(stored.first_name.as_deref(), Some("First copy"));
    for response in [&a, &b] {
        assert_eq!(response.json()["first_name"], "First copy");
    }
    let mut outcomes: Vec<Outcome> = h
        .lazy_sync_records(ADA)
        .await
        .iter()
        .map(|r| r.outcome)
        .collect();
    outcomes.sort_by_key(|o| o.as_str());
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Duplicate]);
}

#[tokio::test]
async fn a_lazy_sync_racing_a_delete_answers_not_found_and_is_recorded_stale() {
    let h = harness("lazy-delete").await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200)
            .set_body_json(clerk_user(ADA, 10))
            .set_delay(Duration::from_millis(700)),
    )
    .await;

    let response = h.me_while_clerk_answers(ADA, h.seed_deleted(ADA)).await;

    assert_eq!(response.status, 404, "{}", response.json());
    assert_eq!(response.json()["error"]["code"], "user_not_found");
    assert!(matches!(
        h.stored(ADA).await,
        Some(Stored::Tombstone { .. })
    ));
    let records = h.lazy_sync_records(ADA).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Stale);
    assert!(records[0].svix_id.starts_with("lazy-sync:"));
}

#[tokio::test]
async fn public_metadata_dynamodb_cannot_hold_natively_is_served_exactly_as_clerk_sent_it() {
    let h = harness("metadata").await;
    // 40 levels: deeper than DynamoDB's 32; 300: deeper than serde_json's own limit of 128.
    let deep = format!(
        "{}1e200{}, {}0{}",
        "[".repeat(40),
        "]".repeat(40),
        "[".repeat(300),
        "]".repeat(300)
    );
    let metadata = format!(r#"{{"score":1e200,"floor":-1e130,"deep":[{deep}]}}"#);
    let mut user = clerk_user(ADA, 10);
    user["public_metadata"] = "METADATA".into();
    user["unsafe_metadata"] = "UNSAFE".into();
    let body = user
        .to_string()
        .replace("\"METADATA\"", &metadata)
        .replace("\"UNSAFE\"", r#"{"score":-1e130}"#);
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_raw(body, "application/json"),
    )
    .await;
    let token = keys().mint(ADA);

    for attempt in ["lazy sync", "stored"] {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 200, "{attempt}: {}", response.json());
        let text = String::from_utf8_lossy(&response.body).into_owned();
        assert!(
            text.contains(&format!(r#""public_metadata":{metadata}"#)),
            "{attempt}: {text}"
        );
    }
    assert_eq!(
        h.lazy_sync_records(ADA).await.len(),
        1,
        "the second read is from the table"
    );
}
