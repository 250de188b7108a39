//! The local stack: the AWS emulator, the resources, a local API Gateway that turns HTTP requests
//! into Lambda events and runs the real function code in-process, and the SQS event source
//! mapping that feeds queued events to the sync function.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::Response;
use clerk_sync::config::{ApiConfig, Env, SyncConfig, WebhookConfig};
use devkit::apigw::{read_response, request_event};
use devkit::emulator::Emulator;
use devkit::lambda::{JsonFn, json_fn};
use devkit::poller::{Mapping, Poller};
use devkit::resources::{Names, Resources, provision};
use http::StatusCode;
use serde_json::json;
use tokio::sync::oneshot;

pub mod clerk;
pub mod cors;

/// API Gateway's payload limit for HTTP APIs.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Loopback port for the gateway; 0 picks a free one.
    pub port: u16,
    /// Signing secret value stored in the emulated Secrets Manager (one or more `whsec_…`).
    pub webhook_secrets: String,
    /// Resource names (the local ones by default, unique ones in tests).
    pub names: Names,
    /// Run the event source mapping (queue → sync function). Off, events stay on the queue,
    /// for inspection or for running the sync function under `cargo lambda watch`.
    pub sync: bool,
    /// Clerk settings; all unset: the local Clerk (generated key, fixture users).
    pub clerk: ClerkOptions,
}

/// The api's Clerk settings, with the variable names a deployment uses. When neither
/// `jwt_key` nor `jwks_url` is set, the stack runs its local Clerk and fills in the rest.
#[derive(Debug, Clone, Default)]
pub struct ClerkOptions {
    pub jwt_key: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub authorized_parties: Option<String>,
    pub api_url: Option<String>,
    pub secret_key: Option<String>,
    pub admin_claim: Option<String>,
}

impl ClerkOptions {
    /// From `CLERK_JWT_KEY`, `CLERK_JWKS_URL`, `CLERK_ISSUER`, `CLERK_AUTHORIZED_PARTIES`,
    /// `CLERK_API_URL`, `CLERK_SECRET_KEY` and `CLERK_ADMIN_CLAIM`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            jwt_key: var("CLERK_JWT_KEY"),
            jwks_url: var("CLERK_JWKS_URL"),
            issuer: var("CLERK_ISSUER"),
            authorized_parties: var("CLERK_AUTHORIZED_PARTIES"),
            api_url: var("CLERK_API_URL"),
            secret_key: var("CLERK_SECRET_KEY"),
            admin_claim: var("CLERK_ADMIN_CLAIM"),
        }
    }

    pub fn is_local(&self) -> bool {
        self.jwt_key.is_none() && self.jwks_url.is_none()
    }
}

/// One route of the gateway: a path (`{id}` matches one segment) served by a function.
#[derive(Clone)]
pub struct Route {
    pub path: &'static str,
    pub function: &'static str,
    handler: JsonFn,
}

