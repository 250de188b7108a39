//! `devtool`: signs Clerk fixtures and posts them to the local gateway, builds API Gateway
//! and SQS events for `cargo lambda invoke`, and shows the local queues, users and event log.
//!
//! A command-line tool first: every failure is one `devtool: …` line on stderr and a non-zero
//! exit (never a panic or a backtrace, whatever `RUST_BACKTRACE` says); a closed stdout
//! (`make queue | head -1`) ends it quietly; an HTTP answer other than 2xx exits 1.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use clap::{Parser, Subcommand};
use clerk_sync::adapters::svix::WebhookKeys;
use clerk_sync::domain::list_items;
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};

/// The fixture user of `tests/fixtures/clerk`.
const FIXTURE_USER: &str = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";

#[derive(Parser)]
#[command(
    version,
    about = "Development helpers for the local stack (`make local`)",
    after_help = "Examples:\n  devtool post user.created\n  devtool get /v1/users/me\n  devtool events --user user_35kQ7zvT0cWnHq1d2xXy9RbLmAa\n\nExit codes: 0 done, 1 failed (or the gateway answered other than 2xx), 2 bad usage."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a webhook fixture now and POST it to the local gateway.
    #[command(
        after_help = "Example:\n  devtool post user.updated\n  devtool post ./my-event.json --secret whsec_…"
    )]
    Post {
        #[command(flatten)]
        webhook: Webhook,
        /// Gateway base URL; defaults to the running local stack's.
        #[arg(long)]
        url: Option<String>,
    },
    /// Print a freshly signed API Gateway v2 event for `cargo lambda invoke --data-file`.
    #[command(after_help = "Example:\n  devtool event user.created > event.json")]
    Event {
        #[command(flatten)]
        webhook: Webhook,
    },
    /// Show the events queue and dead-letter queue of the running local stack.
    #[command(
        after_help = "Example:\n  devtool queue\n  devtool queue --take   # with LOCAL_SYNC=off"
    )]
    Queue {
        /// Receive, print and delete the messages on the events queue.
        #[arg(long)]
        take: bool,
    },
    /// Print an SQS event (as Lambda receives it), for `cargo lambda invoke`.
    #[command(
        after_help = "Examples:\n  devtool sqs-event user.created user.updated\n  devtool sqs-event --from-queue   # what `make local` with LOCAL_SYNC=off has queued"
    )]
    SqsEvent {
        /// Fixture names or paths; each becomes one message with a fresh svix id.
        #[arg(required_unless_present = "from_queue", conflicts_with = "from_queue")]
        fixtures: Vec<String>,
        /// Take the messages waiting on the running stack's events queue instead (they are
        /// removed from the queue: the event carries them now).
        #[arg(long)]
        from_queue: bool,
    },
    /// Print a session token for a user, signed by the running local Clerk (valid 60 s).
    #[command(after_help = "Example:\n  devtool token user_35kQ7zvT0cWnHq1d2xXy9RbLmAa --admin")]
    Token {
        /// The user id (`sub`).
        #[arg(default_value = FIXTURE_USER)]
        user: String,
        /// Add the admin claim (`metadata.role = admin`).
        #[arg(long)]
        admin: bool,
    },
    /// GET a path on the local gateway; exits 1 unless the answer is 2xx.
    #[command(
        after_help = "Examples:\n  devtool get /v1/users/me\n  devtool get /health --anonymous\n  devtool get /v1/users/me --token \"$SESSION_TOKEN\"   # a real Clerk session token"
    )]
    Get {
        #[command(flatten)]
        request: ApiRequest,
        /// Send no token.
        #[arg(long, conflicts_with = "token")]
        anonymous: bool,
        /// Gateway base URL; defaults to the running local stack's.
        #[arg(long)]
        url: Option<String>,
    },
    /// Print an API Gateway v2 event for GET `path` with a token, for `cargo lambda invoke`.
    #[command(after_help = "Example:\n  devtool api-event /v1/users/me > api-event.json")]
    ApiEvent {
        #[command(flatten)]
        request: ApiRequest,
    },
    /// Print a user's item in the local users table, as stored.
    #[command(after_help = "Example:\n  devtool user user_35kQ7zvT0cWnHq1d2xXy9RbLmAa")]
    User {
        /// The user id.
        id: String,
    },
    /// Empty the running stack's users table, event log, events queue and dead-letter queue.
    #[command(
        after_help = "Example:\n  devtool reset   # then `make me` lazily syncs the fixture user again"
    )]
    Reset,
    /// Print the event log in processing order (only one user's events with --user).
    #[command(after_help = "Example:\n  devtool events --user user_35kQ7zvT0cWnHq1d2xXy9RbLmAa")]
    Events {
        /// Only this user's events (the `by_user` index).
        #[arg(long)]
        user: Option<String>,
    },
}

