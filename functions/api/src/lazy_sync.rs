//! Lazy sync: a caller Clerk knows but the webhook has not brought yet is fetched from Clerk,
//! stored under the sync worker's ordering rules, and recorded in the event log.

use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::outcome::{Failure, Outcome};
use clerk_sync::domain::user::{Stored, UserEvent, UserId, UserProfile};
use clerk_sync::ports::{ClerkApi, ClerkUser};
use clerk_sync::telemetry::error_chain;
use clerk_sync::telemetry::metrics::Document;

use clerk_sync::clock::now_ms;

use crate::{Api, ApiError, measure};

/// What a lazy sync came to, for its metric.
enum Synced {
    Stored(Outcome),
    NotInClerk,
}

impl Api {
    /// The user exists in Clerk but the webhook has not brought it yet: fetch it, store it under
    /// the same ordering rules as the sync worker (so a newer webhook or a delete is never
    /// overwritten), record it in the event log, and answer with what is stored. Counted by
    /// outcome when lazy sync is on.
    pub(crate) async fn lazy_sync(
        &self,
        id: &UserId,
        document: &mut Document<'_>,
    ) -> Result<UserProfile, ApiError> {
        let Some(clerk) = &self.deps.clerk else {
            return Err(ApiError::UserNotFound);
        };
        let (synced, answer) = match self.fetch_and_store(clerk.as_ref(), id).await {
            Ok((synced, answer)) => (Ok(synced), answer),
            Err(e) => (Err(e.status().1), Err(e)),
        };
        let outcome = match synced {
            Ok(Synced::Stored(outcome)) => outcome.as_str(),
            Ok(Synced::NotInClerk) => "not_in_clerk",
            Err(code) => code,
        };
        measure::lazy_sync(document, outcome);
        answer
    }

    /// The fetch and the conditional write; the answer may still be an error after a stored
    /// outcome (a refused write re-reads the store).
    async fn fetch_and_store(
        &self,
        clerk: &dyn ClerkApi,
        id: &UserId,
    ) -> Result<(Synced, Result<UserProfile, ApiError>), ApiError> {
        let profile = match clerk.get_user(id).await? {
            ClerkUser::Found(profile) => profile,
            ClerkUser::NotFound => return Ok((Synced::NotInClerk, Err(ApiError::UserNotFound))),
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
        let answer = match (outcome, event) {
            (Outcome::Applied, UserEvent::Upsert(profile)) => Ok(*profile),
            // Refused: something newer (a webhook, another lazy sync, a delete) is stored.
            _ => match self.stored(id).await {
                Ok(Some(Stored::Live(user))) => Ok(*user),
                Ok(_) => Err(ApiError::UserNotFound),
                Err(e) => Err(e),
            },
        };
        Ok((Synced::Stored(outcome), answer))
    }
}
