//! Tracing setup: JSON lines in Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), readable text elsewhere.

use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else if in_lambda {
        // CloudWatch stamps every line itself and shows no colours.
        builder.with_ansi(false).without_time().try_init()
    } else {
        use std::io::IsTerminal;
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
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

pub use crate::domain::dependency::error_chain;
