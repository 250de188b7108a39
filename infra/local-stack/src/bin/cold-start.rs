//! `cold-start`: measures each built `bootstrap` as Lambda runs it, to size memory and timeouts.
//!
//! Starts the local stack (emulator, resources, local Clerk), then runs each function's release
//! `bootstrap` as a child process against a local Lambda Runtime API, `--runs` times, interleaved
//! (run 1 of every function, then run 2, …, in a rotating order, so a load spike on a shared machine
//! hits them all alike): initialisation (spawn until the first poll for an event), the first
//! invocation, then `--warm` more. The reference is `empty`, a `lambda_runtime` function that does
//! nothing (`functions/empty`, never deployed): every figure is also given as a ratio to it.
//! `--before <dir>` adds another build of the three functions to the same run (e.g. the previous
//! commit's), so a change is measured side by side. `--breakdown-runs` more runs per function log
//! the `clerk_sync::init` debug event (`RUST_LOG=warn,clerk_sync::init=debug`): each init step's
//! duration as `main` timed it, the rest (exec, the async runtime, the Lambda runtime client, the
//! first poll) being init minus their sum. CPU time comes from the kernel's per-thread scheduler accounting and peak memory
//! from `VmHWM`. Lambda gives a function CPU in proportion to its memory (one vCPU at 1,769 MB).
//! With `--mb 128,256,…` each size is measured for real: the bootstrap runs in a CPU cgroup whose
//! quota is that share of one CPU (needs a writable cgroup CPU controller, e.g. as root). Without,
//! the table projects each figure: wall + CPU × (1769 / MB − 1). Network is local (plain HTTP to
//! the emulator, which closes every connection), so deployed cold starts add a few TLS handshakes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use devkit::resources::Names;
use devkit::runtime_api::Bootstrap;
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};
use local_stack::{ClerkOptions, Stack, StackOptions};
use serde_json::{Value, json};

/// Memory sizes the projection covers.
const SIZES_MB: [u32; 4] = [128, 256, 512, 1024];
/// Lambda's memory for one full vCPU.
const ONE_VCPU_MB: f64 = 1769.0;
/// The fixture user the api reads (stored by the sync runs).
const USER: &str = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";

#[derive(Parser)]
#[command(about = "Measure cold and warm starts of the release bootstraps")]
struct Cli {
    /// Where `<function>/bootstrap` are (`cargo lambda build --release`, or `.aws-sam/build`).
    #[arg(long, default_value = "target/lambda")]
    bootstraps: PathBuf,
    /// Cold starts per function.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Warm invocations after each cold one.
    #[arg(long, default_value_t = 50)]
    warm: usize,
    /// Memory sizes to measure under Lambda's CPU share for each (comma-separated MB); without,
    /// full CPU and a projection.
    #[arg(long, value_delimiter = ',')]
    mb: Vec<u32>,
    /// Another build of the functions (`<dir>/<function>/bootstrap`) to measure in the same run.
    #[arg(long)]
    before: Option<PathBuf>,
    /// Extra cold starts per function that log where init goes (not timed with the others).
    #[arg(long, default_value_t = 10)]
    breakdown_runs: usize,
    /// `NAME=VALUE` set for every function, e.g. `SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt`
    /// to read one bundle as on Lambda's image rather than this machine's whole certificate
    /// directory.
    #[arg(long = "env", value_parser = parse_env)]
    extra_env: Vec<(String, String)>,
    /// Put the emulator behind a local TLS relay: every function reaches AWS over HTTPS, trusting
    /// the relay's self-signed certificate through `SSL_CERT_FILE` (this bundle plus it), so the
    /// first invocation pays its handshakes as on Lambda.
    #[arg(long, value_name = "BUNDLE")]
    tls: Option<PathBuf>,
    /// Run each bootstrap under this command (e.g. `strace -f -tt -o /tmp/trace`), for looking
    /// into one cold start; its figures then include the wrapper.
    #[arg(long, value_name = "COMMAND", num_args = 1.., allow_hyphen_values = true)]
    wrap: Vec<String>,
}

/// TLS on a free loopback port, relayed as plain TCP to `backend` (the emulator). Its certificate
/// is self-signed for `127.0.0.1`; returns the port's address and the certificate in PEM.
async fn tls_relay(
    backend: std::net::SocketAddr,
) -> anyhow::Result<(std::net::SocketAddr, String)> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![cert.cert.der().clone()];
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    Ok((addr, cert.cert.pem()))
}

fn parse_env(spec: &str) -> Result<(String, String), String> {
    spec.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{spec:?} is not NAME=VALUE"))
}

