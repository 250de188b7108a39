//! `local-stack`: runs the whole system on this machine until Ctrl-C.

use clerk_sync::adapters::svix::WebhookKeys;
use devkit::resources::{MAX_RECEIVE_COUNT, Names};
use devkit::signing::DEV_WEBHOOK_SECRET;
use local_stack::{ClerkOptions, Stack, StackOptions, env_file, outputs_file};

/// A whole number from the environment variable `name`, within `range`; `default` when unset.
fn env_number(
    name: &str,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
) -> anyhow::Result<u32> {
    match std::env::var(name) {
        Ok(n) if !n.trim().is_empty() => n
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{name} must be a number from {} to {}",
                    range.start(),
                    range.end()
                )
            }),
        _ => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    clerk_sync::telemetry::init();
    let port = match std::env::var("LOCAL_PORT") {
        Ok(p) if !p.is_empty() => p
            .parse()
            .map_err(|_| anyhow::anyhow!("LOCAL_PORT must be a port number"))?,
        _ => 3000,
    };
    let (secrets, secret_origin) = match std::env::var("CLERK_WEBHOOK_SECRET") {
        Ok(s) if !s.trim().is_empty() => (s, "from CLERK_WEBHOOK_SECRET"),
        _ => (
            DEV_WEBHOOK_SECRET.to_owned(),
            "the local development secret; set CLERK_WEBHOOK_SECRET to use yours",
        ),
    };
    let sync = !matches!(
        std::env::var("LOCAL_SYNC").as_deref().map(str::trim),
        Ok("off" | "0" | "false")
    );
    let first_secret = clerk_sync::domain::list_items(&secrets)
        .next()
        .unwrap_or_default()
        .to_owned();
    let keys = WebhookKeys::parse(&secrets.clone().into())
        .map_err(|e| anyhow::anyhow!("CLERK_WEBHOOK_SECRET: {e}"))?;

    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => say(&format!(
            "using the AWS endpoint at {url} (AWS_ENDPOINT_URL)"
        )),
        _ => say("starting the AWS emulator (moto) from .venv"),
    }
    let clerk_options = ClerkOptions::from_env();
    let stack = Stack::start(StackOptions {
        port,
        webhook_secrets: secrets,
        // A shorter visibility timeout retries a failed (or orphaned) message sooner.
        names: Names::local().with_visibility_timeout(env_number(
            "LOCAL_VISIBILITY_TIMEOUT_SECONDS",
            0..=43_200,
            devkit::resources::VISIBILITY_TIMEOUT_SECONDS,
        )?),
        sync,
        clerk: clerk_options.clone(),
        local_clerk: local_stack::clerk::LocalClerkOptions::from_env()?,
        metrics_file: Some(local_stack::metrics_file()),
        aws_endpoint: None,
        // How many sync invocations may run at once: the template's SyncMaxConcurrency.
        sync_pollers: env_number(
            "LOCAL_SYNC_CONCURRENCY",
            1..=1000,
            devkit::poller::DEFAULT_POLLERS as u32,
        )? as usize,
    })
    .await?;
    stack.write_env_file(&env_file())?;
    stack.write_outputs_file(&outputs_file())?;
    if let Some(clerk) = &stack.local_clerk {
        clerk.write_key_file()?;
    }

    let r = &stack.resources;
    say(&format!("AWS emulator     {}", stack.endpoint()));
    say(&format!(
        "events queue     {} (dead-letter queue {}, maxReceiveCount {MAX_RECEIVE_COUNT}, visibility timeout {} s)",
        r.names.queue, r.names.dead_letter_queue, r.names.visibility_timeout_seconds
    ));
    say(&format!(
        "signing secret   {} ({} secret(s), {secret_origin})",
        r.names.webhook_secret,
        keys.len()
    ));
    say(&format!(
        "tables           {} (users), {} (event log)",
        r.names.users_table, r.names.event_log_table
    ));
    say(if stack.syncing() {
        "sync             events queue -> sync function (batch 10, long polling; LOCAL_SYNC=off to stop)"
    } else {
        "sync             OFF (LOCAL_SYNC=off): events stay on the queue; `make watch` + `make invoke-sync`"
    });
    say(&format!(
        "environment      {} (for cargo lambda watch --env-file)",
        env_file().display()
    ));
    say(&match &stack.local_clerk {
        Some(clerk) => format!(
            "clerk            local: tokens signed by a key generated now (JWKS {}{}), Backend API {}{} with {} users (the fixtures' and LOCAL_CLERK_USERS generated ones; LOCAL_CLERK_429_EVERY=N answers every Nth request 429)",
            stack.base_url(),
            local_stack::clerk::JWKS_PATH,
            stack.base_url(),
            local_stack::clerk::API_PREFIX,
            clerk.user_count()
        ),
        None => "clerk            yours: CLERK_JWT_KEY/CLERK_JWKS_URL, CLERK_ISSUER, CLERK_AUTHORIZED_PARTIES, CLERK_API_URL, CLERK_SECRET_KEY as given".to_owned(),
    });
    if !clerk_options.lazy_sync() {
        say(
            "lazy sync        OFF (no CLERK_SECRET_KEY, or LAZY_SYNC=false): a user the webhook has not brought answers 404",
        );
    }
    say(&format!(
        "outputs          {} (as `sam list stack-outputs` prints them; `make smoke-local`)",
        outputs_file().display()
    ));
    say(&format!(
        "metrics          {} (each invocation's CloudWatch EMF document, as Lambda logs it)",
        local_stack::metrics_file().display()
    ));
    say(&format!("gateway          {}", stack.base_url()));
    for route in &stack.routes {
        println!("    {:<24} -> {}", route.path, route.function);
    }
    let demo_off = matches!(
        std::env::var("LOCAL_DEMO").as_deref().map(str::trim),
        Ok("off" | "0" | "false")
    );
    if let (Some(clerk), true, false) = (&stack.local_clerk, stack.syncing(), demo_off) {
        println!();
        say(
            "demo (LOCAL_DEMO=off to skip): a new user's life, over HTTP, read back with its session token",
        );
        match local_stack::demo(&stack.base_url(), &first_secret, &clerk.keys).await {
            Ok(lines) => lines.iter().for_each(|l| println!("    {l}")),
            Err(e) => say(&format!("demo FAILED: {e:#}")),
        }
    }
    println!();
    println!("Try it from another terminal (the README's walkthrough, \"Try it locally\"):");
    for step in local_stack::walkthrough::steps() {
        println!("    {}", step.line);
    }
    println!("Operations (clerk-sync-ops; ENV=dev|staging|prod for a deployed stack):");
    for line in [
        "make backfill                     # every local Clerk user into the table (LOCAL_CLERK_USERS=2000 make local)",
        "make reconcile                    # the table against Clerk; FIX=1 repairs",
        "make redrive PEEK=1               # the dead-letter queue: what is there and why",
    ] {
        println!("    {line}");
    }
    println!("Ctrl-C stops everything this stack started.");

    wait_for_stop().await;
    say("stopping");
    let _ = std::fs::remove_file(env_file());
    let _ = std::fs::remove_file(outputs_file());
    let _ = std::fs::remove_file(local_stack::clerk::key_file());
    stack.stop().await;
    Ok(())
}

fn say(line: &str) {
    println!("local-stack: {line}");
}

async fn wait_for_stop() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
