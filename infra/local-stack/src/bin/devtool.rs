//! `devtool`: signs Clerk fixtures and posts them to the local gateway, builds API Gateway
//! and SQS events for `cargo lambda invoke`, and shows the local queues, users and event log.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use clap::{Parser, Subcommand};
use clerk_sync::domain::list_items;
use devkit::signing::{DEV_WEBHOOK_SECRET, sign_now};

#[derive(Parser)]
#[command(about = "Development helpers for the local stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a webhook fixture now and POST it to the local gateway.
    Post {
        /// A fixture name (`user.created`) or a path to a JSON file.
        fixture: String,
        /// Gateway base URL; defaults to the running local stack's.
        #[arg(long)]
        url: Option<String>,
        /// Signing secret; defaults to the first of CLERK_WEBHOOK_SECRET, else the dev secret.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Print a freshly signed API Gateway v2 event for `cargo lambda invoke --data-file`.
    Event {
        fixture: String,
        #[arg(long)]
        secret: Option<String>,
    },
    /// Show the events queue and dead-letter queue of the running local stack.
    Queue {
        /// Receive, print and delete the messages on the events queue.
        #[arg(long)]
        take: bool,
    },
    /// Print an SQS event (as Lambda receives it) carrying fixtures, for `cargo lambda invoke`.
    SqsEvent {
        /// Fixture names or paths; each becomes one message with a fresh svix id.
        #[arg(required = true)]
        fixtures: Vec<String>,
    },
    /// Print a session token for a user, signed by the running local Clerk (valid 60 s).
    Token {
        #[arg(default_value = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa")]
        user: String,
        /// Add the admin claim (`metadata.role = admin`).
        #[arg(long)]
        admin: bool,
    },
    /// GET a path on the local gateway with a fresh token for `--as` (none with `--anonymous`).
    Get {
        #[command(flatten)]
        request: ApiRequest,
        #[arg(long)]
        anonymous: bool,
    },
    /// Print an API Gateway v2 event for GET `path` with a fresh token, for `cargo lambda invoke`.
    ApiEvent {
        #[command(flatten)]
        request: ApiRequest,
    },
    /// Print a user's item in the local users table, as stored.
    User { id: String },
    /// Print the event log, oldest first (only one user's events with --user).
    Events {
        #[arg(long)]
        user: Option<String>,
    },
}

