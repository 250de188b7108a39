//! What the load sends and what it must end as: random user histories (a create, updates with
//! random `updated_at`, sometimes a delete), and each user's final state by the rules Clerk's
//! order implies — the newest `updated_at` wins, and a delete wins forever.
//!
//! The rules are stated here on their own, from the model's events, not through the domain's
//! ordering code: the oracle must be able to catch that code being wrong.

use std::collections::BTreeMap;

use serde_json::Value;

/// The sizes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub users: usize,
    /// Deliveries in all, duplicates included.
    pub deliveries: usize,
    /// Per cent of deliveries that are redeliveries of an event already in the plan.
    pub duplicate_percent: u32,
    /// Per cent of users whose history ends in a delete.
    pub delete_percent: u32,
    pub seed: u64,
}

impl Size {
    /// The full-size run of the issue: 500 users, 5,000 deliveries, 10 % duplicates.
    pub const FULL: Size = Size {
        users: 500,
        deliveries: 5_000,
        duplicate_percent: 10,
        delete_percent: 20,
        seed: 16,
    };

    /// This size, or the users and deliveries `LOAD_USERS` and `LOAD_DELIVERIES` ask for: the
    /// reduced-size tests of `make test` run at full size from `make load-tests`.
    pub fn or_from_env(self) -> Size {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
        };
        Size {
            users: read("LOAD_USERS").unwrap_or(self.users),
            deliveries: read("LOAD_DELIVERIES").unwrap_or(self.deliveries),
            ..self
        }
    }

    /// How long a run of this size may wait for its deliveries to be accepted, and then to
    /// converge: two minutes, or a fifth of a second per delivery if that is longer.
    pub fn patience(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.deliveries as u64 / 5).max(120))
    }

    /// Distinct events: the deliveries less the duplicates.
    pub fn events(&self) -> usize {
        let events = self.deliveries * 100 / (100 + self.duplicate_percent as usize);
        events.max(self.users)
    }
}

/// One event of a user's history, as Clerk would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub svix_id: String,
    pub user_id: String,
    pub kind: Kind,
    /// The webhook body.
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `user.created` or `user.updated` with this `updated_at` (ms).
    Upsert {
        updated_at: i64,
    },
    Deleted,
}

/// What a user's record must be once every event is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Final {
    /// Live, with the body of the event with the newest `updated_at`.
    Live { svix_id: String, body: String },
    /// Deleted (whatever came after).
    Deleted,
}

/// The plan of a run: every distinct event, by user, in Clerk's order.
#[derive(Debug, Clone)]
pub struct Model {
    pub size: Size,
    pub histories: BTreeMap<String, Vec<Event>>,
}

/// Clerk-like timestamps: the run's users were created around this time (ms).
const EPOCH_MS: i64 = 1_764_000_000_000;

impl Model {
    /// Random histories of `size.users` users with `size.events()` events in all.
    pub fn generate(size: Size) -> Self {
        let mut rng = fastrand::Rng::with_seed(size.seed);
        let created = fixture_json("user.created");
        let updated = fixture_json("user.updated");
        let deleted = fixture_json("user.deleted");
        let ids: Vec<String> = (0..size.users)
            .map(|i| format!("user_load{:x}n{i:05}", size.seed))
            .collect();
        // One create each, the rest spread at random; a user ending in a delete has one more.
        let mut counts = vec![1usize; size.users];
        for _ in size.users..size.events() {
            counts[rng.usize(..size.users)] += 1;
        }
        let mut histories = BTreeMap::new();
        for (i, id) in ids.iter().enumerate() {
            let events = counts[i];
            let ends_deleted = events > 1 && rng.u32(0..100) < size.delete_percent;
            let upserts = if ends_deleted { events - 1 } else { events };
            // Distinct `updated_at`s in random steps of up to a minute: the later in the history,
            // the newer.
            let mut at = EPOCH_MS + rng.i64(0..86_400_000);
            let mut history = Vec::with_capacity(events);
            for n in 0..upserts {
                at += rng.i64(1..60_000);
                let template = if n == 0 { &created } else { &updated };
                let svix_id = format!("msg_load{:x}u{i:05}e{n:03}", size.seed);
                history.push(Event {
                    body: upsert_body(template, id, at, n),
                    svix_id,
                    user_id: id.clone(),
                    kind: Kind::Upsert { updated_at: at },
                });
            }
            if ends_deleted {
                at += rng.i64(1..60_000);
                history.push(Event {
                    svix_id: format!("msg_load{:x}u{i:05}e{:03}", size.seed, upserts),
                    user_id: id.clone(),
                    kind: Kind::Deleted,
                    body: deleted_body(&deleted, id, at),
                });
            }
            histories.insert(id.clone(), history);
        }
        Self { size, histories }
    }

