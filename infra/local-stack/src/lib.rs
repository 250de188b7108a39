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
use clerk_sync::config::{Env, SyncConfig, WebhookConfig};
use devkit::apigw::{read_response, request_event};
use devkit::emulator::{ACCESS_KEY_ID, Emulator, REGION, SECRET_ACCESS_KEY};
use devkit::lambda::{JsonFn, json_fn};
use devkit::poller::{Mapping, Poller};
use devkit::resources::{Names, Resources, provision};
use http::StatusCode;
use serde_json::json;
use tokio::sync::oneshot;

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
}

/// One route of the gateway: an exact path served by a function.
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

        let env = resources.webhook_env();
        let config = WebhookConfig::from(&Env::from_fn(|k| env.get(k).cloned()))?;
        let webhook = Arc::new(webhook::Webhook::from_config(&config, &sdk));
        let routes = vec![Route {
            path: webhook::ROUTE,
            function: "webhook",
            handler: json_fn(webhook::lambda_service(webhook)),
        }];

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

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(gateway)
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(Arc::new(routes.clone()));
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
        env.insert("AWS_ENDPOINT_URL", self.endpoint().to_owned());
        env.insert("AWS_REGION", REGION.to_owned());
        env.insert("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned());
        env.insert("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned());
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
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
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
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// The gateway: finds the route, builds the API Gateway v2 event, invokes the function, and
/// turns its response back into HTTP, as API Gateway does.
async fn gateway(State(routes): State<Arc<Vec<Route>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let Some(route) = routes.iter().find(|r| r.path == parts.uri.path()) else {
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