/// A fixture to sign, and the secret to sign it with.
#[derive(clap::Args)]
struct Webhook {
    /// A fixture name (`user.created`, from tests/fixtures/clerk) or a path to a JSON file.
    fixture: String,
    /// Signing secret (`whsec_…`); defaults to the one the running stack stores, else the first
    /// of CLERK_WEBHOOK_SECRET, else the local development secret.
    #[arg(long)]
    secret: Option<String>,
}

/// A GET on the api: the path, and the token to send.
#[derive(clap::Args)]
struct ApiRequest {
    /// The path, e.g. /v1/users/me, /v1/users/{id}, /health.
    #[arg(default_value = "/v1/users/me")]
    path: String,
    /// Whose token the local Clerk signs.
    #[arg(long = "as", default_value = FIXTURE_USER)]
    user: String,
    /// Add the admin claim to the local token.
    #[arg(long)]
    admin: bool,
    /// Send this token instead of one from the local Clerk (e.g. a real Clerk session token).
    #[arg(long)]
    token: Option<String>,
}

/// A failure that already said what it had to: exit with `code`, print nothing more.
#[derive(Debug)]
struct Exit(u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Writes a line on stdout; a closed stdout is an error like any other (no panic).
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).context("writing to stdout")?
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("devtool: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            let broken_pipe = e.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                // The reader (`head`) has what it wanted.
                return ExitCode::from(141);
            }
            // `{:#}`: the cause chain on one line; never the backtrace.
            eprintln!("devtool: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Post { webhook, url } => post(&webhook, url).await,
        Command::Event { webhook } => {
            let body = read_fixture(&webhook.fixture)?;
            let headers = sign_now(&signing_secret(webhook.secret).await?, &body);
            let event =
                devkit::apigw::request_event("POST", webhook::ROUTE, &headers, body.as_bytes());
            out!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
        Command::Queue { take } => queue(take).await,
        Command::SqsEvent {
            fixtures,
            from_queue,
        } => sqs_event(&fixtures, from_queue).await,
        Command::Token { user, admin } => {
            out!("{}", token(&user, admin)?);
            Ok(())
        }
        Command::Get {
            request,
            anonymous,
            url,
        } => get(&request, anonymous, url).await,
        Command::ApiEvent { request } => {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(&format!("Bearer {}", request_token(&request)?))
                    .context("the token is not a valid header value")?,
            );
            let event = devkit::apigw::request_event("GET", &request.path, &headers, b"");
            out!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
        Command::User { id } => user(&id).await,
        Command::Events { user } => events(user).await,
        Command::Reset => reset().await,
    }
}

/// Deletes every item of the two tables and every message of the two queues.
async fn reset() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = StackEnv::read()?;
    let sdk = env.sdk().await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for (table, key) in [("USERS_TABLE", "id"), ("EVENT_LOG_TABLE", "svix_id")] {
        let table = env.get(table)?;
        let items: Vec<_> = dynamodb
            .scan()
            .table_name(&table)
            .projection_expression("#k")
            .expression_attribute_names("#k", key)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .context(STACK_DOWN)?;
        for item in &items {
            let Some(AttributeValue::S(value)) = item.get(key) else {
                continue;
            };
            dynamodb
                .delete_item()
                .table_name(&table)
                .key(key, AttributeValue::S(value.clone()))
                .send()
                .await?;
        }
        out!("{table:<40} {} item(s) deleted", items.len());
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for queue in ["EVENTS_QUEUE_URL", "EVENTS_DLQ_URL"] {
        let url = env.get(queue)?;
        let taken = devkit::sqs_event::take_all(&sqs, &url, |_| {}).await?;
        out!("{url:<40} {taken} message(s) deleted");
    }
    Ok(())
}

/// The running stack's env file value `key`, and an SDK configuration for its emulator.
struct StackEnv(BTreeMap<String, String>);

impl StackEnv {
    fn read() -> anyhow::Result<Self> {
        Ok(Self(local_stack::read_env_file()?))
    }

    fn get(&self, key: &str) -> anyhow::Result<String> {
        self.0
            .get(key)
            .cloned()
            .with_context(|| format!("{key} missing from the stack's env file"))
    }

    async fn sdk(&self) -> anyhow::Result<aws_config::SdkConfig> {
        Ok(devkit::emulator::sdk_config_for(&self.get("AWS_ENDPOINT_URL")?).await)
    }
}

/// What an emulator call failing most likely means.
const STACK_DOWN: &str = "is the local stack running? `make local`";

