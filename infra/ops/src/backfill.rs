//! `backfill`: every user in Clerk's user list, page by page (`starting_after` cursor, oldest
//! first), written with the sync function's conditional write, a bounded number at a time. The
//! checkpoint is saved after each page; the next page is fetched while this one is written.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clerk_sync::domain::event_log::Source;
use clerk_sync::domain::user::UserEvent;
use clerk_sync::ports::{EventLog, UserStore};
use futures_util::StreamExt;

use crate::checkpoint::{Checkpoint, Counts};
use crate::clerk::{ClerkClient, MAX_PAGE, Page};
use crate::write::{Writer, Written};
use crate::{cpu, exit, progress};

#[derive(Debug, Clone)]
pub struct Options {
    /// Users per page (at most 500).
    pub page_size: usize,
    /// Writes in flight at once.
    pub concurrency: usize,
    pub checkpoint: PathBuf,
    /// Go on from the checkpoint instead of starting from the first user.
    pub resume: bool,
    pub dry_run: bool,
    pub progress: bool,
    /// Set (by Ctrl-C): the page in flight is finished, the checkpoint saved, and the run stops.
    pub stop: Arc<AtomicBool>,
}

impl Options {
    pub fn new(checkpoint: PathBuf) -> Self {
        Self {
            page_size: MAX_PAGE,
            concurrency: 16,
            checkpoint,
            resume: false,
            dry_run: false,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// How a run went.
#[derive(Debug, Clone)]
pub struct Report {
    pub checkpoint: Checkpoint,
    /// What this invocation did (a resumed run's checkpoint also counts the earlier ones).
    pub this_run: Counts,
    pub interrupted: bool,
    pub dry_run: bool,
    pub total: Option<u64>,
    pub elapsed: Duration,
    /// This process's CPU time during the run.
    pub cpu: Duration,
    pub rate_limited: u64,
    pub retried: u64,
    pub requests: u64,
    pub unlogged: u64,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.checkpoint.counts.failed > 0 || self.unlogged > 0 {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }

    /// Users per second of wall time, this invocation.
    pub fn users_per_second(&self) -> f64 {
        self.this_run.seen as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let c = &self.checkpoint.counts;
        let verb = if self.dry_run {
            "would write"
        } else {
            "written"
        };
        let state = if self.interrupted {
            " INTERRUPTED (checkpoint saved; --resume continues)"
        } else if self.checkpoint.done {
            ""
        } else {
            " (not finished)"
        };
        format!(
            "backfill{state}: {} users seen, {} {verb}, {} already newer or deleted, {} unchanged, {} failed; {} pages, {} requests, {} rate-limited (429), {} retried; {:.1} s, {:.0} users/s, {:.0} µs CPU/user{}",
            c.seen,
            c.applied,
            c.stale,
            c.duplicate,
            c.failed,
            self.checkpoint.pages,
            self.requests,
            self.rate_limited,
            self.retried,
            self.elapsed.as_secs_f64(),
            self.users_per_second(),
            self.cpu.as_secs_f64() * 1e6 / (self.this_run.seen.max(1)) as f64,
            if self.unlogged > 0 {
                format!("; {} writes not in the event log", self.unlogged)
            } else {
                String::new()
            }
        )
    }
}

/// Runs (or, with `resume`, continues) a backfill into `users`, recording in `log`.
pub async fn run(
    clerk: &ClerkClient,
    users: Arc<dyn UserStore>,
    log: Arc<dyn EventLog>,
    users_table: &str,
    retention_days: u32,
    options: &Options,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let cpu_before = cpu::process_cpu();
    let mut checkpoint = match Checkpoint::load(&options.checkpoint)? {
        Some(saved) if options.resume => {
            if saved.users_table != users_table {
                bail!(
                    "the checkpoint {} belongs to the table {}, not {users_table}",
                    options.checkpoint.display(),
                    saved.users_table
                );
            }
            saved
        }
        _ => Checkpoint::new(users_table, Writer::new_run_id()),
    };
    let writer = Writer::new(
        users,
        log,
        Source::Backfill,
        checkpoint.run.clone(),
        retention_days,
    )
    .dry_run(options.dry_run);
    let total = match clerk.count().await {
        Ok(total) => Some(total),
        Err(e) => {
            tracing::warn!(error = %e, "no user count from Clerk; progress without a total");
            None
        }
    };
    let bar = progress::bar(total, "users", options.progress);
    bar.set_position(checkpoint.counts.seen);
    let mut this_run = Counts::default();
    let limit = options.page_size.clamp(1, MAX_PAGE);
    let mut interrupted = false;

    let mut next: Option<Page> = None;
    while !checkpoint.done {
        let page = match next.take() {
            Some(page) => page,
            None => clerk.list_page(checkpoint.cursor.as_deref(), limit).await?,
        };
        let last = page.is_last(limit) || page.last_id.is_none();
        let cursor = page.last_id.clone();
        let stopping = options.stop.load(Ordering::Relaxed);
        let prefetch = async {
            if last || stopping {
                None
            } else {
                Some(clerk.list_page(cursor.as_deref(), limit).await)
            }
        };
        let (written, prefetched) =
            tokio::join!(write_page(&writer, page, options.concurrency), prefetch);
        for (id, outcome) in written {
            let counts = [&mut checkpoint.counts, &mut this_run];
            for c in counts {
                c.seen += 1;
                match &outcome {
                    Written::Applied | Written::WouldApply => c.applied += 1,
                    Written::Stale | Written::WouldSkip => c.stale += 1,
                    Written::Duplicate => c.duplicate += 1,
                    Written::Failed(_) => c.failed += 1,
                }
            }
            if let Written::Failed(reason) = &outcome {
                tracing::warn!(user = id.as_deref().unwrap_or("?"), reason, "not written");
                if checkpoint.failed_ids.len() < Checkpoint::MAX_FAILED_IDS {
                    checkpoint.failed_ids.push(id.unwrap_or_else(|| "?".into()));
                }
            }
            bar.inc(1);
        }
        checkpoint.cursor = cursor.or(checkpoint.cursor.take());
        checkpoint.pages += 1;
        checkpoint.done = last;
        if !options.dry_run {
            checkpoint.save(&options.checkpoint)?;
        }
        bar.set_message(format!("page {}", checkpoint.pages));
        if options.stop.load(Ordering::Relaxed) && !checkpoint.done {
            interrupted = true;
            break;
        }
        // A failed prefetch is retried by the next iteration's own fetch: the error (a refused
        // key, an exhausted retry budget) then stops the run with the checkpoint saved.
        next = prefetched.and_then(Result::ok);
    }
    bar.finish_and_clear();
    Ok(Report {
        checkpoint,
        this_run,
        interrupted,
        dry_run: options.dry_run,
        total,
        elapsed: started.elapsed(),
        cpu: cpu::process_cpu().saturating_sub(cpu_before),
        rate_limited: clerk.rate_limited(),
        retried: clerk.retried(),
        requests: clerk.requests(),
        unlogged: writer.unlogged(),
    })
}

/// Writes a page's users, `concurrency` at a time: each user's id (when it has one) and fate.
async fn write_page(
    writer: &Writer,
    page: Page,
    concurrency: usize,
) -> Vec<(Option<String>, Written)> {
    futures_util::stream::iter(page.users)
        .map(|user| async move {
            match user {
                Ok(profile) => {
                    let id = profile.id.as_str().to_owned();
                    let event = UserEvent::Upsert(Box::new(profile));
                    (Some(id), writer.write(&event).await)
                }
                Err(unparsed) => (
                    unparsed.id,
                    Written::Failed(format!("not a user: {}", unparsed.reason)),
                ),
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}
