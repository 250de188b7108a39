//! The local AWS emulator: moto's server, run from the project's venv on free loopback ports, one
//! process for SQS and one for the rest behind one endpoint ([`front`]).

pub mod front;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Region and credentials the emulator accepts. Local development values, not secrets.
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "local-dev-access-key";
pub const SECRET_ACCESS_KEY: &str = "local-dev-secret-key";

/// A running emulator, or one given by `AWS_ENDPOINT_URL`. A started one stops when this is
/// dropped, or when this process exits, whichever comes first.
pub struct Emulator {
    endpoint: String,
    process: Option<Running>,
}

/// What [`Emulator::start`] started.
struct Running {
    _front: front::Front,
    servers: Vec<Server>,
}

/// One moto process, serving every service, of which it is sent one share (`role`).
struct Server {
    role: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Server {
    fn spawn(role: &'static str) -> anyhow::Result<Self> {
        let root = crate::workspace_root();
        let python = std::env::var_os("MOTO_PYTHON")
            .map(Into::into)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        if !python.exists() {
            bail!(
                "{} not found: run `scripts/bootstrap.sh` (or `make setup`) to install the emulator",
                python.display()
            );
        }
        let mut child = Command::new(&python)
            .arg(root.join("infra/devkit/moto_emulator.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", python.display()))?;
        let stdin = child.stdin.take();
        Ok(Self {
            role,
            child,
            stdin,
            port: 0,
        })
    }

    /// Waits for the process's `READY <port>` line.
    fn ready(mut self) -> anyhow::Result<Self> {
        let mut line = String::new();
        BufReader::new(self.child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .with_context(|| format!("reading the {} emulator's READY line", self.role))?;
        self.port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse::<u16>().ok())
            .with_context(|| format!("the {} emulator did not start (said {line:?})", self.role))?;
        Ok(self)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing its stdin stops the process; kill it too in case it is stuck.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    /// Uses `AWS_ENDPOINT_URL` when set, else starts a new emulator.
    pub fn from_env_or_start() -> anyhow::Result<Self> {
        match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.trim().is_empty() => Ok(Self::external(&url)),
            _ => Self::start(),
        }
    }

    /// An emulator (or a proxy in front of one) someone else runs at `endpoint`; dropping this
    /// leaves it running.
    pub fn external(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
            process: None,
        }
    }

    /// Starts the emulator, one moto process for SQS and one for every other service, each on a
    /// free port, behind one [`front::Front`] endpoint; waits until both accept requests.
    pub fn start() -> anyhow::Result<Self> {
        // Both processes import moto at once (a second or so each): start both, then wait.
        let sqs = Server::spawn("sqs")?;
        let rest = Server::spawn("rest")?;
        let (sqs, rest) = (sqs.ready()?, rest.ready()?);
        let front = front::Front::start(front::Upstreams {
            sqs: sqs.endpoint(),
            rest: rest.endpoint(),
        })?;
        Ok(Self {
            endpoint: front.endpoint(),
            process: Some(Running {
                _front: front,
                servers: vec![sqs, rest],
            }),
        })
    }

    /// One emulator per test process, started on first use.
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(|| Emulator::from_env_or_start().expect("local AWS emulator"))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What a function process needs to reach this emulator: endpoint, region, credentials.
    pub fn process_env(&self) -> std::collections::BTreeMap<&'static str, String> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
        ]
        .into()
    }

    /// SDK configuration pointing every client at this emulator.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

/// SDK configuration for an emulator at `endpoint`, with the local development credentials.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "devkit",
        ))
        .endpoint_url(endpoint)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await
}

impl Emulator {
    /// The emulator processes' own endpoints, by role (`sqs`, `rest`), for measuring them apart;
    /// empty for an external emulator.
    pub fn backends(&self) -> Vec<(&'static str, String)> {
        self.process
            .iter()
            .flat_map(|p| p.servers.iter().map(|s| (s.role, s.endpoint())))
            .collect()
    }

    /// The emulator processes' ids, by role, for reading their CPU time; empty for an external one.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.process
            .iter()
            .flat_map(|p| p.servers.iter().map(|s| (s.role, s.child.id())))
            .collect()
    }
}
