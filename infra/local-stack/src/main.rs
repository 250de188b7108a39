//! `local-stack`: runs the whole system on this machine until Ctrl-C.

use clerk_sync::domain::webhook::WebhookKeys;
use devkit::resources::{MAX_RECEIVE_COUNT, Names};
use devkit::signing::DEV_WEBHOOK_SECRET;
use local_stack::{Stack, StackOptions, env_file};

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
    let keys = WebhookKeys::parse(&secrets.clone().into())
        .map_err(|e| anyhow::anyhow!("CLERK_WEBHOOK_SECRET: {e}"))?;

    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => say(&format!(
            "using the AWS endpoint at {url} (AWS_ENDPOINT_URL)"
        )),
        _ => say("starting the AWS emulator (moto) from .venv"),
    }
    let stack = Stack::start(StackOptions {
        port,
        webhook_secrets: secrets,
        names: Names::local(),
        sync,
    })
    .await?;
    stack.write_env_file(&env_file())?;

    let r = &stack.resources;
    say(&format!("AWS emulator     {}", stack.endpoint()));
    say(&format!(
        "events queue     {} (dead-letter queue {}, maxReceiveCount {MAX_RECEIVE_COUNT})",
        r.names.queue, r.names.dead_letter_queue
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
    say(&format!("gateway          {}", stack.base_url()));
    for route in &stack.routes {
        println!("    {:<24} -> {}", route.path, route.function);
    }
    println!();
    println!("Try it from another terminal:");
    for line in [
        "make post FIXTURE=user.created    # signs the fixture now and posts it: 202 queued",
        "make user ID=user_35kQ7zvT0cWnHq1d2xXy9RbLmAa  # the synced record, a moment later",
        "make post FIXTURE=user.deleted    # then `make user …` shows the tombstone",
        "make events                       # the event log: every event's fate",
        "make post FIXTURE=session.created # a type we don't sync: 200 ignored",
        "make queue                        # events queue and dead-letter queue counts",
    ] {
        println!("    {line}");
    }
    println!("Ctrl-C stops everything this stack started.");

    wait_for_stop().await;
    say("stopping");
    let _ = std::fs::remove_file(env_file());
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
