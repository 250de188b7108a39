//! Which user write wins, stated once: the precondition an event's write needs, and why a refused
//! write was refused.
//!
//! A store evaluates [`Precondition::holds`] atomically with the write (the in-memory store
//! calls it under its lock; the DynamoDB adapter translates the precondition into the condition
//! of its one `PutItem`), and explains a refusal with [`Refusal::explain`] from what it reads
//! back. Nothing else in the workspace says which write wins.

use crate::outcome::Outcome;
use crate::user::{UserEvent, Version};

/// What must be true of the stored record for an event's write to go ahead.
///
/// A create/update applies only when its `updated_at` is newer than the stored live record's; a
/// delete applies to anything but a tombstone, so nothing brings a deleted user back; a record
/// without a numeric `updated_at` is older than any event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// A create/update at this `updated_at`: nothing is stored, or a live record whose
    /// `updated_at` is older (or missing).
    AbsentOrLiveOlderThan(i64),
    /// A delete: nothing is stored, or a live record.
    AbsentOrLive,
}

impl Precondition {
    /// The precondition of `event`'s write.
    pub fn of(event: &UserEvent) -> Self {
        match event {
            UserEvent::Upsert(profile) => Self::AbsentOrLiveOlderThan(profile.updated_at),
            UserEvent::Deleted { .. } => Self::AbsentOrLive,
        }
    }

    /// Whether the write may go ahead over `current` (`None`: nothing stored).
    pub fn holds(&self, current: Option<Version>) -> bool {
        match (self, current) {
            (_, None) => true,
            (_, Some(Version::Deleted)) => false,
            (Self::AbsentOrLive, Some(Version::Live { .. })) => true,
            (Self::AbsentOrLiveOlderThan(event_at), Some(Version::Live { updated_at })) => {
                updated_at.is_none_or(|stored_at| stored_at < *event_at)
            }
        }
    }
}

/// Why a store refused an event's write, told from the record it refused it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Older than the stored state, or about a deleted user.
    Stale,
    /// The stored state already is this event's (same `updated_at`, or a second delete).
    Duplicate,
    /// The stored state was written by this very writer: a redelivery of the event that
    /// produced it.
    AlreadyApplied,
    /// The precondition holds of the record as read back: it changed between the write and the
    /// read. Only a retry, which evaluates the precondition afresh, can settle it.
    Raced,
}

impl Refusal {
    /// Explains a refused write of `event` by `writer` from the stored record's `version` and the
    /// id of the write that produced it (`stored_writer`), which is all a store needs to read back.
    pub fn explain(
        version: Version,
        stored_writer: Option<&str>,
        writer: &str,
        event: &UserEvent,
    ) -> Self {
        if stored_writer == Some(writer) {
            Self::AlreadyApplied
        } else if Precondition::of(event).holds(Some(version)) {
            Self::Raced
        } else if version == event.version() {
            Self::Duplicate
        } else {
            Self::Stale
        }
    }

    /// The outcome the event is acknowledged with; `None` for [`Refusal::Raced`], which is a
    /// failure to retry.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Self::Stale => Some(Outcome::Stale),
            Self::Duplicate => Some(Outcome::Duplicate),
            Self::AlreadyApplied => Some(Outcome::Applied),
            Self::Raced => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;
    use crate::user::{Stored, UserId, UserProfile};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn profile(id: &str, updated_at: i64) -> Box<UserProfile> {
        Box::new(UserProfile {
            id: UserId::parse(id).unwrap(),
            email: Some(format!("{id}-{updated_at}@example.com")),
            email_addresses: vec![],
            username: None,
            first_name: Some(format!("v{updated_at}")),
            last_name: None,
            image_url: None,
            public_metadata: Metadata::null(),
            unsafe_metadata: Metadata::null(),
            private_metadata: Metadata::null(),
            banned: false,
            locked: false,
            created_at: Some(0),
            updated_at,
            last_sign_in_at: None,
        })
    }

    fn upsert(t: i64) -> UserEvent {
        UserEvent::Upsert(profile("user_1", t))
    }

    fn delete() -> UserEvent {
        UserEvent::Deleted {
            id: UserId::parse("user_1").unwrap(),
            at: None,
        }
    }

    fn live(t: i64) -> Option<Version> {
        Some(Version::Live {
            updated_at: Some(t),
        })
    }

    /// `explain` for a writer other than the stored one.
    fn refusal(version: Version, event: &UserEvent) -> Refusal {
        Refusal::explain(version, Some("msg_stored"), "msg_new", event)
    }

