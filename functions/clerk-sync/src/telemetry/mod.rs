//! Logs and metrics. Logs: JSON lines on stderr in Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), each
//! carrying the fields of every span it was written in (the invocation's request ids, the svix
//! id, the SQS message id) at the top level; readable text elsewhere. Metrics: one CloudWatch
//! Embedded Metric Format document per invocation on stdout ([`metrics`]).

pub mod correlation;
pub mod metrics;

use std::io;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use crate::domain::dependency::error_chain;

/// Installs the global subscriber. The level comes from `RUST_LOG`, else Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init() {
    let level = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let filter = level("RUST_LOG")
        .or_else(|| level("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(json_layer(io::stderr))
            .try_init();
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(io::stderr);
    let _ = if in_lambda {
        // CloudWatch stamps every line itself and shows no colours.
        builder.with_ansi(false).without_time().try_init()
    } else {
        use std::io::IsTerminal;
        builder.with_ansi(io::stderr().is_terminal()).try_init()
    };
}

/// The JSON log line format: `timestamp`, `level`, `target`, the event's fields (`message` and
/// the rest), then the fields of every span the event is in, innermost winning, all at the top
/// level, so Logs Insights filters on `requestId` or `svix_id` directly. Span field names
/// ([`correlation`]) are never used as event field names.
pub fn json_layer<S, W>(writer: W) -> json_subscriber::JsonLayer<S, W>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    let mut layer = json_subscriber::JsonLayer::new(writer);
    layer
        .with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
        .with_level("level")
        .with_target("target")
        .with_flattened_event()
        .with_top_level_flattened_span_list();
    layer
}

/// For tests: silent unless `TEST_LOG` is set, then human-readable at its level (default debug).
pub fn init_for_tests() {
    if let Ok(level) = std::env::var("TEST_LOG") {
        let level = if level.is_empty() || level == "1" {
            "debug".to_owned()
        } else {
            level
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(level))
            .with_test_writer()
            .try_init();
    }
}

/// The target of the one event [`InitSteps::finish`] logs: `RUST_LOG=warn,clerk_sync::init=debug`
/// shows where a cold start's initialisation goes (what `make cold-start` breaks init down by).
pub const INIT_TARGET: &str = "clerk_sync::init";

/// How long each step of `main`'s initialisation took. Costs a clock read per step; the one debug
/// event is formatted only when its target is enabled.
pub struct InitSteps {
    last: std::time::Instant,
    steps: Vec<(&'static str, std::time::Duration)>,
}

impl InitSteps {
    /// Starts timing: call first thing in `main`.
    pub fn start() -> Self {
        Self {
            last: std::time::Instant::now(),
            steps: Vec::with_capacity(6),
        }
    }

    /// Ends the step `name` (the time since the previous step ended).
    pub fn step(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.steps.push((name, now - self.last));
        self.last = now;
    }

    /// Logs the steps as `steps = "telemetry=0.041 config=0.006 …"` (milliseconds).
    pub fn finish(self) {
        tracing::debug!(target: INIT_TARGET, steps = %self, "initialised");
    }
}

impl std::fmt::Display for InitSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, took)) in self.steps.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name}={:.3}", took.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}
