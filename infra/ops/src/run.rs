//! One subcommand, run against its resolved target: what `main` calls. Prints the command's
//! lines on stdout, its one-line summary last, and returns its exit code.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clerk_sync::domain::event_log::Source;
use clerk_sync::domain::user::UserId;

use crate::aws::dead_letters::Queues;
use crate::cli::{Cli, Command};
use crate::redrive::Peeked;
use crate::target::{self, Target};
use crate::write::Writer;
use crate::{backfill, exit, inspect, reconcile, redrive, resync};

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let target = target::resolve(&cli.target.selector(), |k| std::env::var(k).ok()).await?;
    let progress = !cli.no_progress;
    let rate = cli.target.rate;
    match cli.command {
        Command::Backfill(args) => {
            let clerk = target.clerk(rate).await?;
            let checkpoint = args.checkpoint.unwrap_or_else(|| {
                format!(".local/backfill-{}.json", target.outputs.users_table).into()
            });
            let mut options = backfill::Options::new(checkpoint.clone());
            options.page_size = args.page_size.into();
            options.concurrency = args.concurrency.into();
            options.resume = args.resume;
            options.dry_run = args.dry_run;
            options.progress = progress;
            stop_on_signal(options.stop.clone());
            eprintln!(
                "backfill: {} from {} into {}{}",
                target.label,
                target.clerk_api_url,
                target.outputs.users_table,
                if args.resume {
                    format!(" (resuming from {})", checkpoint.display())
                } else {
                    String::new()
                }
            );
            let report = backfill::run(
                &clerk,
                Arc::new(target.users()),
                Arc::new(target.event_log()),
                &target.outputs.users_table,
                target.retention_days,
                &options,
            )
            .await
            .with_context(|| {
                format!(
                    "backfill stopped; the checkpoint {} has the last finished page (--resume continues)",
                    checkpoint.display()
                )
            })?;
            println!("{}", report.summary());
            Ok(report.exit_code())
        }
        Command::Resync(args) => {
            let ids = args
                .ids
                .iter()
                .map(|id| {
                    UserId::parse(id).map_err(|_| anyhow::anyhow!("{id} is not a Clerk user id"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let clerk = target.clerk(rate).await?;
            let writer = writer(&target, Source::Resync).dry_run(args.dry_run);
            let report = resync::run(&clerk, &writer, &ids).await;
            report.lines().iter().for_each(|l| println!("{l}"));
            println!("{}", report.summary());
            Ok(report.exit_code())
        }
        Command::Reconcile(args) => {
            let clerk = target.clerk(rate).await?;
            let writer = writer(&target, Source::Reconcile).dry_run(args.dry_run);
            let options = reconcile::Options {
                sample: args.sample,
                fix: args.fix,
                progress,
                show: args.show,
            };
            let report = reconcile::run(
                &clerk,
                &target.dynamodb(),
                &target.outputs.users_table,
                &writer,
                &options,
            )
            .await?;
            report.lines(args.show).iter().for_each(|l| println!("{l}"));
            println!("{}", report.summary());
            Ok(report.exit_code())
        }
        Command::Redrive(args) => {
            let queues = Queues::new(
                target.sqs(),
                &target.outputs.dead_letter_queue_url,
                &target.outputs.events_queue_url,
            );
            if args.peek {
                let max = args.max.unwrap_or(50) as usize;
                let rows = redrive::peek(&queues, &target.event_log(), max).await?;
                println!("{}", Peeked::HEADER);
                rows.iter().for_each(|r| println!("{}", r.line()));
                println!(
                    "redrive --peek: {} dead letters listed (at most {max}); nothing moved",
                    rows.len()
                );
                return Ok(exit::OK);
            }
            let options = redrive::Options {
                method: args.method,
                max: args.max,
                visibility: Duration::from_secs(args.visibility_timeout.max(1)),
                dry_run: args.dry_run,
                progress,
            };
            let report = redrive::run(
                &queues,
                target.outputs.dead_letter_queue_arn.as_deref(),
                &options,
            )
            .await?;
            println!("{}", report.summary());
            Ok(report.exit_code())
        }
        Command::Inspect(args) => {
            let found = match (&args.svix_id, &args.user) {
                (_, Some(user)) => inspect::user(&target, user, args.limit, args.show_pii).await?,
                (Some(key), None) => inspect::event(&target, key, args.show_pii).await?,
                (None, None) => unreachable!("clap requires one"),
            };
            found.lines.iter().for_each(|l| println!("{l}"));
            Ok(if found.found {
                exit::OK
            } else {
                exit::NOT_FOUND
            })
        }
    }
}

fn writer(target: &Target, source: Source) -> Writer {
    Writer::new(
        Arc::new(target.users()),
        Arc::new(target.event_log()),
        source,
        Writer::new_run_id(),
        target.retention_days,
    )
}

/// The first Ctrl-C / SIGTERM asks the backfill to finish its page and save; a second one
/// exits at once (the checkpoint of the last finished page is on disk either way).
fn stop_on_signal(stop: Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n > 0 {
                eprintln!("clerk-sync-ops: stopped; --resume continues from the last saved page");
                std::process::exit(exit::INTERRUPTED);
            }
            eprintln!(
                "clerk-sync-ops: finishing the page in flight, then saving the checkpoint (again to stop now)"
            );
            stop.store(true, Ordering::Relaxed);
        }
    });
}