    #[test]
    fn every_event_applies_to_an_unknown_user() {
        assert!(Precondition::of(&upsert(1)).holds(None));
        assert!(Precondition::of(&delete()).holds(None));
    }

    #[test]
    fn a_record_without_updated_at_is_older_than_any_event() {
        let odd = Some(Version::Live { updated_at: None });
        assert!(Precondition::of(&upsert(i64::MIN)).holds(odd));
    }

    #[test]
    fn stale_update_does_not_overwrite_newer_state_and_equal_is_a_duplicate() {
        let stored = live(20);
        assert!(!Precondition::of(&upsert(10)).holds(stored));
        assert!(!Precondition::of(&upsert(20)).holds(stored));
        assert!(Precondition::of(&upsert(30)).holds(stored));
        assert_eq!(refusal(stored.unwrap(), &upsert(10)), Refusal::Stale);
        assert_eq!(refusal(stored.unwrap(), &upsert(20)), Refusal::Duplicate);
    }

    #[test]
    fn deleted_user_is_never_resurrected_by_older_or_newer_updates() {
        for t in [1, 5, 1_000_000] {
            assert!(!Precondition::of(&upsert(t)).holds(Some(Version::Deleted)));
            assert_eq!(refusal(Version::Deleted, &upsert(t)), Refusal::Stale);
        }
        assert!(!Precondition::of(&delete()).holds(Some(Version::Deleted)));
        assert_eq!(refusal(Version::Deleted, &delete()), Refusal::Duplicate);
        assert!(Precondition::of(&delete()).holds(live(i64::MAX)));
    }

    #[test]
    fn a_refusal_over_the_writer_s_own_state_is_a_redelivery_and_a_holding_one_a_race() {
        let stored = live(20).unwrap();
        assert_eq!(
            Refusal::explain(stored, Some("msg_1"), "msg_1", &upsert(10)),
            Refusal::AlreadyApplied
        );
        assert_eq!(Refusal::AlreadyApplied.outcome(), Some(Outcome::Applied));
        // Refused, yet the record read back is older: it changed in between.
        assert_eq!(
            Refusal::explain(stored, None, "msg_1", &upsert(30)),
            Refusal::Raced
        );
        assert_eq!(Refusal::Raced.outcome(), None);
    }

    #[test]
    fn an_event_s_version_is_the_version_of_what_its_write_stores() {
        for event in [upsert(7), delete()] {
            assert_eq!(event.version(), event.stored().version());
        }
    }

    /// One user's history: upserts at some `updated_at`s (content determined by the time, as in
    /// Clerk) and possibly deletes.
    fn history() -> impl Strategy<Value = Vec<UserEvent>> {
        let event = prop_oneof![
            4 => (0usize..3, 1i64..20).prop_map(|(u, t)| UserEvent::Upsert(profile(&format!("user_{u}"), t))),
            1 => (0usize..3).prop_map(|u| UserEvent::Deleted { id: UserId::parse(&format!("user_{u}")).unwrap(), at: Some(99) }),
        ];
        proptest::collection::vec(event, 0..24)
    }

    /// The model: delete wins forever, otherwise the greatest `updated_at`.
    fn model(events: &[UserEvent]) -> BTreeMap<UserId, Stored> {
        let mut out = BTreeMap::new();
        for e in events {
            if let UserEvent::Deleted { .. } = e {
                out.insert(e.user_id().clone(), e.stored());
            }
        }
        for e in events {
            if let UserEvent::Upsert(p) = e {
                let newer = match out.get(&p.id) {
                    None => true,
                    Some(Stored::Live(s)) => p.updated_at > s.updated_at,
                    Some(Stored::Tombstone { .. }) => false,
                };
                if newer {
                    out.insert(p.id.clone(), e.stored());
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn any_order_with_duplicates_converges_on_latest_state_and_delete_wins(
            (events, order) in history().prop_flat_map(|h| {
                let doubled: Vec<UserEvent> = h.iter().chain(h.iter()).cloned().collect();
                let n = doubled.len();
                (Just(doubled), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
            })
        ) {
            let mut table: BTreeMap<UserId, Stored> = BTreeMap::new();
            for i in order {
                let event = &events[i];
                let current = table.get(event.user_id()).map(Stored::version);
                if Precondition::of(event).holds(current) {
                    table.insert(event.user_id().clone(), event.stored());
                } else {
                    let refusal = Refusal::explain(current.unwrap(), None, "msg", event);
                    prop_assert!(matches!(refusal, Refusal::Stale | Refusal::Duplicate));
                }
            }
            prop_assert_eq!(table, model(&events));
        }
    }
}
