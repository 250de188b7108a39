//! `resync ID…`: fetches users by id from Clerk's Backend API and applies each with the same
//! write as the backfill (for a support ticket: "my profile is out of date"). A user Clerk does
//! not have is reported, not deleted: `reconcile --fix` tombstones such users after checking.

use clerk_sync::domain::user::{UserEvent, UserId};
use clerk_sync::ports::ClerkUser;

use crate::clerk::ClerkClient;
use crate::exit;
use crate::write::{Writer, Written};

/// One user's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resynced {
    Written(Written),
    NotInClerk,
    /// Clerk could not answer; the reason.
    ClerkFailed(String),
}

#[derive(Debug, Clone)]
pub struct Report {
    pub users: Vec<(UserId, Resynced)>,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        let failed = self.users.iter().any(|(_, r)| {
            matches!(
                r,
                Resynced::ClerkFailed(_) | Resynced::Written(Written::Failed(_))
            )
        });
        if failed {
            exit::PARTIAL
        } else if self.users.iter().any(|(_, r)| *r == Resynced::NotInClerk) {
            exit::NOT_FOUND
        } else {
            exit::OK
        }
    }

    /// One line per user.
    pub fn lines(&self) -> Vec<String> {
        self.users
            .iter()
            .map(|(id, r)| {
                let what = match r {
                    Resynced::Written(Written::Applied) => "written".to_owned(),
                    Resynced::Written(Written::WouldApply) => "would be written".to_owned(),
                    Resynced::Written(Written::Stale | Written::WouldSkip) => {
                        "unchanged: the table holds something newer, or a tombstone".to_owned()
                    }
                    Resynced::Written(Written::Duplicate) => {
                        "unchanged: already current".to_owned()
                    }
                    Resynced::Written(Written::Failed(reason)) => format!("FAILED: {reason}"),
                    Resynced::NotInClerk => {
                        "not in Clerk (nothing written; `reconcile --fix` tombstones it)".to_owned()
                    }
                    Resynced::ClerkFailed(reason) => format!("FAILED: {reason}"),
                };
                format!("{}  {what}", id.as_str())
            })
            .collect()
    }

    pub fn summary(&self) -> String {
        let count = |f: fn(&Resynced) -> bool| self.users.iter().filter(|(_, r)| f(r)).count();
        format!(
            "resync: {} users, {} written, {} unchanged, {} not in Clerk, {} failed",
            self.users.len(),
            count(|r| matches!(r, Resynced::Written(w) if w.writes())),
            count(|r| matches!(
                r,
                Resynced::Written(Written::Stale | Written::WouldSkip | Written::Duplicate)
            )),
            count(|r| *r == Resynced::NotInClerk),
            count(|r| matches!(
                r,
                Resynced::ClerkFailed(_) | Resynced::Written(Written::Failed(_))
            )),
        )
    }
}

pub async fn run(clerk: &ClerkClient, writer: &Writer, ids: &[UserId]) -> Report {
    let mut users = Vec::with_capacity(ids.len());
    for id in ids {
        let fate = match clerk.get_user(id).await {
            Ok(ClerkUser::Found(profile)) => {
                Resynced::Written(writer.write(&UserEvent::Upsert(profile)).await)
            }
            Ok(ClerkUser::NotFound) => Resynced::NotInClerk,
            Err(e) => Resynced::ClerkFailed(e.to_string()),
        };
        users.push((id.clone(), fate));
    }
    Report { users }
}
