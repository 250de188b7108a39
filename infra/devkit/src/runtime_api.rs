//! A Lambda Runtime API (`2018-06-01`) on a local port, for running a built `bootstrap` as Lambda
//! runs it: the process polls `/runtime/invocation/next`, gets an event, posts its response.
//! `cold_start` uses it to time initialisation and invocations of the release binaries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

type Reply = oneshot::Sender<Result<Value, Value>>;

struct Shared {
    /// Events waiting for the function's next poll.
    queue: tokio::sync::Mutex<mpsc::Receiver<(String, Value, Reply)>>,
    /// Invocations handed out, awaiting their response.
    pending: Mutex<HashMap<String, Reply>>,
    /// When the function first asked for an event: the end of its initialisation.
    first_poll: Mutex<Option<Instant>>,
    polled: Notify,
    function_arn: String,
}

/// The Runtime API for one function process.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    sender: mpsc::Sender<(String, Value, Reply)>,
    server: tokio::task::JoinHandle<()>,
    next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    /// Serves on a free loopback port.
    pub async fn start(function_name: &str) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            pending: Mutex::default(),
            first_poll: Mutex::default(),
            polled: Notify::new(),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
        });
        let app = axum::Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(respond),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(fail))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            sender,
            server,
            next_id: Default::default(),
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for the function process.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until the function first polls for an event, and says when that was.
    pub async fn initialised(&self) -> Instant {
        loop {
            let notified = self.shared.polled.notified();
            if let Some(at) = *self.shared.first_poll.lock().unwrap() {
                return at;
            }
            notified.await;
        }
    }

    /// Hands the function one event and waits for its response (`Err` with the error body when
    /// the function reported an error).
    pub async fn invoke(&self, event: Value) -> anyhow::Result<Result<Value, Value>> {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("req-{n:08}");
        let (reply, response) = oneshot::channel();
        self.sender
            .send((id, event, reply))
            .await
            .map_err(|_| anyhow!("the runtime API stopped"))?;
        response
            .await
            .context("the function exited without responding")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    {
        let mut first = shared.first_poll.lock().unwrap();
        if first.is_none() {
            *first = Some(Instant::now());
            shared.polled.notify_waiters();
        }
    }
    let Some((id, event, reply)) = shared.queue.lock().await.recv().await else {
        // No more events: the process is about to be stopped, so it never gets an answer (an
        // error status would make the runtime client panic on the missing headers).
        return std::future::pending().await;
    };
    shared.pending.lock().unwrap().insert(id.clone(), reply);
    let deadline = std::time::UNIX_EPOCH.elapsed().unwrap().as_millis() + 30_000;
    let mut headers = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).expect("header-safe");
    headers.insert("lambda-runtime-aws-request-id", value(&id));
    headers.insert("lambda-runtime-deadline-ms", value(&deadline.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        value(&shared.function_arn),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        value("Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"),
    );
    headers.insert("content-type", value("application/json"));
    (headers, event.to_string()).into_response()
}

fn settle(shared: &Shared, id: &str, outcome: Result<Value, Value>) -> StatusCode {
    match shared.pending.lock().unwrap().remove(id) {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    settle(&shared, &id, Ok(json_or_text(&body)))
}

async fn fail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    settle(&shared, &id, Err(json_or_text(&body)))
}

async fn init_error(body: axum::body::Bytes) -> StatusCode {
    tracing::error!(error = %json_or_text(&body), "the function failed to initialise");
    StatusCode::ACCEPTED
}

/// A built function binary (`bootstrap`) running against its own [`RuntimeApi`], as Lambda runs it.
pub struct Bootstrap {
    // Dropped first: the process is killed before its Runtime API stops answering, so it never
    // sees (and logs) its pending poll fail.
    child: tokio::process::Child,
    runtime: RuntimeApi,
    started: Instant,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Bootstrap {
    /// Starts `command` (the binary, or a wrapper that execs it) with nothing but Lambda's
    /// variables, `PATH` and `env`. Killed when dropped.
    pub async fn start<K, V>(
        function_name: &str,
        mut command: tokio::process::Command,
        memory_mb: u32,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> anyhow::Result<Self>
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let runtime = RuntimeApi::start(function_name).await?;
        command
            .env_clear()
            .envs(env)
            .env("PATH", "/usr/bin:/bin")
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {function_name}"))?;
        // Lambda captures stdout into the function's log: the metrics documents are written there.
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stdout.take() {
            let lines = stdout.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut reader = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().expect("not poisoned").push(line);
                }
            });
        }
        Ok(Self {
            runtime,
            child,
            started,
            stdout,
        })
    }

    /// The lines the function has written on stdout so far, waiting up to 2 s for at least `n`.
    pub async fn stdout_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let lines = self.stdout.lock().expect("not poisoned").clone();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The process's stderr, when the command was started with `stderr(Stdio::piped())`.
    pub fn take_stderr(&mut self) -> Option<tokio::process::ChildStderr> {
        self.child.stderr.take()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits for the end of initialisation (the first poll for an event); fails if the process
    /// exits first or takes longer than 10 s.
    pub async fn initialised(&mut self) -> anyhow::Result<Instant> {
        tokio::select! {
            at = self.runtime.initialised() => Ok(at),
            status = self.child.wait() => Err(anyhow!("exited during init: {status:?}")),
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
                Err(anyhow!("no poll for an event within 10 s"))
            }
        }
    }

    /// One invocation: the function's response, or `Err` with the error it reported. Fails if the
    /// process exits first or takes longer than 30 s, so a crash cannot hang a test.
    pub async fn invoke(&mut self, event: Value) -> anyhow::Result<Result<Value, Value>> {
        tokio::select! {
            response = self.runtime.invoke(event) => response,
            status = self.child.wait() => Err(anyhow!("exited during an invocation: {status:?}")),
            _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {
                Err(anyhow!("no response within 30 s"))
            }
        }
    }
}

/// A function binary as the template deploys it, for tests: fresh resources in the shared
/// emulator, and `binary` started with the environment `env` gives for them (plus the emulator's),
/// initialised.
pub async fn start_provisioned(
    function_name: &str,
    binary: &str,
    env: impl FnOnce(&crate::resources::Resources) -> std::collections::BTreeMap<&'static str, String>,
) -> anyhow::Result<(
    aws_config::SdkConfig,
    crate::resources::Resources,
    Bootstrap,
)> {
    let emulator = crate::emulator::Emulator::shared();
    let sdk = emulator.sdk_config().await;
    let resources = crate::resources::provision(
        &sdk,
        crate::resources::Names::unique("bin"),
        crate::signing::DEV_WEBHOOK_SECRET,
    )
    .await?;
    let mut vars = env(&resources);
    vars.extend(emulator.process_env());
    let command = tokio::process::Command::new(binary);
    let mut bootstrap = Bootstrap::start(function_name, command, 256, vars).await?;
    bootstrap.initialised().await?;
    Ok((sdk, resources, bootstrap))
}

/// Runs `binary` with nothing but `env`, a region and a Runtime API nobody serves, to the end:
/// what a function does when its configuration is incomplete.
pub fn run_unserved(binary: &str, env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().copied())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("the binary runs")
}
