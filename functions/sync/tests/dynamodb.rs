//! The sync function against DynamoDB and SQS in the local emulator: ordering, duplicates,
//! deletes, poison and transient failures, the event log, and the write budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use clerk_sync::adapters::dynamodb::{DynamoEventLog, DynamoUserStore};
use clerk_sync::domain::event_log::LogRecord;
use clerk_sync::domain::outcome::Outcome;
use clerk_sync::domain::user::{Stored, UserId};
use devkit::clerk::{user_deleted, user_upsert};
use devkit::emulator::{Emulator, sdk_config_for};
use devkit::resources::{Names, Resources, provision};
use devkit::signing::DEV_WEBHOOK_SECRET;
use devkit::sqs_event::{event, message};
use sync::SyncWorker;

struct Harness {
    sdk: aws_config::SdkConfig,
    resources: Resources,
    worker: SyncWorker,
}

async fn harness(label: &str) -> Harness {
    harness_with(Names::unique(label)).await
}

async fn harness_with(names: Names) -> Harness {
    clerk_sync::telemetry::init_for_tests();
    let sdk = Emulator::shared().sdk_config().await;
    let resources = provision(&sdk, names, DEV_WEBHOOK_SECRET).await.unwrap();
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    Harness {
        worker: worker(
            &client,
            &resources.names.users_table,
            &resources.names.event_log_table,
        ),
        sdk,
        resources,
    }
}

fn worker(client: &aws_sdk_dynamodb::Client, users: &str, log: &str) -> SyncWorker {
    SyncWorker::new(
        Arc::new(DynamoUserStore::new(client.clone(), users)),
        Arc::new(DynamoEventLog::new(client.clone(), log)),
        30,
    )
}

fn id(raw: &str) -> UserId {
    UserId::parse(raw).unwrap()
}

/// A message carrying a `user.created`/`user.updated` for `user` at `t`.
fn upsert(svix_id: &str, event_type: &str, user: &str, t: i64) -> SqsMessage {
    message(
        &format!("m-{svix_id}"),
        svix_id,
        &user_upsert(event_type, user, t),
        1,
    )
}

fn delete(svix_id: &str, user: &str) -> SqsMessage {
    message(&format!("m-{svix_id}"), svix_id, &user_deleted(user, 99), 1)
}