/// A running stack. Dropping it stops the gateway and the emulator it started.
pub struct Stack {
    pub addr: SocketAddr,
    pub resources: Resources,
    pub routes: Vec<Route>,
    /// The local Clerk, unless real Clerk settings were given.
    pub local_clerk: Option<Arc<clerk::LocalClerk>>,
    api_env: BTreeMap<&'static str, String>,
    emulator: Emulator,
    poller: Option<Poller>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Stack {
    /// Starts (or joins, with `AWS_ENDPOINT_URL`) the emulator, provisions the resources, wires
    /// the functions with the same environment variables the SAM template gives them, and
    /// serves the gateway.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let emulator = tokio::task::spawn_blocking(Emulator::from_env_or_start).await??;
        let sdk = emulator.sdk_config().await;
        let resources = provision(&sdk, options.names.clone(), &options.webhook_secrets).await?;

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");

        let env = resources.webhook_env();
        let config = WebhookConfig::from(&Env::from_fn(|k| env.get(k).cloned()))?;
        let webhook = Arc::new(webhook::Ingest::from_config(&config, &sdk));

        // `provision` stores the development key; a key given for a real Clerk replaces it.
        let secret_key = match &options.clerk.secret_key {
            Some(key) => {
                devkit::resources::put_secret(&sdk, &resources.clerk_secret_key_id, key).await?;
                key.clone()
            }
            None => devkit::resources::DEV_CLERK_SECRET_KEY.to_owned(),
        };
        let local_clerk = options
            .clerk
            .is_local()
            .then(|| Arc::new(clerk::LocalClerk::new(&secret_key)));
        let api_env = api_env(&resources, &options.clerk, &base_url);
        let config = ApiConfig::from(&Env::from_fn(|k| api_env.get(k).cloned()))?;
        let api = Arc::new(
            api::Api::from_config(&config, &sdk).map_err(|e| anyhow::anyhow!("api: {e}"))?,
        );
        let api = json_fn(api::lambda_service(api));
        let api_route = |path| Route {
            path,
            function: "api",
            handler: api.clone(),
        };
        let routes = vec![
            Route {
                path: webhook::ROUTE,
                function: "webhook",
                handler: json_fn(webhook::lambda_service(webhook)),
            },
            api_route(api::ME),
            api_route("/v1/users/{id}"),
            api_route(api::HEALTH),
        ];

        let env = resources.sync_env();
        let config = SyncConfig::from(&Env::from_fn(|k| env.get(k).cloned()))?;
        let worker = Arc::new(sync::SyncWorker::from_config(&config, &sdk));
        let poller = options.sync.then(|| {
            devkit::poller::spawn(
                &sdk,
                Mapping::new(&resources.queue_url, &resources.queue_arn),
                json_fn(sync::lambda_service(worker)),
            )
        });

        let mut app = axum::Router::new()
            .fallback(gateway)
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(Arc::new(Gateway {
                routes: routes.clone(),
                cors: cors::Cors::new(
                    api_env
                        .get(ApiConfig::AUTHORIZED_PARTIES)
                        .map(String::as_str),
                ),
            }));
        if let Some(clerk) = &local_clerk {
            app = clerk.clone().router().merge(app);
        }
        // The api's OpenAPI document, as committed.
        app = axum::Router::new()
            .route(
                "/openapi.json",
                axum::routing::get(|| async {
                    (
                        [(http::header::CONTENT_TYPE, "application/json")],
                        include_str!("../../../functions/api/openapi.json"),
                    )
                }),
            )
            .merge(app);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "gateway stopped");
            }
        });
        Ok(Self {
            addr,
            resources,
            routes,
            local_clerk,
            api_env,
            emulator,
            poller,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn endpoint(&self) -> &str {
        self.emulator.endpoint()
    }

    /// Whether queued events are being fed to the sync function.
    pub fn syncing(&self) -> bool {
        self.poller.is_some()
    }

    /// What a function needs to run outside the stack (`cargo lambda watch --env-file`) against
    /// the same emulator and resources.
    pub fn lambda_env(&self) -> BTreeMap<&'static str, String> {
        let mut env = self.resources.webhook_env();
        env.extend(self.resources.sync_env());
        env.extend(self.api_env.clone());
        env.extend(self.emulator.process_env());
        env.insert("LOCAL_GATEWAY_URL", self.base_url());
        env.insert(
            "EVENTS_DLQ_URL",
            self.resources.dead_letter_queue_url.clone(),
        );
        env
    }

    /// Writes [`Self::lambda_env`] as `KEY=VALUE` lines.
    pub fn write_env_file(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text: String = self
            .lambda_env()
            .iter()
            // Single-quoted: values such as `metadata.role=admin` hold `=`; none holds `'`.
            .map(|(k, v)| format!("{k}='{v}'\n"))
            .collect();
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// This stack's [`outputs`].
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        outputs(&self.base_url(), &self.resources, self.endpoint())
    }

    /// Writes [`Self::outputs`] as `sam list stack-outputs --output json` prints a stack's.
    pub fn write_outputs_file(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let outputs: Vec<_> = self
            .outputs()
            .into_iter()
            .map(|(key, value)| json!({"OutputKey": key, "OutputValue": value}))
            .collect();
        std::fs::write(path, serde_json::to_string_pretty(&outputs)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Stops the gateway, then the emulator (if this stack started it).
    pub async fn stop(mut self) {
        self.poller.take();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Where the local stack records how to reach it, for the dev tool and `cargo lambda watch`.
pub fn env_file() -> PathBuf {
    devkit::workspace_root().join(".local/lambda.env")
}

/// The local counterparts of the SAM stack's outputs, under the template's output keys, plus
/// [`LOCAL_ENDPOINT_OUTPUT`] (the emulator), so a tool reading outputs works on either stack.
pub fn outputs(base_url: &str, r: &Resources, endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WebhookUrl", format!("{base_url}{}", webhook::ROUTE)),
        ("ApiBaseUrl", base_url.to_owned()),
        ("ApiHealthUrl", format!("{base_url}{}", api::HEALTH)),
        ("EventsQueueUrl", r.queue_url.clone()),
        ("DeadLetterQueueUrl", r.dead_letter_queue_url.clone()),
        ("DeadLetterQueueArn", r.dead_letter_queue_arn.clone()),
        ("UsersTableName", r.names.users_table.clone()),
        ("EventLogTableName", r.names.event_log_table.clone()),
        ("WebhookSecretArn", r.webhook_secret_id.clone()),
        ("ClerkSecretKeyArn", r.clerk_secret_key_id.clone()),
        (LOCAL_ENDPOINT_OUTPUT, endpoint.to_owned()),
    ]
}

pub use devkit::resources::LOCAL_ENDPOINT_OUTPUT;

/// Where the local stack writes its outputs, for `make smoke-local`.
pub fn outputs_file() -> PathBuf {
    devkit::workspace_root().join(".local/stack-outputs.json")
}

/// Reads [`env_file`] back.
pub fn read_env_file() -> anyhow::Result<BTreeMap<String, String>> {
    let path = env_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is the local stack running? `make local`)",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.to_owned(), v.to_owned())
        })
        .collect())
}

