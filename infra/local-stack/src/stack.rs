//! A running stack's lifecycle: start the emulator and resources, wire the functions with the
//! environment the SAM template gives them, serve the gateway and the event source mapping; stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clerk_sync::config::{ApiConfig, Env, SyncConfig, WebhookConfig};
use clerk_sync::telemetry::metrics::Metrics;
use devkit::emulator::Emulator;
use devkit::lambda::json_fn;
use devkit::poller::{Mapping, Poller};
use devkit::resources::{Names, Resources, provision};
use tokio::sync::oneshot;

use crate::api_env::{ClerkOptions, api_env};
use crate::gateway::{self, Route};
use crate::{clerk, cors, files};

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
    /// The local Clerk's generated users and 429 knob (unused with a real Clerk).
    pub local_clerk: clerk::LocalClerkOptions,
    /// Where the functions' metrics documents are appended (one JSON line each); none: dropped.
    pub metrics_file: Option<PathBuf>,
    /// An AWS endpoint to use instead of starting an emulator (one already running, or a proxy
    /// in front of one); none: `AWS_ENDPOINT_URL` if set, else a new emulator.
    pub aws_endpoint: Option<String>,
    /// Concurrent pollers of the events queue, each with one sync invocation in flight: the
    /// template's `SyncMaxConcurrency` ([`devkit::poller::DEFAULT_POLLERS`] by default).
    pub sync_pollers: usize,
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
    /// Starts (or joins, with `aws_endpoint` or `AWS_ENDPOINT_URL`) the emulator, provisions the resources, wires
    /// the functions with the same environment variables the SAM template gives them, and
    /// serves the gateway.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let emulator = match &options.aws_endpoint {
            Some(endpoint) => Emulator::external(endpoint),
            None => tokio::task::spawn_blocking(Emulator::from_env_or_start).await??,
        };
        let sdk = emulator.sdk_config().await;
        let resources = provision(&sdk, options.names.clone(), &options.webhook_secrets).await?;

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");

        // Each function's metrics under its own name, as each Lambda function writes its own.
        let sink = match &options.metrics_file {
            Some(path) => Some(files::metrics_sink(path)?),
            None => None,
        };
        let metrics = |name: &str| match &sink {
            Some(sink) => Metrics::new(name, "$LATEST", sink.clone()),
            None => Metrics::discard(name),
        };

        let env = resources.webhook_env();
        let config = WebhookConfig::from(&Env::from_fn(|k| env.get(k).cloned()))?;
        let webhook =
            Arc::new(webhook::Ingest::from_config(&config, &sdk).with_metrics(metrics("webhook")));

        // `provision` stores the development key; a key given for a real Clerk replaces it.
        let secret_key = match &options.clerk.secret_key {
            Some(key) => {
                devkit::resources::put_secret(&sdk, &resources.clerk_secret_key_id, key).await?;
                key.clone()
            }
            None => devkit::resources::DEV_CLERK_SECRET_KEY.to_owned(),
        };
        let local_clerk = options.clerk.is_local().then(|| {
            Arc::new(clerk::LocalClerk::with_options(
                &secret_key,
                options.local_clerk,
            ))
        });
        let api_env = api_env(&resources, &options.clerk, &base_url);
        let config = ApiConfig::from(&Env::from_fn(|k| api_env.get(k).cloned()))?;
        let api = Arc::new(
            api::Api::from_config(&config, &sdk)
                .map_err(|e| anyhow::anyhow!("api: {e}"))?
                .with_metrics(metrics("api")),
        );
        let routes = gateway::routes(webhook, api);

        let env = resources.sync_env();
        let config = SyncConfig::from(&Env::from_fn(|k| env.get(k).cloned()))?;
        let worker =
            Arc::new(sync::SyncWorker::from_config(&config, &sdk).with_metrics(metrics("sync")));
        let poller = options.sync.then(|| {
            devkit::poller::spawn(
                &sdk,
                Mapping {
                    pollers: options.sync_pollers,
                    ..Mapping::new(&resources.queue_url, &resources.queue_arn)
                },
                json_fn(sync::lambda_service(worker)),
            )
        });

        let cors = cors::Cors::new(
            api_env
                .get(ApiConfig::AUTHORIZED_PARTIES)
                .map(String::as_str),
        );
        let app = gateway::router(routes.clone(), cors, local_clerk.as_ref());
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

    /// The emulator processes this stack started, by role, for reading their CPU time.
    pub fn emulator_pids(&self) -> Vec<(&'static str, u32)> {
        self.emulator.pids()
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
        files::write_env_file(path, &self.lambda_env())
    }

    /// This stack's [`outputs`](crate::outputs).
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        files::outputs(&self.base_url(), &self.resources, self.endpoint())
    }

    /// Writes [`Self::outputs`] as `sam list stack-outputs --output json` prints a stack's.
    pub fn write_outputs_file(&self, path: &Path) -> anyhow::Result<()> {
        files::write_outputs_file(path, self.outputs())
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
