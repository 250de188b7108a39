//! `smoke`: checks a running stack, deployed or local, from its outputs.
//!
//! Reads the stack's outputs as `sam list stack-outputs --output json` prints them (the local
//! stack writes the same file to `.local/stack-outputs.json`) and checks, in order:
//! 1. `GET /health` answers 200 with every dependency `ok`;
//! 2. `GET /v1/users/me` without a token answers 401 with `WWW-Authenticate`;
//! 3. with a session token (`SMOKE_TOKEN`, or pasted when asked), `GET /v1/users/me` answers 200
//!    with the token's user;
//! 4. with `--check-forgery`, a webhook signed with a made-up secret is refused 401 (off by
//!    default: on a quiet stack one 401 can trip the webhook 4xx-rate alarm);
//! 5. a webhook signed with the stack's secret is queued (202), and the sync function records its
//!    outcome in the event log within `--wait-seconds`.
//!
//! The round trip sends `user.deleted` for [`SMOKE_USER_ID`], a user Clerk cannot have. It leaves
//! one tombstone (no personal data) in the users table and one event-log record that expires with
//! the others. It needs `secretsmanager:GetSecretValue` on the webhook secret (or `--webhook-secret`)
//! and `dynamodb:GetItem` plus `kms:Decrypt` on the event log, as a deployer has. Exits 1 when a
//! check fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use clap::Parser;
use clerk_sync::adapters::dynamodb::event_log;
use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::outcome::Outcome;
use clerk_sync::domain::webhook::signing_secrets;
use clerk_sync::telemetry::error_chain;
use devkit::resources::MAX_RECEIVE_COUNT;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The user the round trip deletes: not a Clerk id (those are `user_` and 27 base62 characters).
const SMOKE_USER_ID: &str = "user_smoketest";
/// Bound on each HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "Smoke-test a deployed (or the local) stack from its outputs")]
struct Cli {
    /// The stack's outputs: `sam list stack-outputs --stack-name S --output json > FILE`.
    #[arg(long)]
    outputs: PathBuf,
    /// A Clerk session token of a user of this instance, for `GET /v1/users/me` (lives 60 s).
    /// Without it, an interactive run asks for one once everything is built.
    #[arg(long, env = "SMOKE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The webhook signing secret (`whsec_…`); read from `WebhookSecretArn` when absent.
    #[arg(long, env = "SMOKE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Also check that a webhook with a forged signature is refused. Each run adds one 401, which
    /// on a stack with little traffic can trip the webhook 4xx-rate alarm.
    #[arg(long)]
    check_forgery: bool,
    /// How long the round trip waits for the sync function's event-log record.
    #[arg(long, default_value_t = 60)]
    wait_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("smoke: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A stack's outputs by key.
struct Outputs {
    values: BTreeMap<String, String>,
    file: PathBuf,
}

impl Outputs {
    fn read(file: PathBuf) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading the outputs file {}", file.display()))?;
        let list: Vec<Value> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected a JSON array of {{OutputKey, OutputValue}}",
                file.display()
            )
        })?;
        let values = list
            .iter()
            .filter_map(|o| Some((o["OutputKey"].as_str()?, o["OutputValue"].as_str()?)))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self { values, file })
    }

    fn get(&self, key: &str) -> anyhow::Result<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("output {key} is missing from {}", self.file.display()))
    }
}

/// What one check found.
enum Verdict {
    Pass(String),
    Skip(String),
    Fail(String),
}

async fn run(cli: &Cli) -> anyhow::Result<bool> {
    let outputs = Outputs::read(cli.outputs.clone())?;
    let api = outputs.get("ApiBaseUrl")?.trim_end_matches('/').to_owned();
    let sdk = sdk_config(&outputs).await?;
    let http = devkit::http_client();
    println!("smoke test of {api} (outputs {})", outputs.file.display());

    let token = match cli.token.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Some(t.to_owned()),
        _ => ask_for_token()?,
    };
    let mut verdicts = vec![
        ("health", health(&http, outputs.get("ApiHealthUrl")?).await),
        ("auth required", anonymous_me(&http, &api).await),
        ("users/me", me(&http, &api, token.as_deref()).await),
    ];
    if cli.check_forgery {
        let verdict = forged_webhook(&http, outputs.get("WebhookUrl")?).await;
        verdicts.push(("forged webhook refused", verdict));
    }
    let round_trip = match webhook_secret(cli, &outputs, &sdk).await {
        Ok(secret) => round_trip(&http, &sdk, &outputs, &secret, cli.wait_seconds).await,
        Err(e) => Verdict::Fail(format!("no signing secret: {e:#}")),
    };
    verdicts.push(("webhook round trip", round_trip));

    let (mut failed, mut skipped) = (0, 0);
    for (name, verdict) in &verdicts {
        let (tag, detail) = match verdict {
            Verdict::Pass(d) => ("ok  ", d),
            Verdict::Skip(d) => {
                skipped += 1;
                ("skip", d)
            }
            Verdict::Fail(d) => {
                failed += 1;
                ("FAIL", d)
            }
        };
        println!("  {tag}  {name:<24} {detail}");
    }
    let total = verdicts.len();
    if failed == 0 {
        println!(
            "passed: {} of {total} checks ({skipped} skipped)",
            total - skipped
        );
    } else {
        println!("FAILED: {failed} of {total} checks");
    }
    Ok(failed == 0)
}

