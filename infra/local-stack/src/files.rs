//! The files a running local stack leaves for other tools: `.local/lambda.env` (for the dev tool
//! and `cargo lambda watch`), `.local/stack-outputs.json` (as `sam list stack-outputs` prints) and
//! `.local/metrics.jsonl` (the functions' metrics documents).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clerk_sync::telemetry::metrics::Sink;
use devkit::resources::Resources;
use serde_json::json;

pub use devkit::resources::LOCAL_ENDPOINT_OUTPUT;

/// The folder of the running stack's files: `.local`, or `LOCAL_STATE_DIR` (relative to the
/// workspace) for a second stack or a test.
pub fn local_dir() -> PathBuf {
    let root = devkit::workspace_root();
    match std::env::var("LOCAL_STATE_DIR") {
        Ok(dir) if !dir.trim().is_empty() => root.join(dir),
        _ => root.join(".local"),
    }
}

/// Where the local stack records how to reach it, for the dev tool and `cargo lambda watch`.
pub fn env_file() -> PathBuf {
    local_dir().join("lambda.env")
}

/// Where `make local` appends the functions' metrics documents (EMF, one JSON line each), as
/// Lambda writes them to the function's log.
pub fn metrics_file() -> PathBuf {
    local_dir().join("metrics.jsonl")
}

/// A metrics sink appending each document as a line to `path`.
pub(crate) fn metrics_sink(path: &Path) -> anyhow::Result<Sink> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let file = std::sync::Mutex::new(file);
    Ok(std::sync::Arc::new(move |line: &str| {
        use std::io::Write;
        if let Ok(mut file) = file.lock() {
            let _ = writeln!(file, "{line}");
        }
    }))
}

/// Writes `env` as `KEY=VALUE` lines, as [`read_env_file`] reads them back.
pub(crate) fn write_env_file(
    path: &Path,
    env: &BTreeMap<&'static str, String>,
) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text: String = env
        .iter()
        // Single-quoted: values such as `metadata.role=admin` hold `=`; none holds `'`.
        .map(|(k, v)| format!("{k}='{v}'\n"))
        .collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
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
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.to_owned(), v.to_owned())
        })
        .collect())
}

/// The local counterparts of the SAM stack's outputs, under the template's output keys, plus
/// [`LOCAL_ENDPOINT_OUTPUT`] (the emulator), so a tool reading outputs works on either stack.
pub fn outputs(base_url: &str, r: &Resources, endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WebhookUrl", format!("{base_url}{}", webhook::ROUTE)),
        ("ApiBaseUrl", base_url.to_owned()),
        ("ApiHealthUrl", format!("{base_url}{}", api::HEALTH)),
        ("EventsQueueUrl", r.queue_url.clone()),
        ("DeadLetterQueueUrl", r.dead_letter_queue_url.clone()),
        ("DeadLetterQueueArn", r.dead_letter_queue_arn.clone()),
        ("UsersTableName", r.names.users_table.clone()),
        ("EventLogTableName", r.names.event_log_table.clone()),
        ("WebhookSecretArn", r.webhook_secret_id.clone()),
        ("ClerkSecretKeyArn", r.clerk_secret_key_id.clone()),
        (LOCAL_ENDPOINT_OUTPUT, endpoint.to_owned()),
    ]
}

/// Where the local stack writes its outputs, for `make smoke-local`.
pub fn outputs_file() -> PathBuf {
    local_dir().join("stack-outputs.json")
}

/// Writes `outputs` as `sam list stack-outputs --output json` prints a stack's.
pub(crate) fn write_outputs_file(
    path: &Path,
    outputs: Vec<(&'static str, String)>,
) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let outputs: Vec<_> = outputs
        .into_iter()
        .map(|(key, value)| json!({"OutputKey": key, "OutputValue": value}))
        .collect();
    std::fs::write(path, serde_json::to_string_pretty(&outputs)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}