/// A GET on the api as a user: the path, who asks, and whether with the admin claim.
#[derive(clap::Args)]
struct ApiRequest {
    #[arg(default_value = "/v1/users/me")]
    path: String,
    #[arg(long = "as", default_value = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa")]
    user: String,
    #[arg(long)]
    admin: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Post {
            fixture,
            url,
            secret,
        } => post(&fixture, url, secret).await,
        Command::Event { fixture, secret } => {
            let body = read_fixture(&fixture)?;
            let headers = sign_now(&signing_secret(secret), &body);
            let event =
                devkit::apigw::request_event("POST", webhook::ROUTE, &headers, body.as_bytes());
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
        Command::Queue { take } => queue(take).await,
        Command::SqsEvent { fixtures } => {
            let messages = fixtures
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
                .collect::<anyhow::Result<Vec<_>>>()?;
            let event = devkit::sqs_event::event(messages);
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
        Command::Token { user, admin } => {
            println!("{}", token(&user, admin)?);
            Ok(())
        }
        Command::Get { request, anonymous } => get(&request, anonymous).await,
        Command::ApiEvent { request } => {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(&format!(
                    "Bearer {}",
                    token(&request.user, request.admin)?
                ))?,
            );
            let event = devkit::apigw::request_event("GET", &request.path, &headers, b"");
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
        Command::User { id } => user(&id).await,
        Command::Events { user } => events(user).await,
    }
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

/// A session token for `user` from the running local Clerk's key.
fn token(user: &str, admin: bool) -> anyhow::Result<String> {
    let keys = local_stack::clerk::read_key_file()?;
    let mut claims = keys.claims(user);
    if admin {
        claims["metadata"] = serde_json::json!({"role": "admin"});
    }
    Ok(keys.sign(&claims))
}

fn gateway_url() -> String {
    stack_env().remove("LOCAL_GATEWAY_URL").unwrap_or_else(|| {
        format!(
            "http://127.0.0.1:{}",
            std::env::var("LOCAL_PORT").unwrap_or_else(|_| "3000".into())
        )
    })
}

async fn get(api: &ApiRequest, anonymous: bool) -> anyhow::Result<()> {
    let target = format!("{}{}", gateway_url().trim_end_matches('/'), api.path);
    let mut request = devkit::http_client().get(&target);
    if !anonymous {
        request = request.bearer_auth(token(&api.user, api.admin)?);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("GET {target} (is the local stack running? `make local`)"))?;
    let status = response.status();
    println!("GET {target} -> {status}");
    let text = response.text().await?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => println!("{}", serde_json::to_string_pretty(&json)?),
        Err(_) => println!("{text}"),
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
        .await?
        .item;
    let Some(item) = item else {
        println!("no user {id} in the users table");
        std::process::exit(1);
    };
    let json: serde_json::Value = serde_dynamo::from_item(item)?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

async fn events(user: Option<String>) -> anyhow::Result<()> {
    use clerk_sync::adapters::dynamodb::event_log;
    use clerk_sync::domain::event_log::LogRecord;
    let env = StackEnv::read()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&env.sdk().await?);
    let table = env.get("EVENT_LOG_TABLE")?;
    let items = match &user {
        Some(id) => {
            dynamodb
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
                .await?
        }
        None => {
            dynamodb
                .scan()
                .table_name(&table)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await?
        }
    };
    let mut records: Vec<LogRecord> = serde_dynamo::from_items(items)?;
    records.sort_by_key(|r| (r.received_at, r.processed_at));
    println!(
        "{:<24} {:<28} {:<14} {:<32} {:<9} {:>8}  reason",
        "processed_at (ms)", "svix_id", "event_type", "user_id", "outcome", "attempts"
    );
    for r in records {
        println!(
            "{:<24} {:<28} {:<14} {:<32} {:<9} {:>8}  {}",
            r.processed_at,
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
    let path = devkit::fixture_path(fixture);
    std::fs::read_to_string(&path)
        .with_context(|| format!("no fixture {fixture} (looked for {})", path.display()))
}

fn signing_secret(explicit: Option<String>) -> String {
    explicit
        .or_else(|| {
            let list = std::env::var("CLERK_WEBHOOK_SECRET").ok()?;
            list_items(&list).next().map(str::to_owned)
        })
        .unwrap_or_else(|| DEV_WEBHOOK_SECRET.to_owned())
}

fn stack_env() -> BTreeMap<String, String> {
    local_stack::read_env_file().unwrap_or_default()
}

async fn post(fixture: &str, url: Option<String>, secret: Option<String>) -> anyhow::Result<()> {
    let body = read_fixture(fixture)?;
    let base = url.unwrap_or_else(gateway_url);
    let target = format!("{}{}", base.trim_end_matches('/'), webhook::ROUTE);
    let headers = sign_now(&signing_secret(secret), &body);
    let response = devkit::http_client()
        .post(&target)
        .headers(headers)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| {
            format!("posting to {target} (is the local stack running? `make local`)")
        })?;
    let status = response.status();
    println!("POST {target} -> {status}");
    println!("{}", response.text().await?);
    if !status.is_success() {
        std::process::exit(1);
    }
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
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await?
            .attributes
            .unwrap_or_default();
        let count = |a: QueueAttributeName| attrs.get(&a).cloned().unwrap_or_else(|| "?".into());
        println!(
            "{label:<18} {} visible, {} in flight  ({url})",
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        );
    }
    if !take {
        return Ok(());
    }
    let url = get("EVENTS_QUEUE_URL")?;
    devkit::sqs_event::take_all(&sqs, &url, |message| {
        let attrs = message.message_attributes().cloned().unwrap_or_default();
        let attr = |k: &str| {
            attrs
                .get(k)
                .and_then(|v| v.string_value())
                .unwrap_or("-")
                .to_owned()
        };
        println!(
            "\nsvix_id={} event_type={}",
            attr("svix_id"),
            attr("event_type")
        );
        println!("{}", message.body().unwrap_or_default());
    })
    .await?;
    Ok(())
}