#[derive(Clone, Copy, PartialEq)]
enum Function {
    Empty,
    Webhook,
    Sync,
    Api,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Webhook => "webhook",
            Self::Sync => "sync",
            Self::Api => "api",
        }
    }
}

/// One binary to measure: a function from one build.
struct Subject {
    label: String,
    function: Function,
    bootstrap: PathBuf,
}

/// One process's figures, in milliseconds and MiB.
#[derive(Default)]
struct Run {
    init_wall: f64,
    init_cpu: f64,
    first_wall: f64,
    first_cpu: f64,
    warm_wall: Vec<f64>,
    warm_cpu: f64,
    peak_rss_mib: f64,
    /// `(step, ms)` from the `clerk_sync::init` event, on breakdown runs of instrumented builds.
    steps: Vec<(String, f64)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = devkit::workspace_root();
    let dir = if cli.bootstraps.is_absolute() {
        cli.bootstraps.clone()
    } else {
        root.join(&cli.bootstraps)
    };
    let stack = Stack::start(StackOptions {
        port: 0,
        webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
        names: Names::unique("coldstart"),
        sync: false,
        clerk: ClerkOptions::default(),
        local_clerk: Default::default(),
        metrics_file: None,
        aws_endpoint: None,
        sync_pollers: devkit::poller::DEFAULT_POLLERS,
    })
    .await?;
    let clerk = stack.local_clerk.clone().context("the local Clerk runs")?;
    let sqs = aws_sdk_sqs::Client::new(&devkit::emulator::sdk_config_for(stack.endpoint()).await);
    let mut extra_env = cli.extra_env.clone();
    if let Some(bundle) = &cli.tls {
        let emulator: std::net::SocketAddr = stack
            .endpoint()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .context("the emulator's endpoint is http://<ip>:<port>")?;
        let (relay, pem) = tls_relay(emulator).await?;
        let trusted = std::env::temp_dir().join(format!("cold-start-roots-{}.pem", relay.port()));
        let mut roots = std::fs::read_to_string(bundle)
            .with_context(|| format!("reading {}", bundle.display()))?;
        roots.push('\n');
        roots.push_str(&pem);
        std::fs::write(&trusted, roots)?;
        println!(
            "AWS over TLS: https://{relay} -> {emulator}, trusting {} + the relay's certificate",
            bundle.display()
        );
        extra_env.push(("AWS_ENDPOINT_URL".into(), format!("https://{relay}")));
        extra_env.push(("SSL_CERT_FILE".into(), trusted.display().to_string()));
    }
    println!(
        "cold-start: {} runs x (init + 1 cold + {} warm) per function; bootstraps in {}",
        cli.runs,
        cli.warm,
        dir.display()
    );
    let sizes: Vec<Option<u32>> = if cli.mb.is_empty() {
        vec![None]
    } else {
        cli.mb.iter().copied().map(Some).collect()
    };
    let mut subjects = vec![Subject {
        label: "empty".into(),
        function: Function::Empty,
        bootstrap: dir.join("empty/bootstrap"),
    }];
    for function in [Function::Webhook, Function::Sync, Function::Api] {
        if let Some(before) = &cli.before {
            let before = if before.is_absolute() {
                before.clone()
            } else {
                root.join(before)
            };
            subjects.push(Subject {
                label: format!("{}@before", function.name()),
                function,
                bootstrap: before.join(function.name()).join("bootstrap"),
            });
        }
        subjects.push(Subject {
            label: function.name().into(),
            function,
            bootstrap: dir.join(function.name()).join("bootstrap"),
        });
    }
    for subject in &subjects {
        if !subject.bootstrap.is_file() {
            bail!(
                "{} missing: build first (`cargo lambda build --release -p empty -p webhook -p sync -p api`)",
                subject.bootstrap.display()
            );
        }
    }
    let mut summaries = Vec::new();
    for mb in sizes {
        let share = mb.map(CpuShare::create).transpose()?;
        match mb {
            Some(mb) => println!(
                "\n{mb} MB: CPU quota {:.1} % of one CPU (cgroup {})",
                f64::from(mb) / ONE_VCPU_MB * 100.0,
                share
                    .as_ref()
                    .map(|s| s.dir.display().to_string())
                    .unwrap_or_default()
            ),
            None => println!("\nfull CPU"),
        }
        let mut runs: Vec<Vec<Run>> = subjects.iter().map(|_| Vec::new()).collect();
        let mut breakdowns: Vec<Vec<Run>> = subjects.iter().map(|_| Vec::new()).collect();
        let total = cli.runs.max(cli.breakdown_runs);
        for run in 0..total {
            // A rotating order: no function always runs right after another's teardown.
            for k in 0..subjects.len() {
                let i = (k + run) % subjects.len();
                let subject = &subjects[i];
                for breakdown in [false, true] {
                    let wanted = if breakdown {
                        cli.breakdown_runs
                    } else {
                        cli.runs
                    };
                    if run >= wanted {
                        continue;
                    }
                    let mut events = Events {
                        function: subject.function,
                        clerk: &clerk.keys,
                        counter: mb.unwrap_or(0) as usize * 1_000_000
                            + run * 10_000
                            + i * 100
                            + usize::from(breakdown) * 50,
                    };
                    let process = Process {
                        bootstrap: &subject.bootstrap,
                        memory_mb: mb.unwrap_or(256),
                        cgroup: share.as_ref(),
                        breakdown,
                        env: &extra_env,
                        wrap: &cli.wrap,
                    };
                    let warm = if breakdown { 0 } else { cli.warm };
                    let measured =
                        measure(&stack, subject.function, process, &mut events, warm).await?;
                    if breakdown {
                        breakdowns[i].push(measured);
                    } else {
                        runs[i].push(measured);
                    }
                    // The emulator's SQS slows down as a queue fills: start every run from empty.
                    if subject.function == Function::Webhook {
                        devkit::sqs_event::take_all(&sqs, &stack.resources.queue_url, |_| {})
                            .await?;
                    }
                }
            }
        }
        println!(
            "{:<16} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}",
            "function",
            "init ms",
            "init cpu",
            "1st inv",
            "1st cpu",
            "cold ms",
            "warm p50",
            "warm p99",
            "warm cpu",
            "peak MiB",
            "init/empty"
        );
        let summary: Vec<Summary> = runs.iter().map(|r| Summary::of(r)).collect();
        let empty = &summary[0];
        for (subject, s) in subjects.iter().zip(&summary) {
            println!(
                "{:<16} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>8.3} {:>8.1} {:>9.2}x",
                subject.label,
                s.init_wall,
                s.init_cpu,
                s.first_wall,
                s.first_cpu,
                s.cold_wall,
                s.warm_p50,
                s.warm_p99,
                s.warm_cpu,
                s.peak_rss_mib,
                s.init_wall / empty.init_wall
            );
        }
        println!(
            "(medians of {} runs each; cold = init + 1st invocation, median of the sums; cpu = CPU time of the process; peak = max VmHWM)",
            cli.runs
        );
        if cli.breakdown_runs > 0 {
            print_breakdown(&subjects, &breakdowns);
        }
        for (subject, s) in subjects.iter().zip(summary) {
            summaries.push((subject.label.clone(), s));
        }
    }
    if cli.mb.is_empty() {
        println!();
        println!("projected at Lambda's CPU share (wall + cpu x (1769/MB - 1)), ms:");
        println!(
            "{:<16} {:>6} {:>22} {:>12}",
            "function", "MB", "cold (init + 1st inv)", "warm p50"
        );
        for (label, s) in &summaries {
            for mb in SIZES_MB {
                let factor = (ONE_VCPU_MB / f64::from(mb) - 1.0).max(0.0);
                let cold = s.init_wall + s.first_wall + (s.init_cpu + s.first_cpu) * factor;
                let warm = s.warm_p50 + s.warm_cpu * factor;
                println!("{:<16} {:>6} {:>22.0} {:>12.1}", label, mb, cold, warm);
            }
        }
    }
    stack.stop().await;
    Ok(())
}