/// A session token for `user` from the running local Clerk's key.
fn token(user: &str, admin: bool) -> anyhow::Result<String> {
    let keys = local_stack::clerk::read_key_file()?;
    let mut claims = keys.claims(user);
    if admin {
        claims["metadata"] = serde_json::json!({"role": "admin"});
    }
    Ok(keys.sign(&claims))
}

/// The token a request sends: the one given, else one from the local Clerk.
fn request_token(request: &ApiRequest) -> anyhow::Result<String> {
    match &request.token {
        Some(token) => Ok(token.trim().trim_start_matches("Bearer ").to_owned()),
        None => token(&request.user, request.admin),
    }
}

fn gateway_url() -> String {
    stack_env().remove("LOCAL_GATEWAY_URL").unwrap_or_else(|| {
        format!(
            "http://127.0.0.1:{}",
            std::env::var("LOCAL_PORT").unwrap_or_else(|_| "3000".into())
        )
    })
}

async fn get(api: &ApiRequest, anonymous: bool, url: Option<String>) -> anyhow::Result<()> {
    let base = url.unwrap_or_else(gateway_url);
    let target = format!("{}{}", base.trim_end_matches('/'), api.path);
    let mut request = devkit::http_client().get(&target);
    if !anonymous {
        request = request.bearer_auth(request_token(api)?);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("GET {target} ({STACK_DOWN})"))?;
    let status = response.status();
    out!("GET {target} -> {status}");
    let text = response.text().await?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => out!("{}", serde_json::to_string_pretty(&json)?),
        Err(_) => out!("{text}"),
    }
    if !status.is_success() {
        return Err(Exit(1).into());
    }
    Ok(())
}

async fn user(id: &str) -> anyhow::Result<()> {
    let env = StackEnv::read()?;
    let item = aws_sdk_dynamodb::Client::new(&env.sdk().await?)
        .get_item()
        .table_name(env.get("USERS_TABLE")?)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .context(STACK_DOWN)?
        .item;
    let Some(item) = item else {
        eprintln!("devtool: no user {id} in the users table");
        return Err(Exit(1).into());
    };
    let json: serde_json::Value = serde_dynamo::from_item(item)?;
    out!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// Unix milliseconds as an RFC 3339 UTC time (`2026-12-02T13:37:30.123Z`).
fn readable(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

async fn events(user: Option<String>) -> anyhow::Result<()> {
    use clerk_sync::adapters::dynamodb::event_log;
    use clerk_sync::domain::event_log::LogRecord;
    let env = StackEnv::read()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&env.sdk().await?);
    let table = env.get("EVENT_LOG_TABLE")?;
    let items = match &user {
        Some(id) => dynamodb
            .query()
            .table_name(&table)
            .index_name(event_log::BY_USER_INDEX)
            .key_condition_expression("#u = :u")
            .expression_attribute_names("#u", event_log::USER_ID)
            .expression_attribute_values(
                ":u",
                aws_sdk_dynamodb::types::AttributeValue::S(id.clone()),
            )
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .context(STACK_DOWN)?,
        None => dynamodb
            .scan()
            .table_name(&table)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .context(STACK_DOWN)?,
    };
    let mut records: Vec<LogRecord> = serde_dynamo::from_items(items)?;
    records.sort_by_key(|r| r.processed_at);
    out!(
        "{:<24} {:<28} {:<14} {:<32} {:<9} {:>8}  reason",
        "processed_at (UTC)",
        "svix_id",
        "event_type",
        "user_id",
        "outcome",
        "attempts"
    );
    for r in records {
        out!(
            "{:<24} {:<28} {:<14} {:<32} {:<9} {:>8}  {}",
            readable(r.processed_at),
            r.svix_id,
            r.event_type.as_deref().unwrap_or("-"),
            r.user_id.as_ref().map(|u| u.as_str()).unwrap_or("-"),
            r.outcome.as_str(),
            r.attempts,
            r.reason.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

fn read_fixture(fixture: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(fixture);
    if path.exists() {
        return std::fs::read_to_string(path).with_context(|| format!("reading {fixture}"));
    }
    if path.is_absolute() || fixture.contains('/') {
        anyhow::bail!("no file {fixture}");
    }
    let path = devkit::fixture_path(fixture);
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no fixture {fixture} (looked for {}; give a fixture name such as user.created, or a path)",
            path.display()
        )
    })
}

/// The secret to sign with: `--secret`, else the one the running stack stores, else the first
/// of CLERK_WEBHOOK_SECRET, else the development secret. Checked before use.
async fn signing_secret(explicit: Option<String>) -> anyhow::Result<String> {
    let secret = match explicit {
        Some(secret) => secret,
        None => match stored_secret().await {
            Some(secret) => secret,
            None => std::env::var("CLERK_WEBHOOK_SECRET")
                .ok()
                .and_then(|list| list_items(&list).next().map(str::to_owned))
                .unwrap_or_else(|| DEV_WEBHOOK_SECRET.to_owned()),
        },
    };
    WebhookKeys::parse(&secret.clone().into())
        .map_err(|e| anyhow::anyhow!("the signing secret is not usable: {e}"))?;
    Ok(secret)
}

/// The first signing secret stored in the running stack's Secrets Manager, if a stack runs.
async fn stored_secret() -> Option<String> {
    let env = StackEnv::read().ok()?;
    let id = env.get("WEBHOOK_SECRET_ID").ok()?;
    let client = aws_sdk_secretsmanager::Client::new(&env.sdk().await.ok()?);
    let value = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .ok()?
        .secret_string?;
    list_items(&value).next().map(str::to_owned)
}

fn stack_env() -> BTreeMap<String, String> {
    local_stack::read_env_file().unwrap_or_default()
}

async fn post(webhook: &Webhook, url: Option<String>) -> anyhow::Result<()> {
    let body = read_fixture(&webhook.fixture)?;
    let base = url.unwrap_or_else(gateway_url);
    let target = format!("{}{}", base.trim_end_matches('/'), webhook::ROUTE);
    let headers = sign_now(&signing_secret(webhook.secret.clone()).await?, &body);
    let response = devkit::http_client()
        .post(&target)
        .headers(headers)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("posting to {target} ({STACK_DOWN})"))?;
    let status = response.status();
    out!("POST {target} -> {status}");
    out!("{}", response.text().await?);
    if !status.is_success() {
        return Err(Exit(1).into());
    }
    Ok(())
}