/// The gateway: finds the route, builds the API Gateway v2 event, invokes the function, and
/// turns its response back into HTTP, as API Gateway does.
async fn gateway(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let cors = gateway.cors.as_ref();
    if let Some((status, headers)) = cors.and_then(|c| c.preflight(&parts.method, &parts.headers)) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return response;
    }
    let mut response = invoke(&gateway.routes, &parts, body).await;
    if let Some(cors) = cors {
        cors.decorate(&parts.headers, response.headers_mut());
    }
    response
}

/// The routes and CORS settings the gateway serves.
struct Gateway {
    routes: Vec<Route>,
    cors: Option<cors::Cors>,
}

/// Runs the function of the matching route, as API Gateway's Lambda proxy integration does.
async fn invoke(routes: &[Route], parts: &http::request::Parts, body: Body) -> Response {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let Some(route) = routes.iter().find(|r| matches(r.path, parts.uri.path())) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route for {}", parts.uri.path()),
        );
    };
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            );
        }
    };
    let event = request_event(
        parts.method.as_str(),
        &path_and_query,
        &parts.headers,
        &body,
    );
    let reply = match (route.handler)(event).await.and_then(|v| read_response(&v)) {
        Ok(reply) => reply,
        Err(e) => {
            // API Gateway answers 500 when the function errors or returns garbage.
            tracing::error!(function = route.function, error = %e, "function failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal server error",
            );
        }
    };
    tracing::info!(
        function = route.function,
        method = %parts.method,
        path = %parts.uri.path(),
        status = reply.status,
        "request"
    );
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap_or_else(|_| {
        error(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "function returned an invalid response",
        )
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"error": {"code": code, "message": message}}).to_string(),
        ))
        .expect("static parts are valid")
}

/// Whether `path` is served by a route `pattern` (`{id}` is one non-empty segment).
fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix("{id}") {
        Some(prefix) => path
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        None => pattern == path,
    }
}

