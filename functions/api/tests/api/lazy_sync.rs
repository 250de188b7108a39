//! Lazy sync: a user the webhook has not brought yet is fetched from Clerk, stored under the
//! ordering rules (a newer webhook, another fetch or a delete wins) and recorded in the event log.

use std::time::Duration;

use clerk_sync::domain::event_log::{LogRecord, Source};
use clerk_sync::domain::outcome::Outcome;
use clerk_sync::domain::user::{Stored, UserId};
use clerk_sync::ports::UserStore;
use devkit::apigw::HttpResponse;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{ADA, Harness, ME, Options, clerk_user, harness, harness_with, keys};

impl Harness {
    /// Every event-log record of a lazy sync of `user`.
    async fn lazy_sync_records(&self, user: &str) -> Vec<LogRecord> {
        let items = aws_sdk_dynamodb::Client::new(&self.sdk)
            .scan()
            .table_name(&self.resources.names.event_log_table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let records: Vec<LogRecord> = serde_dynamo::from_items(items).unwrap();
        records
            .into_iter()
            .filter(|r| {
                r.source == Source::LazySync && r.user_id.as_ref().map(UserId::as_str) == Some(user)
            })
            .collect()
    }

    /// `GET /v1/users/me` as `user`, with `meanwhile` run once Clerk has been asked for the user
    /// and while its (delayed) answer is still on the way: no timing margin to miss.
    async fn me_while_clerk_answers(
        &self,
        user: &str,
        meanwhile: impl std::future::Future<Output = ()>,
    ) -> HttpResponse {
        let token = keys().mint(user);
        let asked = async {
            loop {
                let requests = self.clerk.received_requests().await.unwrap_or_default();
                if requests
                    .iter()
                    .any(|r| r.url.path() == format!("/v1/users/{user}"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            meanwhile.await;
        };
        tokio::join!(self.get(ME, &token), asked).0
    }

    async fn stored(&self, user: &str) -> Option<Stored> {
        self.store()
            .get(&UserId::parse(user).unwrap())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_user_missing_from_the_table_is_fetched_from_clerk_and_stored() {
    let h = harness("lazy").await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)),
    )
    .await;

    let response = h.get(ME, &keys().mint(ADA)).await;

    assert_eq!(response.status, 200, "{}", response.json());
    assert_eq!(response.json()["first_name"], "Version 10");
    let stored = h.store().get(&UserId::parse(ADA).unwrap()).await.unwrap();
    assert!(
        matches!(stored, Some(clerk_sync::domain::user::Stored::Live(p)) if p.updated_at == 10)
    );
}

#[tokio::test]
async fn a_user_clerk_does_not_know_is_not_found_and_nothing_is_stored() {
    let h = harness("lazy-404").await;
    h.clerk_answers(ADA, ResponseTemplate::new(404)).await;
    let response = h.get(ME, &keys().mint(ADA)).await;
    assert_eq!(response.status, 404);
    assert!(
        h.store()
            .get(&UserId::parse(ADA).unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn clerk_rate_limits_and_timeouts_are_503_with_retry_after_and_store_nothing() {
    let h = harness("lazy-503").await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(429).insert_header("retry-after", "7"),
    )
    .await;
    h.clerk_answers(
        "user_slow",
        ResponseTemplate::new(200)
            .set_body_json(clerk_user("user_slow", 10))
            .set_delay(Duration::from_secs(3)),
    )
    .await;

    let limited = h.get(ME, &keys().mint(ADA)).await;
    assert_eq!(limited.status, 503);
    assert_eq!(limited.json()["error"]["code"], "clerk_rate_limited");
    assert_eq!(limited.header("retry-after"), Some("7"));

    let slow = h.get(ME, &keys().mint("user_slow")).await;
    assert_eq!(slow.status, 503);
    assert_eq!(slow.json()["error"]["code"], "clerk_unavailable");
    assert!(slow.header("retry-after").is_some());

    for user in [ADA, "user_slow"] {
        assert!(
            h.store()
                .get(&UserId::parse(user).unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_concurrent_webhook_newer_than_the_fetched_copy_wins() {
    let h = harness("lazy-race").await;
    // Clerk's answer (t=10) arrives after a webhook stored t=20.
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200)
            .set_body_json(clerk_user(ADA, 10))
            .set_delay(Duration::from_millis(700)),
    )
    .await;
    let response = h.me_while_clerk_answers(ADA, h.seed(ADA, 20)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["updated_at"], 20);
    let stored = h.store().get(&UserId::parse(ADA).unwrap()).await.unwrap();
    assert!(
        matches!(stored, Some(clerk_sync::domain::user::Stored::Live(p)) if p.updated_at == 20)
    );
}

#[tokio::test]
async fn with_lazy_sync_off_a_missing_user_is_not_found_without_asking_clerk() {
    let h = harness_with(
        "lazy-off",
        Options {
            lazy_sync: false,
            ..Options::default()
        },
    )
    .await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)),
    )
    .await;
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 404);
}

#[tokio::test]
async fn two_concurrent_lazy_syncs_with_different_clerk_snapshots_both_answer_what_is_stored() {
    let h = harness("lazy-twice").await;
    // Two copies with the same updated_at. Clerk holds its answer to the first fetch (the second
    // copy) until the other lazy sync has fetched the first copy, written it and answered; that
    // late write must be refused, and must then answer with the first copy, not its own.
    let mut first = clerk_user(ADA, 20);
    first["first_name"] = "First copy".into();
    let mut second = clerk_user(ADA, 20);
    second["first_name"] = "Second copy".into();
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(&second)
                .set_delay(Duration::from_millis(700)),
        )
        .up_to_n_times(1)
        .mount(&h.clerk)
        .await;
    h.clerk_answers(ADA, ResponseTemplate::new(200).set_body_json(&first))
        .await;
    let token = keys().mint(ADA);

    let a = std::sync::OnceLock::new();
    let b = h
        .me_while_clerk_answers(ADA, async {
            a.set(h.get(ME, &token).await).unwrap();
        })
        .await;
    let a = a
        .into_inner()
        .expect("answered while Clerk held the other fetch");

    assert_eq!((a.status, b.status), (200, 200));
    let Some(Stored::Live(stored)) = h.stored(ADA).await else {
        panic!("nothing stored")
    };
    assert_eq!(stored.first_name.as_deref(), Some("First copy"));
    for response in [&a, &b] {
        assert_eq!(response.json()["first_name"], "First copy");
    }
    let mut outcomes: Vec<Outcome> = h
        .lazy_sync_records(ADA)
        .await
        .iter()
        .map(|r| r.outcome)
        .collect();
    outcomes.sort_by_key(|o| o.as_str());
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Duplicate]);
}

