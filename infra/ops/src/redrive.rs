//! `redrive`: dead letters back to the events queue, for the sync function to apply again once
//! the cause is fixed. SQS's `StartMessageMoveTask` where the service has it; elsewhere (the
//! local emulator) a copy: receive, send the copy, and delete the dead letter only once the copy
//! is accepted. Killed at any point, every message is on one queue or the other (a message whose
//! copy was sent but not yet deleted is on both; the sync function's ordering makes the
//! duplicate harmless). `--peek` lists what is there without moving anything.

use std::time::{Duration, Instant};

use clerk_sync::adapters::dynamodb::DynamoEventLog;
use clerk_sync::adapters::sqs::delivery;
use clerk_sync::domain::user::UserEvent;

use crate::aws::dead_letters::{Letter, Queues};
use crate::{exit, progress};

/// How messages are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Method {
    /// `StartMessageMoveTask`, or the copy when the service refuses it.
    Auto,
    /// Only `StartMessageMoveTask`.
    MoveTask,
    /// Only receive / send / delete.
    Copy,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub method: Method,
    /// Move at most this many (the copy only: a move task moves everything).
    pub max: Option<u64>,
    /// How long a message being copied is hidden from anyone else: a copier killed midway
    /// leaves it invisible this long, then it is a dead letter again.
    pub visibility: Duration,
    pub dry_run: bool,
    pub progress: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub method: String,
    /// Dead letters before the run (visible + in flight).
    pub before: i64,
    pub moved: u64,
    /// Copies the events queue refused: their dead letters stay.
    pub failed: u64,
    /// Copies sent whose dead letter could not be deleted: they will be redriven (and applied)
    /// twice, harmlessly.
    pub undeleted: u64,
    pub dry_run: bool,
    pub elapsed: Duration,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        if self.failed > 0 || self.undeleted > 0 {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }

    pub fn summary(&self) -> String {
        if self.dry_run {
            return format!(
                "redrive (dry run): {} messages in the dead-letter queue would be moved; nothing moved",
                self.before
            );
        }
        format!(
            "redrive ({}): {} moved to the events queue, {} failed (still in the dead-letter queue), {} sent but not deleted (will be applied twice, harmlessly); {} were there; {:.1} s",
            self.method,
            self.moved,
            self.failed,
            self.undeleted,
            self.before,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Moves the dead letters back. `dead_letter_queue_arn` is needed for the move task only.
pub async fn run(
    queues: &Queues,
    dead_letter_queue_arn: Option<&str>,
    options: &Options,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (visible, in_flight) = queues.depth(&queues.dead_letter_queue_url).await?;
    let mut report = Report {
        before: visible + in_flight,
        dry_run: options.dry_run,
        ..Report::default()
    };
    if options.dry_run {
        return Ok(report);
    }
    let try_task = options.method != Method::Copy && options.max.is_none();
    if try_task {
        match dead_letter_queue_arn {
            Some(arn) => match queues.start_move_task(arn).await {
                Ok(_) => {
                    report.method = "StartMessageMoveTask".into();
                    wait_for_task(queues, arn, &mut report, options.progress).await?;
                    report.elapsed = started.elapsed();
                    return Ok(report);
                }
                Err(code) if options.method == Method::Auto => {
                    tracing::info!(code, "StartMessageMoveTask refused; copying instead");
                    eprintln!("redrive: StartMessageMoveTask refused ({code}); copying instead");
                }
                Err(code) => anyhow::bail!("StartMessageMoveTask refused: {code}"),
            },
            None if options.method == Method::MoveTask => {
                anyhow::bail!("the stack has no DeadLetterQueueArn output")
            }
            None => {}
        }
    }
    report.method = "copy".into();
    copy(queues, options, &mut report).await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn wait_for_task(
    queues: &Queues,
    arn: &str,
    report: &mut Report,
    show: bool,
) -> anyhow::Result<()> {
    let bar = progress::bar(u64::try_from(report.before).ok(), "messages", show);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(task) = queues.move_task(arn).await? else {
            continue;
        };
        bar.set_position(task.moved.max(0) as u64);
        if let Some(total) = task.to_move {
            bar.set_length(total.max(0) as u64);
        }
        match task.status.as_str() {
            "RUNNING" | "CANCELLING" => continue,
            "COMPLETED" => {
                report.moved = task.moved.max(0) as u64;
                bar.finish_and_clear();
                return Ok(());
            }
            other => {
                bar.finish_and_clear();
                report.moved = task.moved.max(0) as u64;
                anyhow::bail!(
                    "the move task ended {other}: {}",
                    task.failure.unwrap_or_default()
                );
            }
        }
    }
}

/// Receive, copy, delete what was copied; until the queue answers empty twice or `max` moved.
async fn copy(queues: &Queues, options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let bar = progress::bar(
        u64::try_from(report.before).ok(),
        "messages",
        options.progress,
    );
    let mut empty = 0;
    let mut refused_batches = 0;
    loop {
        let left = options.max.map(|m| m.saturating_sub(report.moved));
        if left == Some(0) {
            break;
        }
        let want = left.map_or(10, |l| l.min(10) as i32);
        let letters = queues.receive(want, options.visibility).await?;
        if letters.is_empty() {
            empty += 1;
            if empty >= 2 {
                break;
            }
            continue;
        }
        empty = 0;
        // The copy first: a dead letter is deleted only once its copy is on the events queue.
        let sent = queues.copy_to_events_queue(&letters).await?;
        let copied: Vec<&Letter> = letters
            .iter()
            .zip(&sent)
            .filter_map(|(l, ok)| ok.then_some(l))
            .collect();
        let failed = letters.len() - copied.len();
        report.failed += failed as u64;
        refused_batches = if copied.is_empty() {
            refused_batches + 1
        } else {
            0
        };
        let deleted = queues.delete(&copied).await?;
        report.moved += copied.len() as u64;
        report.undeleted += (copied.len() - deleted) as u64;
        bar.inc(copied.len() as u64);
        if refused_batches >= 3 {
            tracing::warn!("the events queue refused three batches in a row; stopping");
            break;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// One dead letter as `--peek` shows it: ids, type and its last recorded fate, no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub svix_id: Option<String>,
    pub event_type: Option<String>,
    pub user_id: Option<String>,
    /// Deliveries the sync function recorded (the event log's count).
    pub attempts: Option<u32>,
    pub last_outcome: Option<String>,
    pub last_reason: Option<String>,
}

impl Peeked {
    pub fn line(&self) -> String {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        format!(
            "{:<32} {:<14} {:<34} {:>8} {:<8} {}",
            or(&self.svix_id),
            or(&self.event_type),
            or(&self.user_id),
            self.attempts.map_or("-".into(), |a| a.to_string()),
            or(&self.last_outcome),
            or(&self.last_reason)
        )
    }

    pub const HEADER: &str = "SVIX ID                          TYPE           USER                               ATTEMPTS OUTCOME  LAST REASON";
}

/// Lists up to `max` dead letters and releases them again at once. Each look counts as a
/// receive of the message (the dead-letter queue has no redrive policy, so nothing follows).
pub async fn peek(
    queues: &Queues,
    log: &DynamoEventLog,
    max: usize,
) -> anyhow::Result<Vec<Peeked>> {
    let mut letters = Vec::new();
    while letters.len() < max {
        // Hidden while peeking, so one peek does not see a message twice.
        let batch = queues
            .receive(
                (max - letters.len()).min(10) as i32,
                Duration::from_secs(30),
            )
            .await?;
        if batch.is_empty() {
            break;
        }
        letters.extend(batch);
    }
    let mut rows = Vec::with_capacity(letters.len());
    for letter in &letters {
        let record = letter.as_record();
        let d = delivery(&record);
        let user_id = d
            .body
            .as_ref()
            .ok()
            .and_then(|body| UserEvent::parse(body).ok())
            .map(|e| e.user_id().as_str().to_owned());
        let logged = log.get(&d.log_key()).await.ok().flatten();
        rows.push(Peeked {
            svix_id: d.svix_id.map(str::to_owned),
            event_type: d.event_type.map(str::to_owned),
            user_id,
            attempts: logged.as_ref().map(|r| r.attempts),
            last_outcome: logged.as_ref().map(|r| r.outcome.as_str().to_owned()),
            last_reason: logged.and_then(|r| r.reason),
        });
    }
    queues.release(&letters).await?;
    Ok(rows)
}