/// The api's environment: the resources, plus the given Clerk settings, or the local Clerk's.
fn api_env(
    resources: &Resources,
    clerk: &ClerkOptions,
    base_url: &str,
) -> BTreeMap<&'static str, String> {
    let mut env = resources.api_env();
    if clerk.is_local() {
        env.insert(
            ApiConfig::JWKS_URL,
            format!("{base_url}{}", clerk::JWKS_PATH),
        );
        env.insert(ApiConfig::ISSUER, devkit::tokens::LOCAL_ISSUER.to_owned());
        env.insert(
            ApiConfig::AUTHORIZED_PARTIES,
            devkit::tokens::LOCAL_AZP.to_owned(),
        );
        env.insert(
            ApiConfig::API_URL,
            format!("{base_url}{}", clerk::API_PREFIX),
        );
        env.insert(
            ApiConfig::ADMIN_CLAIM,
            clerk
                .admin_claim
                .clone()
                .unwrap_or_else(|| "metadata.role=admin".to_owned()),
        );
        return env;
    }
    let given = [
        (ApiConfig::JWT_KEY, &clerk.jwt_key),
        (ApiConfig::JWKS_URL, &clerk.jwks_url),
        (ApiConfig::ISSUER, &clerk.issuer),
        (ApiConfig::AUTHORIZED_PARTIES, &clerk.authorized_parties),
        (ApiConfig::API_URL, &clerk.api_url),
        (ApiConfig::ADMIN_CLAIM, &clerk.admin_claim),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            env.insert(name, value.clone());
        }
    }
    env
}

/// The story end to end, over HTTP against a running stack with its local Clerk: a signed
/// `user.created` in, synced, read back with a session token; then updated and deleted. Returns
/// one line per step; fails if any step does not end as it should within 2 s.
pub async fn demo(
    base_url: &str,
    webhook_secret: &str,
    keys: &devkit::tokens::DevKeys,
) -> anyhow::Result<Vec<String>> {
    let user = format!("user_demo{:x}", devkit::signing::now());
    let http = devkit::http_client();
    let token = keys.mint(&user);
    let mut lines = Vec::new();
    /// When the read through the api shows the step's effect.
    type Done = fn(&serde_json::Value, u16) -> bool;
    let steps: [(&str, Done); 3] = [
        ("user.created", |u, s| {
            s == 200 && u["first_name"].is_string()
        }),
        ("user.updated", |u, s| {
            s == 200
                && u["email_addresses"]
                    .as_array()
                    .is_some_and(|a| a.len() == 2)
        }),
        ("user.deleted", |_, s| s == 404),
    ];
    for (fixture, done) in steps {
        let body = devkit::fixture(fixture).replace("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa", &user);
        let posted = http
            .post(format!("{base_url}{}", webhook::ROUTE))
            .headers(devkit::signing::sign_now(webhook_secret, &body))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = posted.status().as_u16();
        anyhow::ensure!(status == 202, "posting {fixture}: {status}");
        let start = std::time::Instant::now();
        loop {
            let read = http
                .get(format!("{base_url}{}", api::ME))
                .bearer_auth(&token)
                .send()
                .await?;
            let status = read.status().as_u16();
            let json: serde_json::Value = read.json().await.unwrap_or_default();
            if done(&json, status) {
                let summary = if status == 200 {
                    format!(
                        "{} {} <{}> updated_at {}",
                        json["first_name"].as_str().unwrap_or("-"),
                        json["last_name"].as_str().unwrap_or("-"),
                        json["email"].as_str().unwrap_or("-"),
                        json["updated_at"]
                    )
                } else {
                    json["error"]["code"].as_str().unwrap_or("-").to_owned()
                };
                lines.push(format!(
                    "{fixture:<13} signed, POST {} -> 202; GET {} -> {status} after {:>4} ms: {summary}",
                    webhook::ROUTE,
                    api::ME,
                    start.elapsed().as_millis()
                ));
                break;
            }
            anyhow::ensure!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "{fixture} was not visible through {} within 2 s (last: {status} {json})",
                api::ME
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    Ok(lines)
}