impl Harness {
    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// Runs one batch through `worker`; returns the ids it reported failed.
    async fn run_with(&self, worker: &SyncWorker, messages: Vec<SqsMessage>) -> Vec<String> {
        worker
            .process_batch(&event(messages))
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    async fn run(&self, messages: Vec<SqsMessage>) -> Vec<String> {
        self.run_with(&self.worker, messages).await
    }

    async fn user(&self, user: &str) -> Option<Stored> {
        use clerk_sync::ports::UserStore;
        DynamoUserStore::new(self.dynamodb(), &self.resources.names.users_table)
            .get(&id(user))
            .await
            .unwrap()
    }

    fn first_name(stored: &Option<Stored>) -> Option<String> {
        match stored {
            Some(Stored::Live(p)) => p.first_name.clone(),
            _ => None,
        }
    }

    async fn raw_user(&self, user: &str) -> HashMap<String, AttributeValue> {
        self.dynamodb()
            .get_item()
            .table_name(&self.resources.names.users_table)
            .key("id", AttributeValue::S(user.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default()
    }

    async fn log(&self, svix_id: &str) -> LogRecord {
        DynamoEventLog::new(self.dynamodb(), &self.resources.names.event_log_table)
            .get(svix_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no event-log record for {svix_id}"))
    }

    async fn table_is_empty(&self, table: &str) -> bool {
        let out = self
            .dynamodb()
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap();
        out.count == 0
    }
}

#[tokio::test]
async fn a_batch_with_one_poison_message_and_nine_good_ones_reports_only_the_poison_one() {
    let h = harness("poison").await;
    let mut batch: Vec<SqsMessage> = (0..9)
        .map(|i| {
            upsert(
                &format!("msg_ok{i}"),
                "user.created",
                &format!("user_p{i}"),
                10,
            )
        })
        .collect();
    batch.insert(
        4,
        message("m-bad", "msg_bad", "{\"type\":\"user.created\",", 1),
    );

    let failed = h.run(batch).await;

    assert_eq!(failed, ["m-bad"]);
    for i in 0..9 {
        let user = format!("user_p{i}");
        assert_eq!(
            Harness::first_name(&h.user(&user).await).as_deref(),
            Some("Version 10")
        );
        assert_eq!(h.log(&format!("msg_ok{i}")).await.outcome, Outcome::Applied);
    }
    let bad = h.log("msg_bad").await;
    assert_eq!(bad.outcome, Outcome::Failed);
    let reason = bad.reason.unwrap();
    assert!(
        reason.starts_with("poison: event body is not a Clerk event"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_stale_update_is_acknowledged_and_the_newer_state_stays() {
    let h = harness("stale").await;
    assert!(
        h.run(vec![upsert("msg_new", "user.updated", "user_s", 20)])
            .await
            .is_empty()
    );
    let before = h.raw_user("user_s").await;

    assert!(
        h.run(vec![upsert("msg_old", "user.updated", "user_s", 10)])
            .await
            .is_empty()
    );

    assert_eq!(h.raw_user("user_s").await, before, "nothing was written");
    assert_eq!(h.log("msg_old").await.outcome, Outcome::Stale);
    assert_eq!(h.log("msg_new").await.outcome, Outcome::Applied);
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing_and_its_log_stays_applied() {
    let h = harness("dup").await;
    let first = upsert("msg_1", "user.created", "user_d", 10);
    assert!(h.run(vec![first.clone()]).await.is_empty());
    let before = h.raw_user("user_d").await;

    // The same Svix message again (Svix retry or SQS at-least-once), in a later batch…
    let mut again = first.clone();
    again.message_id = Some("m-again".into());
    assert!(h.run(vec![again]).await.is_empty());
    // …and the same content under another Svix id.
    assert!(
        h.run(vec![upsert("msg_2", "user.created", "user_d", 10)])
            .await
            .is_empty()
    );

    assert_eq!(h.raw_user("user_d").await, before, "nothing was written");
    assert_eq!(h.log("msg_1").await.outcome, Outcome::Applied);
    assert_eq!(
        h.log("msg_1").await.message_id,
        "m-msg_1",
        "first record kept"
    );
    assert_eq!(h.log("msg_2").await.outcome, Outcome::Duplicate);
}

#[tokio::test]
async fn an_update_arriving_before_its_create_yields_the_newer_state() {
    let h = harness("early").await;
    let failed = h
        .run(vec![upsert("msg_u", "user.updated", "user_e", 20)])
        .await;
    assert!(failed.is_empty());
    assert!(
        h.run(vec![upsert("msg_c", "user.created", "user_e", 10)])
            .await
            .is_empty()
    );

    assert_eq!(
        Harness::first_name(&h.user("user_e").await).as_deref(),
        Some("Version 20")
    );
    assert_eq!(h.log("msg_c").await.outcome, Outcome::Stale);
}

#[tokio::test]
async fn a_deleted_user_is_never_resurrected_and_keeps_no_personal_fields() {
    let h = harness("delete").await;
    assert!(
        h.run(vec![upsert("msg_c", "user.created", "user_x", 10)])
            .await
            .is_empty()
    );
    assert!(h.run(vec![delete("msg_d", "user_x")]).await.is_empty());

    let tombstone = h.raw_user("user_x").await;
    let mut keys: Vec<&str> = tombstone.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["deleted", "deleted_at", "id", "last_svix_id", "synced_at"]
    );

    let late = vec![
        upsert("msg_old", "user.updated", "user_x", 5),
        upsert("msg_newer", "user.updated", "user_x", 1_000_000_000_000_000),
        upsert(
            "msg_recreate",
            "user.created",
            "user_x",
            2_000_000_000_000_000,
        ),
        delete("msg_d2", "user_x"),
    ];
    assert!(h.run(late).await.is_empty());

    assert_eq!(h.raw_user("user_x").await, tombstone, "nothing was written");
    assert!(matches!(
        h.user("user_x").await,
        Some(Stored::Tombstone { .. })
    ));
    for svix_id in ["msg_old", "msg_newer", "msg_recreate"] {
        assert_eq!(h.log(svix_id).await.outcome, Outcome::Stale, "{svix_id}");
    }
    assert_eq!(h.log("msg_d2").await.outcome, Outcome::Duplicate);
}

#[tokio::test]
async fn a_delete_before_any_create_leaves_a_tombstone_the_create_cannot_undo() {
    let h = harness("delete-first").await;
    assert!(h.run(vec![delete("msg_d", "user_y")]).await.is_empty());
    assert!(
        h.run(vec![upsert("msg_c", "user.created", "user_y", 10)])
            .await
            .is_empty()
    );
    assert!(matches!(
        h.user("user_y").await,
        Some(Stored::Tombstone { .. })
    ));
    assert_eq!(h.log("msg_c").await.outcome, Outcome::Stale);
}

#[tokio::test]
async fn unreachable_dynamodb_fails_every_message_of_the_batch_and_writes_nothing() {
    let h = harness("unreachable").await;
    let nowhere = aws_sdk_dynamodb::Client::new(&sdk_config_for("http://127.0.0.1:9").await);
    let cut_off = worker(
        &nowhere,
        &h.resources.names.users_table,
        &h.resources.names.event_log_table,
    );
    let batch: Vec<SqsMessage> = (0..3)
        .map(|i| {
            upsert(
                &format!("msg_{i}"),
                "user.created",
                &format!("user_u{i}"),
                10,
            )
        })
        .collect();

    let mut failed = h.run_with(&cut_off, batch).await;

    failed.sort();
    assert_eq!(failed, ["m-msg_0", "m-msg_1", "m-msg_2"]);
    assert!(h.table_is_empty(&h.resources.names.users_table).await);
    assert!(h.table_is_empty(&h.resources.names.event_log_table).await);
}

#[tokio::test]
async fn a_missing_users_table_is_a_transient_failure_recorded_in_the_event_log() {
    let h = harness("no-table").await;
    let misconfigured = worker(
        &h.dynamodb(),
        "no-such-table",
        &h.resources.names.event_log_table,
    );

    let failed = h
        .run_with(
            &misconfigured,
            vec![upsert("msg_t", "user.created", "user_t", 10)],
        )
        .await;

    assert_eq!(failed, ["m-msg_t"]);
    let record = h.log("msg_t").await;
    assert_eq!(record.outcome, Outcome::Failed);
    let reason = record.reason.unwrap();
    assert!(
        reason.starts_with("transient: dynamodb PutItem failed")
            && reason.contains("ResourceNotFound"),
        "{reason}"
    );
    assert!(h.table_is_empty(&h.resources.names.users_table).await);
}

#[tokio::test]
async fn an_event_applied_but_not_logged_is_retried_and_then_logged_as_applied() {
    let h = harness("no-log").await;
    let no_log = worker(&h.dynamodb(), &h.resources.names.users_table, "no-such-log");
    let msg = upsert("msg_l", "user.created", "user_l", 10);

    assert_eq!(h.run_with(&no_log, vec![msg.clone()]).await, ["m-msg_l"]);
    // SQS delivers it again; this time the log is reachable.
    let mut retry = msg;
    retry
        .attributes
        .insert("ApproximateReceiveCount".into(), "2".into());
    assert!(h.run(vec![retry]).await.is_empty());

    let record = h.log("msg_l").await;
    assert_eq!((record.outcome, record.attempts), (Outcome::Applied, 2));
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded_before_it_is_applied() {
    let h = harness("base64").await;
    let mut body: serde_json::Value =
        serde_json::from_str(&user_upsert("user.created", "user_b", 10)).unwrap();
    body["data"]["first_name"] = "Ada \u{FFFF}".into();
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.to_string());
    let mut msg = message("m-b64", "msg_b64", &encoded, 1);
    let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
    attribute.data_type = Some("String".into());
    attribute.string_value = Some("base64".into());
    msg.message_attributes
        .insert("content_encoding".into(), attribute);

    assert!(h.run(vec![msg]).await.is_empty());

    assert_eq!(
        Harness::first_name(&h.user("user_b").await).as_deref(),
        Some("Ada \u{FFFF}")
    );
}

#[tokio::test]
async fn other_event_types_are_acknowledged_as_ignored_and_messages_without_svix_id_are_poison() {
    let h = harness("ignored").await;
    let session = message("m-s", "msg_s", &devkit::fixture("session.created"), 1);
    let mut anonymous = upsert("unused", "user.created", "user_n", 10);
    anonymous.message_attributes.remove("svix_id");
    anonymous.message_id = Some("m-anon".into());

    let failed = h.run(vec![session, anonymous]).await;

    assert_eq!(failed, ["m-anon"]);
    let ignored = h.log("msg_s").await;
    assert_eq!(ignored.outcome, Outcome::Ignored);
    assert_eq!(ignored.event_type.as_deref(), Some("session.created"));
    let anonymous = h.log("sqs:m-anon").await;
    assert_eq!(
        anonymous.reason.as_deref(),
        Some("poison: message has no svix_id attribute")
    );
    assert!(h.user("user_n").await.is_none());
}

#[tokio::test]
async fn the_happy_path_spends_two_write_requests_per_message_and_no_reads() {
    let h = harness("budget").await;
    let counter = devkit::counting::RequestCounter::default();
    let counted = counter.client(&h.sdk);
    let counted_worker = worker(
        &counted,
        &h.resources.names.users_table,
        &h.resources.names.event_log_table,
    );
    // Ten users exist; ten `user.updated` arrive in one batch.
    let created: Vec<SqsMessage> = (0..10)
        .map(|i| {
            upsert(
                &format!("msg_c{i}"),
                "user.created",
                &format!("user_w{i}"),
                10,
            )
        })
        .collect();
    assert!(h.run(created).await.is_empty());
    let updated: Vec<SqsMessage> = (0..10)
        .map(|i| {
            upsert(
                &format!("msg_u{i}"),
                "user.updated",
                &format!("user_w{i}"),
                20,
            )
        })
        .collect();

    assert!(h.run_with(&counted_worker, updated).await.is_empty());

    let requests = counter.counts();
    eprintln!("DynamoDB requests for a batch of 10 user.updated: {requests:?}");
    assert_eq!(requests, HashMap::from([("PutItem".to_owned(), 20)]));
}

#[tokio::test]
async fn a_message_failing_five_times_ends_in_the_dead_letter_queue_with_its_reason_logged() {
    let h = harness_with(Names::unique("dlq").with_visibility_timeout(1)).await;
    let sqs = aws_sdk_sqs::Client::new(&h.sdk);
    let string = |v: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    sqs.send_message()
        .queue_url(&h.resources.queue_url)
        .message_body(r#"{"type":"user.updated","data":{"id":"user_z"}}"#)
        .message_attributes("svix_id", string("msg_poison"))
        .message_attributes("event_type", string("user.updated"))
        .send()
        .await
        .unwrap();
    let mut mapping = devkit::poller::Mapping::new(&h.resources.queue_url, &h.resources.queue_arn);
    mapping.wait_seconds = 1;
    let function = devkit::lambda::json_fn(sync::lambda_service(Arc::new(worker(
        &h.dynamodb(),
        &h.resources.names.users_table,
        &h.resources.names.event_log_table,
    ))));

    let deadline = Instant::now() + Duration::from_secs(60);
    let dead = loop {
        devkit::poller::poll_once(&sqs, &mapping, &function)
            .await
            .unwrap();
        let dlq = sqs
            .receive_message()
            .queue_url(&h.resources.dead_letter_queue_url)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if let Some(m) = dlq.into_iter().next() {
            break m;
        }
        assert!(Instant::now() < deadline, "never reached the DLQ");
    };

    assert_eq!(
        dead.body(),
        Some(r#"{"type":"user.updated","data":{"id":"user_z"}}"#)
    );
    let record = h.log("msg_poison").await;
    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(record.attempts, devkit::resources::MAX_RECEIVE_COUNT);
    assert_eq!(
        record.reason.as_deref(),
        Some("poison: user event has no updated_at")
    );
    assert!(h.user("user_z").await.is_none());
}

/// A `user.created` for `user` at `t` whose `field` holds `metadata` (JSON text, spliced in as is).
fn with_metadata(svix_id: &str, user: &str, t: i64, field: &str, metadata: &str) -> SqsMessage {
    let mut body: serde_json::Value =
        serde_json::from_str(&user_upsert("user.created", user, t)).unwrap();
    body["data"][field] = "METADATA".into();
    let body = body.to_string().replace("\"METADATA\"", metadata);
    message(&format!("m-{svix_id}"), svix_id, &body, 1)
}

#[tokio::test]
async fn metadata_dynamodb_cannot_hold_natively_is_stored_as_sent_and_the_next_update_applies() {
    let h = harness("metadata").await;
    let deep = format!("{}\"bottom\"{}", "{\"a\":".repeat(40), "}".repeat(40));
    let cases = [
        ("unsafe_metadata", r#"{"score":1e200}"#.to_owned()),
        (
            "unsafe_metadata",
            r#"{"score":-1e130,"tiny":1e-200}"#.to_owned(),
        ),
        ("unsafe_metadata", deep.clone()),
        ("public_metadata", deep),
        (
            "private_metadata",
            r#"{"big":123456789012345678901234567890}"#.to_owned(),
        ),
        // Deeper than serde_json's own limit (128), as Clerk's 8 KB cap allows.
        (
            "unsafe_metadata",
            format!("{}\"bottom\"{}", "{\"a\":".repeat(500), "}".repeat(500)),
        ),
        (
            "public_metadata",
            format!("{}0{}", "[".repeat(3000), "]".repeat(3000)),
        ),
    ];
    for (i, (field, metadata)) in cases.iter().enumerate() {
        let user = format!("user_meta{i}");
        let created = format!("msg_meta{i}c");
        let updated = format!("msg_meta{i}u");
        assert!(
            h.run(vec![with_metadata(&created, &user, 10, field, metadata)])
                .await
                .is_empty(),
            "{field} = {metadata}"
        );
        assert_eq!(h.log(&created).await.outcome, Outcome::Applied);
        let Some(Stored::Live(stored)) = h.user(&user).await else {
            panic!("{user} not stored")
        };
        let kept = match *field {
            "unsafe_metadata" => &stored.unsafe_metadata,
            "public_metadata" => &stored.public_metadata,
            _ => &stored.private_metadata,
        };
        assert_eq!(kept.as_str(), metadata.as_str());

        assert!(
            h.run(vec![upsert(&updated, "user.updated", &user, 20)])
                .await
                .is_empty()
        );
        assert_eq!(h.log(&updated).await.outcome, Outcome::Applied);
        assert_eq!(
            Harness::first_name(&h.user(&user).await).as_deref(),
            Some("Version 20")
        );
    }
}

impl Harness {
    async fn put_raw(&self, item: HashMap<String, AttributeValue>) {
        self.dynamodb()
            .put_item()
            .table_name(&self.resources.names.users_table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
}

/// The item the previous release wrote for `user` at `t`: metadata as native DynamoDB maps.
fn previous_format_item(user: &str, t: i64) -> HashMap<String, AttributeValue> {
    let mut body: serde_json::Value =
        serde_json::from_str(&user_upsert("user.updated", user, t)).unwrap();
    let data = body["data"].take();
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(serde_json::json!({
        "id": user,
        "email": data["email_addresses"][0]["email_address"],
        "email_addresses": [],
        "first_name": data["first_name"],
        "public_metadata": data["public_metadata"],
        "private_metadata": data["private_metadata"],
        "unsafe_metadata": {"nested": {"list": [1, 2.5, "x"]}},
        "banned": false,
        "locked": false,
        "updated_at": t,
        "deleted": false,
        "last_svix_id": "msg_before",
        "synced_at": 1,
    }))
    .unwrap();
    assert!(matches!(
        item.get("public_metadata"),
        Some(AttributeValue::M(_))
    ));
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    item
}

#[tokio::test]
async fn an_item_in_the_previous_format_still_reads_and_keeps_its_place_in_the_order() {
    let h = harness("previous-format").await;
    h.put_raw(previous_format_item("user_prev", 20)).await;

    let Some(Stored::Live(read)) = h.user("user_prev").await else {
        panic!("the previous format does not read")
    };
    assert_eq!(
        read.unsafe_metadata.as_str(),
        r#"{"nested":{"list":[1,2.5,"x"]}}"#
    );
    assert_eq!(read.first_name.as_deref(), Some("Version 20"));

    let replies = h
        .run(vec![
            upsert("msg_prev_old", "user.updated", "user_prev", 10),
            upsert("msg_prev_same", "user.updated", "user_prev", 20),
        ])
        .await;
    assert!(replies.is_empty());
    assert_eq!(h.log("msg_prev_old").await.outcome, Outcome::Stale);
    assert_eq!(h.log("msg_prev_same").await.outcome, Outcome::Duplicate);
    assert!(
        h.run(vec![upsert(
            "msg_prev_new",
            "user.updated",
            "user_prev",
            30
        )])
        .await
        .is_empty()
    );
    assert_eq!(h.log("msg_prev_new").await.outcome, Outcome::Applied);
}

#[tokio::test]
async fn a_stored_item_without_deleted_or_with_odd_fields_does_not_jam_its_user() {
    let h = harness("odd-items").await;
    let mut without_deleted = previous_format_item("user_nodel", 20);
    without_deleted.remove("deleted");
    let mut odd = previous_format_item("user_odd", 20);
    odd.insert("email".into(), AttributeValue::N("42".into()));
    odd.insert(
        "email_addresses".into(),
        AttributeValue::S("not a list".into()),
    );
    odd.insert("a_field_from_the_future".into(), AttributeValue::Bool(true));
    let mut no_time = previous_format_item("user_notime", 20);
    no_time.remove("updated_at");
    for item in [without_deleted, odd, no_time] {
        h.put_raw(item).await;
    }

    for user in ["user_nodel", "user_odd"] {
        let stale = format!("msg_{user}_stale");
        let same = format!("msg_{user}_same");
        let newer = format!("msg_{user}_newer");
        let batch = vec![
            upsert(&stale, "user.updated", user, 10),
            upsert(&same, "user.updated", user, 20),
        ];
        assert!(h.run(batch).await.is_empty(), "{user} jammed");
        assert_eq!(h.log(&stale).await.outcome, Outcome::Stale, "{user}");
        assert_eq!(h.log(&same).await.outcome, Outcome::Duplicate, "{user}");
        assert!(
            h.run(vec![upsert(&newer, "user.updated", user, 30)])
                .await
                .is_empty()
        );
        assert_eq!(h.log(&newer).await.outcome, Outcome::Applied, "{user}");
        assert_eq!(
            Harness::first_name(&h.user(user).await).as_deref(),
            Some("Version 30")
        );
    }
    // No `updated_at`: any event is newer.
    assert!(
        h.run(vec![upsert("msg_notime", "user.updated", "user_notime", 1)])
            .await
            .is_empty()
    );
    assert_eq!(h.log("msg_notime").await.outcome, Outcome::Applied);
}

#[tokio::test]
async fn a_write_dynamodb_refuses_is_poison_with_its_reason_and_nothing_is_stored() {
    let h = harness("refused").await;
    // Over DynamoDB's 400 KB item limit: the same item is refused on every attempt.
    let mut body: serde_json::Value =
        serde_json::from_str(&user_upsert("user.created", "user_huge", 10)).unwrap();
    body["data"]["first_name"] = "x".repeat(420 * 1024).into();
    let huge = message("m-huge", "msg_huge", &body.to_string(), 1);

    let result = h.worker.process(&huge).await;

    let failure = result.unwrap_err();
    assert_eq!(failure.class(), "poison", "{failure}");
    let record = h.log("msg_huge").await;
    assert_eq!(record.outcome, Outcome::Failed);
    let reason = record.reason.unwrap();
    assert!(
        reason.starts_with("poison: dynamodb PutItem refused the request")
            && reason.contains("ValidationException"),
        "{reason}"
    );
    assert!(!reason.contains("xxxx"), "the reason holds no payload");
    assert!(h.user("user_huge").await.is_none());
}

#[tokio::test]
async fn the_emulator_s_refusals_and_outages_are_classed_by_what_they_are() {
    use clerk_sync::adapters::aws::sdk_error;
    let h = harness("classes").await;
    let put = |client: &aws_sdk_dynamodb::Client, table: &str, n: &str| {
        client
            .put_item()
            .table_name(table)
            .item("id", AttributeValue::S("user_class".into()))
            .item("score", AttributeValue::N(n.into()))
            .send()
    };
    let users = h.resources.names.users_table.clone();

    let out_of_range = put(&h.dynamodb(), &users, "1e200").await.unwrap_err();
    let refused = sdk_error("dynamodb", "PutItem", out_of_range);
    assert!(!refused.retryable, "{refused:?}");

    let missing_table = put(&h.dynamodb(), "no-such-table", "1").await.unwrap_err();
    assert!(sdk_error("dynamodb", "PutItem", missing_table).retryable);

    let nowhere = aws_sdk_dynamodb::Client::new(&sdk_config_for("http://127.0.0.1:9").await);
    let unreachable = put(&nowhere, &users, "1").await.unwrap_err();
    assert!(sdk_error("dynamodb", "PutItem", unreachable).retryable);
    let cut_off = worker(&nowhere, &users, &h.resources.names.event_log_table);
    let failure = cut_off
        .process(&upsert("msg_cut", "user.created", "user_cut", 1))
        .await
        .unwrap_err();
    assert_eq!(failure.class(), "transient");
}

/// The adapter's condition against the domain's precondition: for random stored items — absent,
/// live with an `updated_at` that is a number, missing or text, tombstones, items without
/// `deleted` or with an odd one, written by another writer or by this one — and random events
/// around them, `apply` answers and leaves the item exactly as [`Precondition::holds`] and
/// [`Refusal::explain`] say.
mod the_condition_is_the_domain_s_precondition {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    use clerk_sync::adapters::dynamodb::user_item;
    use clerk_sync::domain::ordering::{Precondition, Refusal};
    use clerk_sync::domain::user::{UserEvent, Version};
    use clerk_sync::ports::UserStore;
    use proptest::prelude::*;

    use super::*;

    /// Around Clerk's times, so numbers compare as numbers, not as text.
    const BASE: i64 = 1_700_000_000_000;
    const WRITER: &str = "msg_this";
    const NOW_MS: i64 = 42;

    #[derive(Debug, Clone)]
    enum Deleted {
        Absent,
        True,
        False,
        /// Not a boolean: not a tombstone.
        Text,
    }

    #[derive(Debug, Clone)]
    enum UpdatedAt {
        Absent,
        Number(i64),
        /// Not a number (even when it reads as one): no `updated_at`.
        Text(&'static str),
    }

    #[derive(Debug, Clone)]
    struct StoredItem {
        deleted: Deleted,
        updated_at: UpdatedAt,
        /// `last_svix_id`.
        writer: Option<&'static str>,
    }

    #[derive(Debug, Clone)]
    enum Event {
        Upsert(i64),
        Delete,
    }

    fn stored_item() -> impl Strategy<Value = StoredItem> {
        let deleted = prop_oneof![
            Just(Deleted::Absent),
            Just(Deleted::True),
            Just(Deleted::False),
            Just(Deleted::Text),
        ];
        let updated_at = prop_oneof![
            1 => Just(UpdatedAt::Absent),
            4 => (0..5i64).prop_map(|t| UpdatedAt::Number(BASE + t)),
            1 => prop_oneof![Just("yesterday"), Just("1700000000002")].prop_map(UpdatedAt::Text),
        ];
        let writer = prop_oneof![Just(None), Just(Some("msg_other")), Just(Some(WRITER))];
        (deleted, updated_at, writer).prop_map(|(deleted, updated_at, writer)| StoredItem {
            deleted,
            updated_at,
            writer,
        })
    }

    /// An upsert at, just before or just after the stored times (equal included), or a delete.
    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            3 => (-2..7i64).prop_map(|t| Event::Upsert(BASE + t)),
            1 => Just(Event::Delete),
        ]
    }

    fn raw_item(user: &str, stored: &StoredItem) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("id".to_owned(), AttributeValue::S(user.to_owned())),
            ("first_name".to_owned(), AttributeValue::S("Stored".into())),
        ]);
        match stored.deleted {
            Deleted::Absent => {}
            Deleted::True => {
                item.insert("deleted".into(), AttributeValue::Bool(true));
            }
            Deleted::False => {
                item.insert("deleted".into(), AttributeValue::Bool(false));
            }
            Deleted::Text => {
                item.insert("deleted".into(), AttributeValue::S("true".into()));
            }
        }
        match stored.updated_at {
            UpdatedAt::Absent => {}
            UpdatedAt::Number(t) => {
                item.insert("updated_at".into(), AttributeValue::N(t.to_string()));
            }
            UpdatedAt::Text(text) => {
                item.insert("updated_at".into(), AttributeValue::S(text.into()));
            }
        }
        if let Some(writer) = stored.writer {
            item.insert("last_svix_id".into(), AttributeValue::S(writer.into()));
        }
        item
    }

    /// The stored item as the domain sees it, by the users table's documented format: a
    /// tombstone is `deleted = true`, and only a number is an `updated_at`.
    fn version(stored: &StoredItem) -> Version {
        match (&stored.deleted, &stored.updated_at) {
            (Deleted::True, _) => Version::Deleted,
            (_, UpdatedAt::Number(t)) => Version::Live {
                updated_at: Some(*t),
            },
            _ => Version::Live { updated_at: None },
        }
    }

    fn user_event(user: &str, event: &Event) -> UserEvent {
        let body = match event {
            Event::Upsert(t) => user_upsert("user.updated", user, *t),
            Event::Delete => user_deleted(user, 99),
        };
        UserEvent::parse(&body).unwrap()
    }

    struct Table {
        client: aws_sdk_dynamodb::Client,
        name: String,
        store: DynamoUserStore,
    }

    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });

    /// One table and one client for every case; each case has its own user.
    static TABLE: LazyLock<Table> = LazyLock::new(|| {
        RUNTIME.block_on(async {
            let sdk = Emulator::shared().sdk_config().await;
            let resources = provision(&sdk, Names::unique("conditions"), DEV_WEBHOOK_SECRET)
                .await
                .unwrap();
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let name = resources.names.users_table;
            Table {
                store: DynamoUserStore::new(client.clone(), &name),
                client,
                name,
            }
        })
    });

    async fn check(
        table: &Table,
        stored: Option<StoredItem>,
        event: Event,
    ) -> Result<(), TestCaseError> {
        static CASE: AtomicU32 = AtomicU32::new(0);
        let user = format!("user_cond{}", CASE.fetch_add(1, Ordering::Relaxed));
        let before = stored.as_ref().map(|stored| raw_item(&user, stored));
        if let Some(item) = &before {
            table
                .client
                .put_item()
                .table_name(&table.name)
                .set_item(Some(item.clone()))
                .send()
                .await
                .unwrap();
        }
        let event = user_event(&user, &event);

        let outcome = table.store.apply(&event, WRITER, NOW_MS).await.unwrap();

        let after = table
            .client
            .get_item()
            .table_name(&table.name)
            .key("id", AttributeValue::S(user.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item;
        let current = stored.as_ref().map(version);
        if Precondition::of(&event).holds(current) {
            prop_assert_eq!(outcome, Outcome::Applied);
            prop_assert_eq!(
                after,
                Some(user_item(&event.stored(), WRITER, NOW_MS).unwrap())
            );
        } else {
            let stored = stored.as_ref().unwrap();
            let refusal = Refusal::explain(current.unwrap(), stored.writer, WRITER, &event);
            prop_assert_eq!(Some(outcome), refusal.outcome(), "{:?}", refusal);
            prop_assert_eq!(after, before, "a refused write changes nothing");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn dynamodb_applies_a_write_exactly_when_the_domain_s_precondition_holds(
            stored in proptest::option::weighted(0.9, stored_item()),
            event in event(),
        ) {
            // Set up outside the runtime: it blocks on the runtime itself.
            let table = &*TABLE;
            RUNTIME.block_on(check(table, stored, event))?;
        }
    }
}
