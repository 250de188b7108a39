//! Convergence: for random histories of several users — creates, updates at random times,
//! deletes, redeliveries — in any order and split into any batches, the users table ends in the
//! model's state: latest by `updated_at`, and a delete wins forever.
//!
//! The full sync pipeline (SQS message decoding, parsing, concurrent batch processing, the event
//! log) runs every case. 10,000 cases run against the in-memory store, which evaluates the
//! domain's ordering precondition (`Precondition::holds`); a smaller number run the whole
//! pipeline against DynamoDB in the emulator. That the adapter's condition expression is the same
//! precondition is property-tested on its own, stored item by stored item, in `dynamodb.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use aws_lambda_events::event::sqs::SqsMessage;
use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::adapters::memory::MemoryStore;
use clerk_sync::domain::outcome::Outcome;
use clerk_sync::domain::user::{Stored, UserId};
use clerk_sync::ports::UserStore;
use devkit::sqs_event::{event, message};
use proptest::prelude::*;
use sync::SyncWorker;

const USERS: usize = 3;
const TIMES: i64 = 12;

/// One event of a history, with the Svix id it was sent under.
#[derive(Debug, Clone)]
enum Event {
    Upsert { created: bool, user: usize, t: i64 },
    Delete { user: usize },
}

/// Bodies are built once: parsing them is part of every case, building them need not be.
static BODIES: LazyLock<HashMap<(bool, usize, i64), String>> = LazyLock::new(|| {
    let mut bodies = HashMap::new();
    for user in 0..USERS {
        for t in 1..=TIMES {
            for created in [true, false] {
                let kind = if created {
                    "user.created"
                } else {
                    "user.updated"
                };
                bodies.insert(
                    (created, user, t),
                    devkit::clerk::user_upsert(kind, &user_id(user, ""), t),
                );
            }
        }
    }
    bodies
});

fn user_id(user: usize, namespace: &str) -> String {
    format!("user_{namespace}{user}")
}

fn body(e: &Event, namespace: &str) -> String {
    let body = match e {
        Event::Upsert { created, user, t } => BODIES[&(*created, *user, *t)].clone(),
        Event::Delete { user } => devkit::clerk::user_deleted(&user_id(*user, ""), 99),
    };
    let user = match e {
        Event::Upsert { user, .. } | Event::Delete { user } => *user,
    };
    body.replace(
        &format!("\"{}\"", user_id(user, "")),
        &format!("\"{}\"", user_id(user, namespace)),
    )
}

/// A history: distinct events, each sent under its own Svix id, some delivered twice, shuffled
/// and cut into batches of 1..=10.
#[derive(Debug, Clone)]
struct Case {
    events: Vec<Event>,
    /// Deliveries: index into `events`, in arrival order, cut into batches.
    batches: Vec<Vec<usize>>,
}

fn case() -> impl Strategy<Value = Case> {
    let event = prop_oneof![
        5 => (any::<bool>(), 0..USERS, 1..=TIMES)
            .prop_map(|(created, user, t)| Event::Upsert { created, user, t }),
        1 => (0..USERS).prop_map(|user| Event::Delete { user }),
    ];
    proptest::collection::vec(event, 1..20)
        .prop_flat_map(|events| {
            let n = events.len();
            let redelivered = proptest::collection::vec(0..n, 0..=n / 2);
            (Just(events), redelivered)
        })
        .prop_flat_map(|(events, redelivered)| {
            let deliveries: Vec<usize> = (0..events.len()).chain(redelivered).collect();
            let cuts = proptest::collection::vec(1usize..=10, deliveries.len());
            (Just(events), Just(deliveries).prop_shuffle(), cuts)
        })
        .prop_map(|(events, deliveries, cuts)| {
            let mut batches = Vec::new();
            let mut rest = deliveries.as_slice();
            for cut in cuts {
                if rest.is_empty() {
                    break;
                }
                let (batch, tail) = rest.split_at(cut.min(rest.len()));
                batches.push(batch.to_vec());
                rest = tail;
            }
            Case { events, batches }
        })
}

/// What each user should end as: `Some(t)` live at `t`, `None` deleted; absent if never seen.
fn model(events: &[Event]) -> BTreeMap<usize, Option<i64>> {
    let mut out: BTreeMap<usize, Option<i64>> = BTreeMap::new();
    for e in events {
        if let Event::Delete { user } = e {
            out.insert(*user, None);
        }
    }
    for e in events {
        if let Event::Upsert { user, t, .. } = e {
            match out.get(user) {
                Some(None) => {}
                Some(Some(stored)) if stored >= t => {}
                _ => {
                    out.insert(*user, Some(*t));
                }
            }
        }
    }
    out
}