/// Medians over runs (peak memory: the maximum).
struct Summary {
    init_wall: f64,
    /// Median of init + first invocation, run by run.
    cold_wall: f64,
    init_cpu: f64,
    first_wall: f64,
    first_cpu: f64,
    warm_p50: f64,
    warm_p99: f64,
    warm_cpu: f64,
    peak_rss_mib: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() as f64 * p).ceil() as usize).saturating_sub(1);
    values.get(i).copied().unwrap_or(f64::NAN)
}

impl Summary {
    fn of(runs: &[Run]) -> Self {
        let pick = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let warm: Vec<f64> = runs.iter().flat_map(|r| r.warm_wall.clone()).collect();
        Self {
            init_wall: pick(|r| r.init_wall),
            cold_wall: pick(|r| r.init_wall + r.first_wall),
            init_cpu: pick(|r| r.init_cpu),
            first_wall: pick(|r| r.first_wall),
            first_cpu: pick(|r| r.first_cpu),
            warm_p50: percentile(warm.clone(), 0.5),
            warm_p99: percentile(warm, 0.99),
            warm_cpu: pick(|r| r.warm_cpu),
            peak_rss_mib: runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max),
        }
    }
}

/// The events each function gets, fresh each time (new svix ids, new tokens).
struct Events<'a> {
    function: Function,
    clerk: &'a devkit::tokens::DevKeys,
    counter: usize,
}

