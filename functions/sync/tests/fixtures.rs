//! The committed `cargo lambda invoke` fixtures (`tests/fixtures/sqs/`) behave as their README
//! says, so the documented commands keep showing what they claim.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use clerk_sync::adapters::memory::MemoryStore;
use clerk_sync::domain::outcome::Outcome;
use clerk_sync::domain::user::{Stored, UserId};
use sync::SyncWorker;

fn fixture(name: &str) -> SqsEvent {
    let path = devkit::workspace_root().join(format!("tests/fixtures/sqs/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn failures(store: &Arc<MemoryStore>, event: &SqsEvent) -> Vec<String> {
    let worker = SyncWorker::new(store.clone(), store.clone(), 30);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(worker.process_batch(event))
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

#[test]
fn the_good_batch_applies_and_ends_at_the_updated_user_even_when_invoked_twice() {
    let store = Arc::new(MemoryStore::default());
    let event = fixture("good-batch");
    assert!(failures(&store, &event).is_empty());
    assert!(failures(&store, &event).is_empty());
    let users = store.users();
    let Some(Stored::Live(user)) =
        users.get(&UserId::parse("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa").unwrap())
    else {
        panic!("user stored")
    };
    assert_eq!(user.email_addresses.len(), 2, "the user.updated state");
    for svix_id in ["msg_fixture_good_1", "msg_fixture_good_2"] {
        assert!(
            store
                .log_record(svix_id)
                .is_some_and(|r| r.outcome != Outcome::Failed)
        );
    }
}

#[test]
fn the_poison_batch_reports_exactly_the_poison_message() {
    let store = Arc::new(MemoryStore::default());
    assert_eq!(
        failures(&store, &fixture("poison-batch")),
        ["00000000-0000-4000-8000-0000000000ff"]
    );
    let record = store.log_record("msg_fixture_poison").unwrap();
    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(
        record.reason.as_deref(),
        Some("poison: user event has no updated_at")
    );
    assert_eq!(
        store
            .log_record("msg_fixture_poison_batch_1")
            .unwrap()
            .outcome,
        Outcome::Applied
    );
}
