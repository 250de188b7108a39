//! `reconcile`: the users table against Clerk. Finds users missing from the table, older in the
//! table than in Clerk, and live in the table but gone from Clerk (deleted while nobody was
//! listening; each confirmed with `GET /v1/users/{id}` before it is counted). `--fix` repairs
//! each with the same write as the backfill (a user gone from Clerk becomes a tombstone);
//! without it nothing is written. `--sample N` checks N random table users by id instead of
//! listing Clerk (it cannot see missing users).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clerk_sync::domain::user::{UserEvent, UserId};
use clerk_sync::ports::ClerkUser;

use crate::aws::bookkeeping::{self, Bookkeeping};
use crate::clerk::{ClerkClient, MAX_PAGE};
use crate::write::{Writer, Written};
use crate::{exit, progress};

#[derive(Debug, Clone)]
pub struct Options {
    pub sample: Option<usize>,
    pub fix: bool,
    pub progress: bool,
    /// Ids printed per class.
    pub show: usize,
}

/// The drift found, by class (user ids, sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// In Clerk, not in the table.
    pub missing: Vec<String>,
    /// In both, the table's `updated_at` older than Clerk's.
    pub older: Vec<String>,
    /// Live in the table, not in Clerk.
    pub absent_from_clerk: Vec<String>,
    /// A tombstone in the table, live in Clerk: never repaired (the ordering rule never
    /// resurrects a deleted user); reported for a human to look at.
    pub tombstoned_but_in_clerk: Vec<String>,
}