impl Events<'_> {
    fn next(&mut self) -> Value {
        self.counter += 1;
        match self.function {
            Function::Empty => json!({"n": self.counter}),
            Function::Webhook => {
                let body = devkit::fixture("user.updated");
                let headers = sign_now(DEV_WEBHOOK_SECRET, &body);
                devkit::apigw::request_event("POST", webhook::ROUTE, &headers, body.as_bytes())
            }
            Function::Sync => {
                // A batch of 10: the fixture user (for the api to read), then new users.
                let fixture: Value =
                    serde_json::from_str(&devkit::fixture("user.created")).expect("JSON fixture");
                let messages = (0..10)
                    .map(|i| {
                        let mut event = fixture.clone();
                        if i > 0 {
                            event["data"]["id"] = json!(format!("user_cold{}x{i}", self.counter));
                        }
                        let id = format!("m{}-{i}", self.counter);
                        let svix = devkit::signing::new_svix_id();
                        devkit::sqs_event::message(&id, &svix, &event.to_string(), 1)
                    })
                    .collect();
                serde_json::to_value(devkit::sqs_event::event(messages)).expect("an SQS event")
            }
            Function::Api => {
                let mut headers = http::HeaderMap::new();
                let token = self.clerk.mint(USER);
                headers.insert(
                    http::header::AUTHORIZATION,
                    format!("Bearer {token}").parse().expect("header-safe"),
                );
                devkit::apigw::request_event("GET", api::ME, &headers, b"")
            }
        }
    }
}

/// Checks a response is what a healthy function answers.
fn check(function: Function, response: &Result<Value, Value>) -> anyhow::Result<()> {
    let response = match response {
        Ok(r) => r,
        Err(e) => bail!("{} reported an error: {e}", function.name()),
    };
    let ok = match function {
        Function::Empty => response.get("n").is_some(),
        Function::Webhook => response["statusCode"] == 202,
        Function::Api => response["statusCode"] == 200,
        Function::Sync => response["batchItemFailures"]
            .as_array()
            .is_some_and(Vec::is_empty),
    };
    if !ok {
        bail!("{} answered {response}", function.name());
    }
    Ok(())
}

/// How to run one bootstrap process.
struct Process<'a> {
    bootstrap: &'a Path,
    memory_mb: u32,
    cgroup: Option<&'a CpuShare>,
    /// Log the init steps (`clerk_sync::init` at debug) and read them from stderr.
    breakdown: bool,
    env: &'a [(String, String)],
    wrap: &'a [String],
}

/// A CPU cgroup whose quota is Lambda's CPU share at some memory size. Removed on drop.
struct CpuShare {
    dir: PathBuf,
}

impl CpuShare {
    /// Period of the quota: short, so the share is smooth over a cold start's few milliseconds.
    const PERIOD_US: u64 = 20_000;

    fn create(mb: u32) -> anyhow::Result<Self> {
        let quota = (Self::PERIOD_US as f64 * f64::from(mb) / ONE_VCPU_MB) as u64;
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let (dir, files) = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(format!("clerk-sync-cold-start-{mb}"));
            let files = vec![
                ("cpu.cfs_period_us", Self::PERIOD_US.to_string()),
                ("cpu.cfs_quota_us", quota.max(1000).to_string()),
            ];
            (dir, files)
        } else {
            let dir = PathBuf::from(format!("/sys/fs/cgroup/clerk-sync-cold-start-{mb}"));
            let files = vec![(
                "cpu.max",
                format!("{} {}", quota.max(1000), Self::PERIOD_US),
            )];
            (dir, files)
        };
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "creating the cgroup {} (--mb needs a writable CPU controller; run without --mb for a projection)",
                dir.display()
            )
        })?;
        for (file, value) in files {
            std::fs::write(dir.join(file), value)
                .with_context(|| format!("writing {}", dir.join(file).display()))?;
        }
        Ok(Self { dir })
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

