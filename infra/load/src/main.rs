//! `load`: starts a local stack (its own emulator and resources), sends it a model's deliveries
//! the way Svix does, waits for it to converge, and prints the figures and the oracle's verdict.
//! Exits 1 unless nothing was lost, extra or wrong.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use load::Options;
use load::faults::Plan;
use load::harness::{Harness, Setup};
use load::model::Size;
use load::report::{Cpu, cpu_seconds};

#[derive(Parser)]
#[command(
    about = "Load the local stack with signed, shuffled, partly duplicated deliveries and check that nothing is lost",
    after_help = "Example (the full size):\n  load --users 500 --deliveries 5000 --concurrency 32\n\nExit codes: 0 converged with zero loss, 1 it did not (or the run failed), 2 bad usage."
)]
struct Args {
    #[arg(long, default_value_t = Size::FULL.users)]
    users: usize,
    /// Deliveries in all, duplicates included.
    #[arg(long, default_value_t = Size::FULL.deliveries)]
    deliveries: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Per cent of deliveries that redeliver an event.
    #[arg(long, default_value_t = Size::FULL.duplicate_percent)]
    duplicates: u32,
    #[arg(long, default_value_t = Size::FULL.seed)]
    seed: u64,
    /// Seconds the stack may take to converge after the last 2xx.
    #[arg(long, default_value_t = 600)]
    converge_timeout: u64,
    /// Concurrent sync invocations (the template's SyncMaxConcurrency; 5).
    #[arg(long)]
    sync_concurrency: Option<usize>,
    /// Put a fault proxy between the stack and the emulator: 5 % throttling, 2 % 5xx, 2 % resets
    /// before and 2 % after forwarding, for DynamoDB and SQS, and a full outage window.
    #[arg(long)]
    faults: bool,
    /// With --faults: the outage's length, from 10 s into the run.
    #[arg(long, default_value_t = 10)]
    outage_seconds: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let size = Size {
        users: args.users,
        deliveries: args.deliveries,
        duplicate_percent: args.duplicates,
        seed: args.seed,
        ..Size::FULL
    };
    eprintln!(
        "load: starting a local stack, then {} deliveries for {} users at concurrency {}",
        size.deliveries, size.users, args.concurrency
    );
    let harness = Harness::start(Setup {
        sync_pollers: args.sync_concurrency,
        faults: args.faults,
        // A message failed by a fault is retried after this, as Lambda would after the
        // template's 180 s: shorter, so that a fault run converges in minutes.
        visibility_timeout_seconds: args.faults.then_some(10),
        seed: args.seed,
    })
    .await?;
    if let Some(proxy) = &harness.proxy {
        proxy.set_plan(Plan::mixed());
    }
    let mut processes = vec![("local stack and load".to_owned(), std::process::id())];
    processes.extend(
        harness
            .emulator_pids()
            .into_iter()
            .map(|(role, pid)| (format!("emulator ({role})"), pid)),
    );
    let before: Vec<f64> = processes
        .iter()
        .map(|(_, pid)| cpu_seconds(*pid).unwrap_or(0.0))
        .collect();
    let options = Options {
        size,
        concurrency: args.concurrency,
        retry: Default::default(),
        converge_timeout: Duration::from_secs(args.converge_timeout),
    };
    let outage = async {
        if let Some(proxy) = &harness.proxy {
            tokio::time::sleep(Duration::from_secs(10)).await;
            eprintln!("load: outage for {} s", args.outage_seconds);
            proxy.set_plan(Plan {
                outage: true,
                ..Plan::default()
            });
            tokio::time::sleep(Duration::from_secs(args.outage_seconds)).await;
            proxy.set_plan(Plan::mixed());
            eprintln!("load: outage over");
        }
    };
    let (outcome, ()) = tokio::join!(load::run(&harness.target, &options), outage);
    let outcome = outcome?;
    let mut report = outcome.report;
    let mut queued_as_answered = true;
    if let Some(proxy) = &harness.proxy {
        proxy.set_plan(Plan::default());
        report.faults = proxy.injected().into_iter().collect();
        let sends = proxy.sends_answered_ok();
        report.sends_answered_ok = Some(sends);
        queued_as_answered = sends == outcome.accepted as u64;
        if !queued_as_answered {
            eprintln!(
                "load: {} deliveries answered 2xx but {sends} SendMessage calls answered OK",
                outcome.accepted
            );
        }
    }
    report.cpu = processes
        .iter()
        .zip(before)
        .map(|((name, pid), before)| Cpu {
            process: name.clone(),
            seconds: cpu_seconds(*pid).unwrap_or(before) - before,
        })
        .collect();
    println!("{report}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    harness.stop().await;
    if !outcome.verdict.converged() || !queued_as_answered {
        eprintln!("load: did NOT converge: {}", outcome.verdict);
        std::process::exit(1);
    }
    Ok(())
}