    /// Every distinct event.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.histories.values().flatten()
    }

    /// Each user's final state: deleted if any event deletes it, else the newest upsert's.
    pub fn finals(&self) -> BTreeMap<&str, Final> {
        self.histories
            .iter()
            .map(|(id, history)| (id.as_str(), final_of(history)))
            .collect()
    }
}

/// The final state of one user's history, in whatever order it arrives.
pub fn final_of(history: &[Event]) -> Final {
    if history.iter().any(|e| e.kind == Kind::Deleted) {
        return Final::Deleted;
    }
    let newest = history
        .iter()
        .max_by_key(|e| match e.kind {
            Kind::Upsert { updated_at } => updated_at,
            Kind::Deleted => i64::MIN,
        })
        .expect("every history has a create");
    Final::Live {
        svix_id: newest.svix_id.clone(),
        body: newest.body.clone(),
    }
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&devkit::fixture(name)).expect("fixtures are JSON")
}

/// `template` (a `user.created`/`user.updated` fixture) for user `id` at `updated_at`, with names
/// that tell the versions apart.
fn upsert_body(template: &Value, id: &str, updated_at: i64, n: usize) -> String {
    let mut body = template.clone();
    let data = &mut body["data"];
    data["id"] = id.into();
    data["updated_at"] = updated_at.into();
    data["first_name"] = format!("Load{n}").into();
    data["last_name"] = format!("At{updated_at}").into();
    data["username"] = format!("{}_{n}", id.trim_start_matches("user_")).into();
    body["timestamp"] = updated_at.into();
    body.to_string()
}

fn deleted_body(template: &Value, id: &str, at: i64) -> String {
    let mut body = template.clone();
    body["data"]["id"] = id.into();
    body["timestamp"] = at.into();
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Size = Size {
        users: 40,
        deliveries: 330,
        duplicate_percent: 10,
        delete_percent: 20,
        seed: 7,
    };

    #[test]
    fn a_model_has_the_users_and_distinct_events_its_size_asks_for() {
        let model = Model::generate(SMALL);
        assert_eq!(model.histories.len(), 40);
        assert_eq!(model.events().count(), 300);
        let ids: std::collections::BTreeSet<_> = model.events().map(|e| &e.svix_id).collect();
        assert_eq!(ids.len(), 300, "svix ids are unique");
    }

    #[test]
    fn every_history_starts_with_a_create_and_its_updates_are_newer() {
        for history in Model::generate(SMALL).histories.values() {
            assert!(history[0].body.contains("\"user.created\""));
            let ats: Vec<i64> = history
                .iter()
                .filter_map(|e| match e.kind {
                    Kind::Upsert { updated_at } => Some(updated_at),
                    Kind::Deleted => None,
                })
                .collect();
            assert!(ats.windows(2).all(|w| w[0] < w[1]), "{ats:?}");
        }
    }

    #[test]
    fn some_users_end_deleted_and_a_delete_wins_whatever_comes_after() {
        let model = Model::generate(SMALL);
        let finals = model.finals();
        let deleted = finals.values().filter(|f| **f == Final::Deleted).count();
        assert!(deleted > 0 && deleted < 40, "{deleted} of 40 deleted");
        let (_, history) = model
            .histories
            .iter()
            .find(|(_, h)| h.iter().any(|e| e.kind == Kind::Deleted))
            .unwrap();
        let mut reversed = history.clone();
        reversed.reverse();
        assert_eq!(final_of(&reversed), Final::Deleted);
    }

    #[test]
    fn the_newest_update_wins_in_any_order() {
        let model = Model::generate(SMALL);
        let (_, history) = model
            .histories
            .iter()
            .find(|(_, h)| h.len() > 2 && h.iter().all(|e| e.kind != Kind::Deleted))
            .unwrap();
        let newest = history.last().unwrap().svix_id.clone();
        let mut shuffled = history.clone();
        fastrand::Rng::with_seed(3).shuffle(&mut shuffled);
        assert!(matches!(final_of(&shuffled), Final::Live { svix_id, .. } if svix_id == newest));
    }

    #[test]
    fn bodies_are_user_events_the_domain_parses() {
        use clerk_sync::domain::user::UserEvent;
        for event in Model::generate(SMALL).events() {
            let parsed = UserEvent::parse(&event.body).expect("parses");
            assert_eq!(parsed.user_id().as_str(), event.user_id);
        }
    }

    #[test]
    fn the_same_seed_plans_the_same_run() {
        let a = Model::generate(SMALL);
        let b = Model::generate(SMALL);
        assert_eq!(a.histories, b.histories);
    }
}