async fn measure(
    stack: &Stack,
    function: Function,
    process: Process<'_>,
    events: &mut Events<'_>,
    warm: usize,
) -> anyhow::Result<Run> {
    let mut command = match process.cgroup {
        // The shell joins the cgroup, then becomes the bootstrap: init runs throttled too.
        Some(share) => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c")
                .arg("echo $$ > \"$0\"/cgroup.procs && exec \"$1\"")
                .arg(&share.dir)
                .arg(process.bootstrap);
            c
        }
        None if !process.wrap.is_empty() => {
            let mut c = tokio::process::Command::new(&process.wrap[0]);
            c.args(&process.wrap[1..]).arg(process.bootstrap);
            c
        }
        None => tokio::process::Command::new(process.bootstrap),
    };
    let mut env: Vec<(String, String)> = stack
        .lambda_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend(process.env.iter().cloned());
    if process.breakdown {
        command.stderr(std::process::Stdio::piped());
        env.push(("RUST_LOG".into(), "warn,clerk_sync::init=debug".into()));
    }
    let mut bootstrap = Bootstrap::start(function.name(), command, process.memory_mb, env).await?;
    let init_line = bootstrap.take_stderr().map(|stderr| {
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if event["target"] == "clerk_sync::init" {
                    return event["steps"].as_str().map(str::to_owned);
                }
            }
            None
        })
    });
    let pid = bootstrap.pid().context("the bootstrap has a pid")?;
    let initialised = bootstrap
        .initialised()
        .await
        .with_context(|| function.name())?;
    let mut run = Run {
        init_wall: ms(initialised - bootstrap.started()),
        init_cpu: cpu_ms(pid)?,
        ..Run::default()
    };
    if let Some(line) = init_line {
        // Logged before the first poll; an uninstrumented build logs nothing.
        let steps = tokio::time::timeout(Duration::from_millis(500), line).await;
        if let Ok(Ok(Some(steps))) = steps {
            run.steps = steps
                .split_whitespace()
                .filter_map(|s| s.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect();
        }
    }

    let before = cpu_ms(pid)?;
    let t = Instant::now();
    let response = bootstrap.invoke(events.next()).await?;
    run.first_wall = ms(t.elapsed());
    run.first_cpu = cpu_ms(pid)? - before;
    check(function, &response)?;

    let before = cpu_ms(pid)?;
    for _ in 0..warm {
        let event = events.next();
        let t = Instant::now();
        let response = bootstrap.invoke(event).await?;
        run.warm_wall.push(ms(t.elapsed()));
        check(function, &response)?;
    }
    run.warm_cpu = (cpu_ms(pid)? - before) / warm.max(1) as f64;
    run.peak_rss_mib = peak_rss_mib(pid)?;
    Ok(run)
}

/// Where init goes: the median of each step `main` timed, and the rest of init (exec, the async
/// runtime, the Lambda runtime client, the first poll), from the breakdown runs.
fn print_breakdown(subjects: &[Subject], breakdowns: &[Vec<Run>]) {
    println!();
    println!(
        "where init goes (median ms over breakdown runs; rest = init - the steps main timed):"
    );
    let mut names: Vec<String> = Vec::new();
    for run in breakdowns.iter().flatten() {
        for (name, _) in &run.steps {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    print!("{:<16} {:>8}", "function", "init");
    for name in &names {
        print!(" {name:>10}");
    }
    println!(" {:>8}", "rest");
    for (subject, runs) in subjects.iter().zip(breakdowns) {
        if runs.is_empty() {
            continue;
        }
        print!(
            "{:<16} {:>8.2}",
            subject.label,
            median(runs.iter().map(|r| r.init_wall).collect())
        );
        let timed = runs.iter().any(|r| !r.steps.is_empty());
        for name in &names {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.steps.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
                .collect();
            if values.is_empty() {
                print!(" {:>10}", "-");
            } else {
                print!(" {:>10.3}", median(values));
            }
        }
        if timed {
            let rest = runs
                .iter()
                .map(|r| r.init_wall - r.steps.iter().map(|(_, v)| v).sum::<f64>())
                .collect();
            println!(" {:>8.2}", median(rest));
        } else {
            println!(" {:>8}", "-");
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time of every live thread of `pid` (`/proc/<pid>/task/*/schedstat`, nanoseconds), in ms.
fn cpu_ms(pid: u32) -> anyhow::Result<f64> {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread may exit between listing and reading.
        if let Ok(text) = std::fs::read_to_string(&path) {
            total_ns += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total_ns as f64 / 1e6)
}

/// Peak resident memory of `pid` (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM in /proc/<pid>/status")?;
    Ok(kib / 1024.0)
}