/// A queue's attributes (`name`, or all of them).
async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
) -> anyhow::Result<std::collections::HashMap<QueueAttributeName, String>> {
    Ok(sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name)
        .send()
        .await
        .context(STACK_DOWN)?
        .attributes
        .unwrap_or_default())
}

async fn sqs_event(fixtures: &[String], from_queue: bool) -> anyhow::Result<()> {
    let messages = if from_queue {
        let env = StackEnv::read()?;
        let sqs = aws_sdk_sqs::Client::new(&env.sdk().await?);
        let url = env.get("EVENTS_QUEUE_URL")?;
        let arn = queue_attributes(&sqs, &url, QueueAttributeName::QueueArn)
            .await?
            .remove(&QueueAttributeName::QueueArn)
            .unwrap_or_default();
        let mut messages = Vec::new();
        devkit::sqs_event::take_all(&sqs, &url, |m| {
            messages.push(devkit::poller::to_lambda(m, &arn))
        })
        .await?;
        eprintln!(
            "devtool: took {} message(s) off the events queue",
            messages.len()
        );
        messages
    } else {
        fixtures
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let body = read_fixture(f)?;
                let svix_id = devkit::signing::new_svix_id();
                Ok(devkit::sqs_event::message(
                    &format!("local-message-{i}"),
                    &svix_id,
                    &body,
                    1,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let event = devkit::sqs_event::event(messages);
    out!("{}", serde_json::to_string_pretty(&event)?);
    Ok(())
}

async fn queue(take: bool) -> anyhow::Result<()> {
    let env = StackEnv::read()?;
    let get = |k: &str| env.get(k);
    let sqs = aws_sdk_sqs::Client::new(&env.sdk().await?);
    for (label, url) in [
        ("events queue", get("EVENTS_QUEUE_URL")?),
        ("dead-letter queue", get("EVENTS_DLQ_URL")?),
    ] {
        let attrs = queue_attributes(&sqs, &url, QueueAttributeName::All).await?;
        let count = |a: QueueAttributeName| attrs.get(&a).cloned().unwrap_or_else(|| "?".into());
        out!(
            "{label:<18} {} visible, {} in flight  ({url})",
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        );
    }
    if !take {
        return Ok(());
    }
    let url = get("EVENTS_QUEUE_URL")?;
    let mut taken = Vec::new();
    devkit::sqs_event::take_all(&sqs, &url, |message| {
        let attrs = message.message_attributes().cloned().unwrap_or_default();
        let attr = |k: &str| {
            attrs
                .get(k)
                .and_then(|v| v.string_value())
                .unwrap_or("-")
                .to_owned()
        };
        taken.push((
            attr("svix_id"),
            attr("event_type"),
            message.body().unwrap_or_default().to_owned(),
        ));
    })
    .await?;
    for (svix_id, event_type, body) in taken {
        out!("\nsvix_id={svix_id} event_type={event_type}");
        out!("{body}");
    }
    Ok(())
}