/// Asks for a session token when run interactively: tokens live 60 s, so one pasted now is
/// fresher than one exported before a build. Empty input skips the check.
fn ask_for_token() -> anyhow::Result<Option<String>> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    print!("session token for GET /v1/users/me (Enter to skip): ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let token = line.trim();
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

/// The AWS configuration for the stack's resources: the emulator for a local stack, else the
/// default credential chain in the stack's region (read from the secret's ARN).
async fn sdk_config(outputs: &Outputs) -> anyhow::Result<aws_config::SdkConfig> {
    if let Ok(endpoint) = outputs.get(devkit::resources::LOCAL_ENDPOINT_OUTPUT) {
        return Ok(devkit::emulator::sdk_config_for(endpoint).await);
    }
    let arn = outputs.get("WebhookSecretArn")?;
    let region = arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| anyhow!("WebhookSecretArn {arn} is not an ARN"))?;
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await)
}

fn millis(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

async fn health(http: &reqwest::Client, url: &str) -> Verdict {
    let started = Instant::now();
    let (status, body) = match get_json(http, url, None).await {
        Ok(r) => r,
        Err(e) => return Verdict::Fail(e),
    };
    let ms = millis(started);
    let checks: Vec<String> = body["checks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, c)| format!("{name} {} ({} ms)", c["status"], c["latency_ms"]))
        .collect();
    let checks = checks.join(", ").replace('"', "");
    if status == StatusCode::OK && body["status"] == "ok" {
        Verdict::Pass(format!("{} in {ms} ms: {checks}", status.as_u16()))
    } else {
        Verdict::Fail(format!(
            "{} in {ms} ms, failing {}: {checks}",
            status.as_u16(),
            body["failing"]
        ))
    }
}

async fn anonymous_me(http: &reqwest::Client, api: &str) -> Verdict {
    let started = Instant::now();
    let response = match send(http.get(format!("{api}/v1/users/me"))).await {
        Ok(r) => r,
        Err(e) => return Verdict::Fail(e),
    };
    let ms = millis(started);
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (response.status(), challenge) {
        (StatusCode::UNAUTHORIZED, Some(challenge)) => {
            Verdict::Pass(format!("401 without a token in {ms} ms ({challenge})"))
        }
        (status, challenge) => Verdict::Fail(format!(
            "expected 401 with WWW-Authenticate, got {} (WWW-Authenticate: {challenge:?})",
            status.as_u16()
        )),
    }
}

async fn me(http: &reqwest::Client, api: &str, token: Option<&str>) -> Verdict {
    let Some(token) = token else {
        return Verdict::Skip("no session token (SMOKE_TOKEN)".to_owned());
    };
    let Some(sub) = token_subject(token) else {
        return Verdict::Fail("the token is not a JWT with a `sub` claim".to_owned());
    };
    let started = Instant::now();
    let (status, body) = match get_json(http, &format!("{api}/v1/users/me"), Some(token)).await {
        Ok(r) => r,
        Err(e) => return Verdict::Fail(e),
    };
    let ms = millis(started);
    if status == StatusCode::OK && body["id"] == sub.as_str() {
        Verdict::Pass(format!("200 in {ms} ms: {sub}"))
    } else {
        // Only the error code: a body could be someone's record, and this output lands in logs.
        Verdict::Fail(format!(
            "expected 200 for {sub}, got {} {}",
            status.as_u16(),
            body["error"]["code"].as_str().unwrap_or("")
        ))
    }
}

/// The token's `sub`, read without verifying it (the API verifies).
fn token_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

/// A `user.deleted` for the smoke user, as Clerk would send it now.
fn smoke_event() -> String {
    let now_ms = std::time::UNIX_EPOCH
        .elapsed()
        .expect("clock after 1970")
        .as_millis() as i64;
    json!({
        "data": {"object": "user", "id": SMOKE_USER_ID, "deleted": true},
        "object": "event",
        "type": "user.deleted",
        "timestamp": now_ms,
        "instance_id": "smoke-test",
    })
    .to_string()
}

fn smoke_svix_id() -> String {
    let nanos = std::time::UNIX_EPOCH
        .elapsed()
        .expect("clock after 1970")
        .as_nanos();
    format!("msg_smoke{nanos:x}")
}

async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    svix_id: &str,
) -> Result<(StatusCode, Value), String> {
    let body = smoke_event();
    let headers = devkit::signing::sign(secret, svix_id, devkit::signing::now(), &body);
    let response = send(http.post(url).headers(headers).body(body)).await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn forged_webhook(http: &reqwest::Client, url: &str) -> Verdict {
    // A well-formed secret that no stack has.
    let forged = "whsec_c21va2UtdGVzdC1mb3JnZWQtbm90LXRoZS1zdGFja3M=";
    let started = Instant::now();
    match post_signed(http, url, forged, &smoke_svix_id()).await {
        Ok((StatusCode::UNAUTHORIZED, body)) => Verdict::Pass(format!(
            "401 {} in {} ms",
            body["error"]["code"].as_str().unwrap_or("?"),
            millis(started)
        )),
        Ok((status, body)) => {
            Verdict::Fail(format!("expected 401, got {}: {body}", status.as_u16()))
        }
        Err(e) => Verdict::Fail(e),
    }
}

/// The secret to sign with: `--webhook-secret`, else the first in the stack's secret.
async fn webhook_secret(
    cli: &Cli,
    outputs: &Outputs,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<String> {
    let value = match &cli.webhook_secret {
        Some(s) => s.clone(),
        None => {
            let arn = outputs.get("WebhookSecretArn")?;
            aws_sdk_secretsmanager::Client::new(sdk)
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .with_context(|| format!("reading {arn} (or pass --webhook-secret)"))?
                .secret_string
                .ok_or_else(|| anyhow!("{arn} holds no string"))?
        }
    };
    let first = signing_secrets(&value)?
        .into_iter()
        .next()
        .map(|s| s.into_owned());
    match first {
        Some(s) if s.starts_with("whsec_") => Ok(s),
        _ => bail!("the secret is not a whsec_ signing secret (still the deploy placeholder?)"),
    }
}

async fn round_trip(
    http: &reqwest::Client,
    sdk: &aws_config::SdkConfig,
    outputs: &Outputs,
    secret: &str,
    wait_seconds: u64,
) -> Verdict {
    let (url, table) = match (outputs.get("WebhookUrl"), outputs.get("EventLogTableName")) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => return Verdict::Fail(e.to_string()),
    };
    let svix_id = smoke_svix_id();
    let started = Instant::now();
    match post_signed(http, url, secret, &svix_id).await {
        Ok((StatusCode::ACCEPTED, body)) if body["id"] == svix_id.as_str() => {}
        Ok((StatusCode::OK, body)) if body["status"] == "ignored" => {
            return Verdict::Fail(
                "200 ignored: user.deleted is not in the stack's SyncedEventTypes".to_owned(),
            );
        }
        Ok((status, body)) => {
            return Verdict::Fail(format!(
                "expected 202 queued, got {}: {body}",
                status.as_u16()
            ));
        }
        Err(e) => return Verdict::Fail(e),
    }
    let queued_ms = millis(started);
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let deadline = started + Duration::from_secs(wait_seconds);
    loop {
        match logged(&dynamodb, table, &svix_id).await {
            Ok(Some(record)) if record.outcome != Outcome::Failed => {
                return Verdict::Pass(format!(
                    "202 queued in {queued_ms} ms; event log: {} after {} ms",
                    record.outcome.as_str(),
                    millis(started)
                ));
            }
            Ok(Some(record))
                if record.attempts >= MAX_RECEIVE_COUNT || Instant::now() >= deadline =>
            {
                return Verdict::Fail(format!(
                    "the sync function failed it (attempt {} of {MAX_RECEIVE_COUNT}): {}",
                    record.attempts,
                    record.reason.unwrap_or_default()
                ));
            }
            Ok(Some(_)) => {
                // Failed, but SQS will deliver it again: wait for a later attempt's outcome.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(None) => {
                return Verdict::Fail(format!(
                    "queued {svix_id}, but the event log had no record of it after {wait_seconds} s \
                     (is the sync function's event source mapping enabled?)"
                ));
            }
            Err(e) => return Verdict::Fail(format!("reading the event log {table}: {e:#}")),
        }
    }
}

async fn logged(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    svix_id: &str,
) -> anyhow::Result<Option<LogRecord>> {
    let item = dynamodb
        .get_item()
        .table_name(table)
        .key(event_log::SVIX_ID, AttributeValue::S(svix_id.to_owned()))
        .consistent_read(true)
        .send()
        .await?
        .item;
    Ok(item.map(serde_dynamo::from_item).transpose()?)
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    request
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        // reqwest's message names only the URL; the cause (refused, untrusted certificate, timeout)
        // is further down the chain.
        .map_err(|e| format!("request failed: {}", error_chain(&e)))
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<(StatusCode, Value), String> {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = send(request).await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}