/// Runs a case through the sync worker, batch after batch; no delivery may fail.
async fn run(case: &Case, worker: &SyncWorker, namespace: &str) {
    for (b, batch) in case.batches.iter().enumerate() {
        let messages: Vec<SqsMessage> = batch
            .iter()
            .enumerate()
            .map(|(i, &e)| {
                let svix_id = format!("msg_{namespace}{e}");
                message(
                    &format!("m-{b}-{i}"),
                    &svix_id,
                    &body(&case.events[e], namespace),
                    1,
                )
            })
            .collect();
        let response = worker.process_batch(&event(messages)).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "no delivery of a valid history fails: {:?}",
            response.batch_item_failures
        );
    }
}

async fn check(
    case: &Case,
    store: &dyn UserStore,
    log: impl AsyncFn(&str) -> Option<Outcome>,
    namespace: &str,
) -> Result<(), TestCaseError> {
    let expected = model(&case.events);
    for user in 0..USERS {
        let stored = store
            .get(&UserId::parse(&user_id(user, namespace)).unwrap())
            .await
            .unwrap();
        let actual = match &stored {
            None => None,
            Some(Stored::Tombstone { .. }) => Some(None),
            Some(Stored::Live(p)) => {
                prop_assert_eq!(
                    p.first_name.clone(),
                    Some(format!("Version {}", p.updated_at)),
                    "content belongs to its updated_at"
                );
                Some(Some(p.updated_at))
            }
        };
        prop_assert_eq!(actual, expected.get(&user).copied(), "user {}", user);
    }
    // Every event's fate is recorded, and none is recorded as failed.
    for e in 0..case.events.len() {
        let outcome = log(&format!("msg_{namespace}{e}")).await;
        prop_assert!(
            matches!(
                outcome,
                Some(Outcome::Applied | Outcome::Stale | Outcome::Duplicate)
            ),
            "event {} logged as {:?}",
            e,
            outcome
        );
    }
    Ok(())
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn any_history_in_any_order_and_batching_converges_on_the_model(case in case()) {
        RUNTIME.block_on(async {
            let store = Arc::new(MemoryStore::default());
            let worker = SyncWorker::new(store.clone(), store.clone(), 30);
            run(&case, &worker, "").await;
            check(&case, store.as_ref(), async |id: &str| store.log_record(id).map(|r| r.outcome), "").await
        })?;
    }
}

struct Tables {
    users: DynamoUserStore,
    log: DynamoEventLog,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    RUNTIME.block_on(async {
        let sdk = devkit::emulator::Emulator::shared().sdk_config().await;
        let resources = devkit::resources::provision(
            &sdk,
            devkit::resources::Names::unique("convergence"),
            devkit::signing::DEV_WEBHOOK_SECRET,
        )
        .await
        .unwrap();
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        Tables {
            users: DynamoUserStore::new(client.clone(), &resources.names.users_table),
            log: DynamoEventLog::new(client, &resources.names.event_log_table),
        }
    })
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn dynamodb_conditional_writes_converge_on_the_same_model(case in case()) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CASE: AtomicU32 = AtomicU32::new(0);
        // Each case gets its own users and Svix ids in the shared tables.
        let namespace = format!("c{}x", CASE.fetch_add(1, Ordering::Relaxed));
        let tables = &*TABLES;
        RUNTIME.block_on(async {
            let worker = SyncWorker::new(
                Arc::new(tables.users.clone()),
                Arc::new(tables.log.clone()),
                30,
            );
            run(&case, &worker, &namespace).await;
            check(&case, &tables.users, async |id: &str| {
                tables.log.get(id).await.unwrap().map(|r| r.outcome)
            }, &namespace).await
        })?;
    }
}

#[test]
fn the_model_lets_a_delete_win_over_any_update() {
    let events = [
        Event::Upsert {
            created: true,
            user: 0,
            t: 3,
        },
        Event::Delete { user: 0 },
        Event::Upsert {
            created: false,
            user: 0,
            t: 9,
        },
        Event::Upsert {
            created: false,
            user: 1,
            t: 2,
        },
        Event::Upsert {
            created: true,
            user: 1,
            t: 1,
        },
    ];
    assert_eq!(model(&events), BTreeMap::from([(0, None), (1, Some(2))]));
}