impl Drift {
    /// Classes `--fix` repairs.
    pub fn repairable(&self) -> usize {
        self.missing.len() + self.older.len() + self.absent_from_clerk.len()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Fixed {
    pub written: u64,
    pub unchanged: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub clerk_users: u64,
    pub table_users: u64,
    pub sampled: Option<usize>,
    pub drift: Drift,
    pub fixed: Option<Fixed>,
    pub dry_run: bool,
    pub elapsed: Duration,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        match &self.fixed {
            Some(f) if f.failed > 0 => exit::PARTIAL,
            Some(_) => exit::OK,
            None if self.drift.repairable() > 0 => exit::DRIFT,
            None => exit::OK,
        }
    }

    /// Each class with its count and (up to `show`) ids.
    pub fn lines(&self, show: usize) -> Vec<String> {
        let class = |name: &str, ids: &[String]| {
            let mut line = format!("{name:<26} {:>6}", ids.len());
            if !ids.is_empty() {
                let shown: Vec<&str> = ids.iter().take(show).map(String::as_str).collect();
                line.push_str("  ");
                line.push_str(&shown.join(" "));
                if ids.len() > show {
                    line.push_str(&format!(" …and {} more", ids.len() - show));
                }
            }
            line
        };
        let d = &self.drift;
        let mut lines = vec![];
        if self.sampled.is_none() {
            lines.push(class("missing from the table", &d.missing));
        }
        lines.push(class("older in the table", &d.older));
        lines.push(class("absent from Clerk", &d.absent_from_clerk));
        lines.push(class("tombstoned but in Clerk", &d.tombstoned_but_in_clerk));
        lines
    }

    pub fn summary(&self) -> String {
        let d = &self.drift;
        let scope = match self.sampled {
            Some(n) => format!("sample of {n} table users"),
            None => format!(
                "{} users in Clerk, {} in the table",
                self.clerk_users, self.table_users
            ),
        };
        let fixed = match &self.fixed {
            None if d.repairable() > 0 => "; nothing written (--fix repairs)".to_owned(),
            None => String::new(),
            Some(f) => format!(
                "; {} {}, {} unchanged, {} failed",
                f.written,
                if self.dry_run {
                    "would be written"
                } else {
                    "written"
                },
                f.unchanged,
                f.failed
            ),
        };
        format!(
            "reconcile: {scope}; {} missing, {} older, {} absent from Clerk, {} tombstoned but in Clerk{fixed}; {:.1} s",
            if self.sampled.is_some() {
                "-".to_owned()
            } else {
                d.missing.len().to_string()
            },
            d.older.len(),
            d.absent_from_clerk.len(),
            d.tombstoned_but_in_clerk.len(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Compares (and with `--fix` repairs through `writer`) the table `users_table`.
pub async fn run(
    clerk: &ClerkClient,
    dynamodb: &aws_sdk_dynamodb::Client,
    users_table: &str,
    writer: &Writer,
    options: &Options,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut report = Report {
        sampled: options.sample,
        ..Report::default()
    };
    match options.sample {
        None => compare_all(clerk, dynamodb, users_table, options, &mut report).await?,
        Some(n) => compare_sample(clerk, dynamodb, users_table, n, &mut report).await?,
    }
    for ids in [
        &mut report.drift.missing,
        &mut report.drift.older,
        &mut report.drift.absent_from_clerk,
        &mut report.drift.tombstoned_but_in_clerk,
    ] {
        ids.sort_unstable();
    }
    if options.fix {
        let absent = report.drift.absent_from_clerk.len() as u64;
        if report.sampled.is_none() && absent > 100 && absent * 2 > report.table_users {
            anyhow::bail!(
                "{absent} of {} table users are absent from this Clerk: is CLERK_API_URL / the secret key for another instance? Refusing to tombstone them",
                report.table_users
            );
        }
        report.dry_run = writer.is_dry_run();
        report.fixed = Some(fix(clerk, writer, &report.drift, options.progress).await);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn compare_all(
    clerk: &ClerkClient,
    dynamodb: &aws_sdk_dynamodb::Client,
    users_table: &str,
    options: &Options,
    report: &mut Report,
) -> anyhow::Result<()> {
    let total = clerk.count().await.ok();
    let bar = progress::bar(total, "Clerk users listed", options.progress);
    let mut in_clerk: HashMap<String, Option<i64>> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = clerk.list_page(cursor.as_deref(), MAX_PAGE).await?;
        let last = page.is_last(MAX_PAGE) || page.last_id.is_none();
        for user in &page.users {
            match user {
                Ok(p) => {
                    in_clerk.insert(p.id.as_str().to_owned(), Some(p.updated_at));
                }
                // Known to Clerk, unreadable here: never counted absent.
                Err(u) => {
                    if let Some(id) = &u.id {
                        in_clerk.insert(id.clone(), None);
                    }
                }
            }
        }
        bar.inc(page.users.len() as u64);
        cursor = page.last_id;
        if last {
            break;
        }
    }
    bar.finish_and_clear();
    report.clerk_users = in_clerk.len() as u64;
    let mut seen = std::collections::HashSet::new();
    let mut absent = Vec::new();
    report.table_users = bookkeeping::scan(dynamodb, users_table, |b| {
        seen.insert(b.id.clone());
        match in_clerk.get(&b.id) {
            Some(clerk_at) => classify(&b, *clerk_at, &mut report.drift),
            None if !b.deleted => absent.push(b.id),
            None => {}
        }
    })
    .await?;
    report.drift.missing = in_clerk
        .keys()
        .filter(|id| !seen.contains(*id))
        .cloned()
        .collect();
    // Listed before the scan: a user created since is in the table but not in the list.
    for id in absent {
        if confirm_absent(clerk, &id).await? {
            report.drift.absent_from_clerk.push(id);
        }
    }
    Ok(())
}

/// A table user that Clerk has (at `clerk_at`, when readable).
fn classify(b: &Bookkeeping, clerk_at: Option<i64>, drift: &mut Drift) {
    if b.deleted {
        drift.tombstoned_but_in_clerk.push(b.id.clone());
    } else if let Some(clerk_at) = clerk_at
        && b.updated_at.is_none_or(|at| at < clerk_at)
    {
        drift.older.push(b.id.clone());
    }
}

async fn confirm_absent(clerk: &ClerkClient, id: &str) -> anyhow::Result<bool> {
    let Ok(uid) = UserId::parse(id) else {
        return Ok(false);
    };
    Ok(matches!(clerk.get_user(&uid).await?, ClerkUser::NotFound))
}

async fn compare_sample(
    clerk: &ClerkClient,
    dynamodb: &aws_sdk_dynamodb::Client,
    users_table: &str,
    n: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    // Reservoir sampling over one scan: each item equally likely, in one pass.
    let mut sample: Vec<Bookkeeping> = Vec::with_capacity(n);
    let mut i = 0usize;
    report.table_users = bookkeeping::scan(dynamodb, users_table, |b| {
        if sample.len() < n {
            sample.push(b);
        } else if let Some(slot) = sample.get_mut(fastrand::usize(..=i)) {
            *slot = b;
        }
        i += 1;
    })
    .await?;
    for b in &sample {
        let Ok(uid) = UserId::parse(&b.id) else {
            continue;
        };
        match clerk.get_user(&uid).await? {
            ClerkUser::Found(p) => classify(b, Some(p.updated_at), &mut report.drift),
            ClerkUser::NotFound if !b.deleted => report.drift.absent_from_clerk.push(b.id.clone()),
            ClerkUser::NotFound => {}
        }
    }
    report.clerk_users = sample.len() as u64;
    Ok(())
}

/// Repairs each drifted user from Clerk's state now: written with the user's current state, or
/// tombstoned when Clerk does not have it.
async fn fix(clerk: &ClerkClient, writer: &Writer, drift: &Drift, show: bool) -> Fixed {
    let ids: Vec<&String> = drift
        .missing
        .iter()
        .chain(&drift.older)
        .chain(&drift.absent_from_clerk)
        .collect();
    let bar = progress::bar(Some(ids.len() as u64), "users repaired", show);
    let mut fixed = Fixed::default();
    for id in ids {
        bar.inc(1);
        let Ok(uid) = UserId::parse(id) else {
            fixed.failed += 1;
            continue;
        };
        let event = match clerk.get_user(&uid).await {
            Ok(ClerkUser::Found(profile)) => UserEvent::Upsert(profile),
            Ok(ClerkUser::NotFound) => UserEvent::Deleted { id: uid, at: None },
            Err(e) => {
                tracing::warn!(user = id.as_str(), error = %e, "not repaired");
                fixed.failed += 1;
                continue;
            }
        };
        match writer.write(&event).await {
            Written::Applied | Written::WouldApply => fixed.written += 1,
            Written::Stale | Written::Duplicate | Written::WouldSkip => fixed.unchanged += 1,
            Written::Failed(reason) => {
                tracing::warn!(user = id.as_str(), reason, "not repaired");
                fixed.failed += 1;
            }
        }
    }
    bar.finish_and_clear();
    fixed
}
