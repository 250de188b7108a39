//! `inspect`: one event by its svix id (its event-log record and the user's bookkeeping now), or
//! one user's timeline (`--user`, from the `by_user` index). Event-log records hold no personal
//! data; the user's profile (emails, names, metadata) is shown only with `--show-pii`.

use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::user::{Stored, UserId};
use clerk_sync::ports::UserStore;

use crate::aws::{bookkeeping, timeline};
use crate::target::Target;

/// What inspect printed, and whether it found what it was asked about.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub lines: Vec<String>,
    pub found: bool,
}

/// Unix ms as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

fn record_lines(r: &LogRecord) -> Vec<String> {
    let mut lines = vec![
        format!("event        {}", r.svix_id),
        format!(
            "source       {}",
            serde_json::to_value(r.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        format!("type         {}", r.event_type.as_deref().unwrap_or("-")),
        format!(
            "user         {}",
            r.user_id.as_ref().map_or("-", UserId::as_str)
        ),
        format!("outcome      {}", r.outcome.as_str()),
        format!("attempts     {}", r.attempts),
    ];
    if let Some(at) = r.received_at {
        lines.push(format!("received     {}", utc(at)));
    }
    lines.push(format!("processed    {}", utc(r.processed_at)));
    if !r.message_id.is_empty() {
        lines.push(format!("sqs message  {}", r.message_id));
    }
    if let Some(reason) = &r.reason {
        lines.push(format!("reason       {reason}"));
    }
    lines
}

/// The user's bookkeeping now, and with `show_pii` the stored profile.
async fn user_lines(target: &Target, id: &str, show_pii: bool) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    match bookkeeping::get(&target.dynamodb(), &target.outputs.users_table, id).await? {
        None => lines.push(format!("user now     {id}: not in the users table")),
        Some(b) => {
            let state = if b.deleted {
                "deleted (tombstone)".to_owned()
            } else {
                format!("live, updated_at {}", b.updated_at.map_or("-".into(), utc))
            };
            lines.push(format!("user now     {id}: {state}"));
            lines.push(format!(
                "written by   {}{}",
                b.writer.as_deref().unwrap_or("-"),
                b.synced_at
                    .map(|t| format!(" at {}", utc(t)))
                    .unwrap_or_default()
            ));
        }
    }
    if show_pii {
        if let Ok(uid) = UserId::parse(id)
            && let Some(Stored::Live(profile)) = target
                .users()
                .get(&uid)
                .await
                .map_err(|e| anyhow::anyhow!(clerk_sync::telemetry::error_chain(&e)))?
        {
            lines.push(format!("profile      {}", serde_json::to_string(&profile)?));
        }
    } else {
        lines.push("profile      hidden (--show-pii shows emails, names, metadata)".into());
    }
    Ok(lines)
}

/// One event by its event-log key (a svix id, `sqs:…`, or a writer id such as `backfill:…`).
pub async fn event(target: &Target, key: &str, show_pii: bool) -> anyhow::Result<Found> {
    let record = target
        .event_log()
        .get(key)
        .await
        .map_err(|e| anyhow::anyhow!(clerk_sync::telemetry::error_chain(&e)))?;
    let Some(record) = record else {
        return Ok(Found {
            lines: vec![format!(
                "{key}: no event-log record (never processed, or past its retention)"
            )],
            found: false,
        });
    };
    let mut lines = record_lines(&record);
    if let Some(user) = &record.user_id {
        lines.extend(user_lines(target, user.as_str(), show_pii).await?);
    }
    Ok(Found { lines, found: true })
}

/// A user's last `limit` events, oldest first, and the bookkeeping now.
pub async fn user(
    target: &Target,
    id: &str,
    limit: usize,
    show_pii: bool,
) -> anyhow::Result<Found> {
    let records = timeline::user_events(
        &target.dynamodb(),
        &target.outputs.event_log_table,
        id,
        limit,
    )
    .await?;
    let mut lines = vec![format!(
        "{:<24} {:<10} {:<14} {:<9} {:>3}  {}",
        "RECEIVED", "SOURCE", "TYPE", "OUTCOME", "TRY", "EVENT / REASON"
    )];
    for r in &records {
        let source = serde_json::to_value(r.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        lines.push(format!(
            "{:<24} {:<10} {:<14} {:<9} {:>3}  {}{}",
            r.received_at.map_or("-".into(), utc),
            source,
            r.event_type.as_deref().unwrap_or("-"),
            r.outcome.as_str(),
            r.attempts,
            r.svix_id,
            r.reason
                .as_ref()
                .map(|reason| format!(" ({reason})"))
                .unwrap_or_default()
        ));
    }
    let user = user_lines(target, id, show_pii).await?;
    let found = !records.is_empty() || !user[0].ends_with("not in the users table");
    lines.extend(user);
    Ok(Found { lines, found })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_milliseconds_print_as_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_764_072_000_123), "2025-11-25T12:00:00.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
