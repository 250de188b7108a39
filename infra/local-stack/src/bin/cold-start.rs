//! `cold-start`: measures each built `bootstrap` as Lambda runs it, to size memory and timeouts.
//!
//! Starts the local stack (emulator, resources, local Clerk), then for each function runs its
//! release `bootstrap` as a child process against a local Lambda Runtime API, `--runs` times:
//! initialisation (spawn until the first poll for an event), the first invocation, then
//! `--warm` more. CPU time comes from the kernel's per-thread scheduler accounting and peak memory
//! from `VmHWM`. Lambda gives a function CPU in proportion to its memory (one vCPU at 1,769 MB),
//! so the table also projects each figure at the usual sizes: wall + CPU × (1769 / MB − 1).
//! Network is local (no TLS to AWS), so deployed cold starts add a few handshakes on top.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use devkit::resources::Names;
use devkit::runtime_api::RuntimeApi;
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
}

#[derive(Clone, Copy, PartialEq)]
enum Function {
    Webhook,
    Sync,
    Api,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Sync => "sync",
            Self::Api => "api",
        }
    }
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
    })
    .await?;
    let clerk = stack.local_clerk.clone().context("the local Clerk runs")?;
    println!(
        "cold-start: {} runs x (init + 1 cold + {} warm) per function; bootstraps in {}",
        cli.runs,
        cli.warm,
        dir.display()
    );
    println!(
        "{:<8} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "function",
        "init ms",
        "init cpu",
        "1st inv ms",
        "1st cpu",
        "warm p50",
        "warm p99",
        "warm cpu",
        "peak MiB"
    );
    let mut summaries = Vec::new();
    for function in [Function::Webhook, Function::Sync, Function::Api] {
        let bootstrap = dir.join(function.name()).join("bootstrap");
        if !bootstrap.is_file() {
            bail!(
                "{} missing: build first (`cargo lambda build --release` or `make build`)",
                bootstrap.display()
            );
        }
        let mut runs = Vec::new();
        for run in 0..cli.runs {
            let mut events = Events {
                function,
                clerk: &clerk.keys,
                counter: run * 1000,
            };
            runs.push(measure(&stack, function, &bootstrap, &mut events, cli.warm).await?);
        }
        let s = Summary::of(&runs);
        println!(
            "{:<8} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>9.2} {:>9.2} {:>9.3} {:>9.1}",
            function.name(),
            s.init_wall,
            s.init_cpu,
            s.first_wall,
            s.first_cpu,
            s.warm_p50,
            s.warm_p99,
            s.warm_cpu,
            s.peak_rss_mib
        );
        summaries.push((function, s));
    }
    println!("(medians over runs; cpu = CPU time of the process; peak = max VmHWM)");
    println!();
    println!("projected at Lambda's CPU share (wall + cpu x (1769/MB - 1)), ms:");
    println!(
        "{:<8} {:>6} {:>22} {:>12}",
        "function", "MB", "cold (init + 1st inv)", "warm p50"
    );
    for (function, s) in &summaries {
        for mb in SIZES_MB {
            let factor = (ONE_VCPU_MB / f64::from(mb) - 1.0).max(0.0);
            let cold = s.init_wall + s.first_wall + (s.init_cpu + s.first_cpu) * factor;
            let warm = s.warm_p50 + s.warm_cpu * factor;
            println!(
                "{:<8} {:>6} {:>22.0} {:>12.1}",
                function.name(),
                mb,
                cold,
                warm
            );
        }
    }
    stack.stop().await;
    Ok(())
}

/// Medians over runs (peak memory: the maximum).
struct Summary {
    init_wall: f64,
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
                            event["data"]["id"] = json!(format!("user_cold_{}_{i}", self.counter));
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

async fn measure(
    stack: &Stack,
    function: Function,
    bootstrap: &Path,
    events: &mut Events<'_>,
    warm: usize,
) -> anyhow::Result<Run> {
    let runtime = RuntimeApi::start(function.name()).await?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .env_clear()
        .envs(stack.lambda_env())
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", function.name())
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", function.name()),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bootstrap.display()))?;
    let pid = child.id().context("the child has a pid")?;

    let initialised = tokio::select! {
        at = runtime.initialised() => at,
        status = child.wait() => bail!("{} exited during init: {status:?}", function.name()),
        _ = tokio::time::sleep(Duration::from_secs(10)) => bail!("{} did not poll within 10 s", function.name()),
    };
    let mut run = Run {
        init_wall: ms(initialised - started),
        init_cpu: cpu_ms(pid)?,
        ..Run::default()
    };

    let before = cpu_ms(pid)?;
    let t = Instant::now();
    let response = runtime.invoke(events.next()).await?;
    run.first_wall = ms(t.elapsed());
    run.first_cpu = cpu_ms(pid)? - before;
    check(function, &response)?;

    let before = cpu_ms(pid)?;
    for _ in 0..warm {
        let event = events.next();
        let t = Instant::now();
        let response = runtime.invoke(event).await?;
        run.warm_wall.push(ms(t.elapsed()));
        check(function, &response)?;
    }
    run.warm_cpu = (cpu_ms(pid)? - before) / warm.max(1) as f64;
    run.peak_rss_mib = peak_rss_mib(pid)?;
    child.kill().await?;
    Ok(run)
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
