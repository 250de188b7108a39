//! Load and fault tests of the local stack: a model of random user histories ([`model`]), sent as
//! shuffled, partly duplicated deliveries the way Svix sends them ([`deliveries`], [`sender`]),
//! judged by a counting oracle that reads what the stack stored ([`oracle`]); [`faults`] puts a
//! fault-injecting proxy between the stack and the emulator.

pub mod deliveries;
pub mod faults;
pub mod harness;
pub mod model;
pub mod oracle;
pub mod report;
pub mod sender;

use std::time::{Duration, Instant};

use aws_config::SdkConfig;

use crate::model::{Model, Size};
use crate::oracle::{Oracle, Tables, Verdict};
use crate::report::Report;
use crate::sender::{Retry, Sender};

/// A stack to load: its webhook URL and signing secret, and where it stores what it applies.
pub struct Target {
    /// `http://127.0.0.1:port/webhooks/clerk`.
    pub webhook_url: String,
    pub secret: String,
    /// For reading the stack's tables and queues (directly, not through any fault proxy).
    pub sdk: SdkConfig,
    pub tables: Tables,
}

/// How hard to load it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub size: Size,
    pub concurrency: usize,
    pub retry: Retry,
    /// How long after the last 2xx the stack may take to converge before the run fails.
    pub converge_timeout: Duration,
}

/// One run's figures and the oracle's verdict.
pub struct Outcome {
    pub report: Report,
    pub verdict: Verdict,
    /// Deliveries answered 2xx.
    pub accepted: usize,
}

/// Sends a model's deliveries to `target` and waits until the oracle passes (or the timeout).
pub async fn run(target: &Target, options: &Options) -> anyhow::Result<Outcome> {
    let model = Model::generate(options.size);
    let deliveries = deliveries::plan(&model);
    let mut sender = Sender::new(
        target.webhook_url.clone(),
        target.secret.clone(),
        options.concurrency,
    );
    sender.retry = options.retry;
    let sent = sender.send_all(deliveries).await;
    let (verdict, converge) = converge(target, &model, options.converge_timeout).await?;
    Ok(Outcome {
        report: Report::new(&model, options.concurrency, &sent, converge, &verdict),
        accepted: sent.accepted,
        verdict,
    })
}

/// Polls until nothing is pending and the oracle passes; the verdict and how long it took.
pub async fn converge(
    target: &Target,
    model: &Model,
    timeout: Duration,
) -> anyhow::Result<(Verdict, Duration)> {
    let oracle = Oracle::new(&target.sdk, target.tables.clone());
    let started = Instant::now();
    loop {
        // Emulator calls can fail while a fault plan is still on: poll again.
        let pending = oracle.pending(model).await.unwrap_or(u64::MAX);
        if pending == 0 {
            let verdict = oracle.judge(model).await?;
            // Drained and judged: only a redelivery after a visibility timeout could still
            // change it, and the oracle counts in-flight messages as queued.
            if verdict.converged() || verdict.queued == 0 {
                return Ok((verdict, started.elapsed()));
            }
        }
        if started.elapsed() >= timeout {
            return Ok((oracle.judge(model).await?, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
