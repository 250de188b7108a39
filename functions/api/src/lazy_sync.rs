//! Lazy sync: a caller Clerk knows but the webhook has not brought yet is fetched from Clerk,
//! stored under the sync worker's ordering rules, and recorded in the event log.

use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::outcome::{Failure, Outcome};
use clerk_sync::domain::user::{Stored, UserEvent, UserId, UserProfile};
use clerk_sync::ports::ClerkUser;
use clerk_sync::telemetry::error_chain;

use clerk_sync::clock::now_ms;

use crate::{Api, ApiError};

impl Api {
    /// The user exists in Clerk but the webhook has not brought it yet: fetch it, store it under
    /// the same ordering rules as the sync worker (so a newer webhook or a delete is never
    /// overwritten), record it in the event log, and answer with what is stored.
    pub(crate) async fn lazy_sync(&self, id: &UserId) -> Result<UserProfile, ApiError> {
        let Some(clerk) = &self.deps.clerk else {
            return Err(ApiError::UserNotFound);
        };
        let profile = match clerk.get_user(id).await? {
            ClerkUser::Found(profile) => profile,
            ClerkUser::NotFound => return Err(ApiError::UserNotFound),
        };
        let event = UserEvent::Upsert(profile);
        // Unique to this fetch: another writer's id never matches it, so a refused write is
        // never mistaken for a redelivery of our own.
        let writer = LogRecord::lazy_sync_writer();
        let applied =
            (self.deps.users.apply(&event, &writer, now_ms()).await).map_err(Failure::from);
        let record =
            LogRecord::lazy_sync(&writer, id, &applied, now_ms(), self.deps.retention_days);
        if let Err(e) = self.deps.log.record(&record).await {
            // The user is stored (or not) either way; the audit record is what is missing.
            tracing::error!(error = %error_chain(&e), writer, "lazy sync not recorded in the event log");
        }
        let outcome = applied.map_err(ApiError::NotStored)?;
        tracing::info!(
            outcome = outcome.as_str(),
            writer,
            "user fetched from Clerk (lazy sync)"
        );
        match (outcome, event) {
            (Outcome::Applied, UserEvent::Upsert(profile)) => Ok(*profile),
            // Refused: something newer (a webhook, another lazy sync, a delete) is stored.
            _ => match self.stored(id).await? {
                Some(Stored::Live(user)) => Ok(*user),
                _ => Err(ApiError::UserNotFound),
            },
        }
    }
}