#[tokio::test]
async fn a_lazy_sync_racing_a_delete_answers_not_found_and_is_recorded_stale() {
    let h = harness("lazy-delete").await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200)
            .set_body_json(clerk_user(ADA, 10))
            .set_delay(Duration::from_millis(700)),
    )
    .await;

    let response = h.me_while_clerk_answers(ADA, h.seed_deleted(ADA)).await;

    assert_eq!(response.status, 404, "{}", response.json());
    assert_eq!(response.json()["error"]["code"], "user_not_found");
    assert!(matches!(
        h.stored(ADA).await,
        Some(Stored::Tombstone { .. })
    ));
    let records = h.lazy_sync_records(ADA).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Stale);
    assert!(records[0].svix_id.starts_with("lazy-sync:"));
}

#[tokio::test]
async fn public_metadata_dynamodb_cannot_hold_natively_is_served_exactly_as_clerk_sent_it() {
    let h = harness("metadata").await;
    // 40 levels: deeper than DynamoDB's 32; 300: deeper than serde_json's own limit of 128.
    let deep = format!(
        "{}1e200{}, {}0{}",
        "[".repeat(40),
        "]".repeat(40),
        "[".repeat(300),
        "]".repeat(300)
    );
    let metadata = format!(r#"{{"score":1e200,"floor":-1e130,"deep":[{deep}]}}"#);
    let mut user = clerk_user(ADA, 10);
    user["public_metadata"] = "METADATA".into();
    user["unsafe_metadata"] = "UNSAFE".into();
    let body = user
        .to_string()
        .replace("\"METADATA\"", &metadata)
        .replace("\"UNSAFE\"", r#"{"score":-1e130}"#);
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_raw(body, "application/json"),
    )
    .await;
    let token = keys().mint(ADA);

    for attempt in ["lazy sync", "stored"] {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 200, "{attempt}: {}", response.json());
        let text = String::from_utf8_lossy(&response.body).into_owned();
        assert!(
            text.contains(&format!(r#""public_metadata":{metadata}"#)),
            "{attempt}: {text}"
        );
    }
    assert_eq!(
        h.lazy_sync_records(ADA).await.len(),
        1,
        "the second read is from the table"
    );
}
