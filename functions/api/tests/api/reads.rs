//! Reading users: the public view only, others' records for admins only, deleted users gone,
//! one DynamoDB read, and a 503 (not a 404) when the store is down.

use devkit::apigw::{read_response, request_event};
use devkit::emulator::sdk_config_for;
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::support::{ADA, ME, bearer, claims, clerk_user, harness, keys};

#[tokio::test]
async fn a_valid_token_reads_its_own_record_without_private_fields() {
    let h = harness("me").await;
    h.seed(ADA, 20).await;

    let response = h.get(ME, &keys().mint(ADA)).await;

    assert_eq!(response.status, 200, "{}", response.json());
    let user = response.json();
    assert_eq!(user["id"], ADA);
    assert_eq!(user["first_name"], "Version 20");
    assert_eq!(user["updated_at"], 20);
    assert_eq!(
        user["email_addresses"][0]["verification_status"],
        "verified"
    );
    let mut fields: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "email",
            "email_addresses",
            "first_name",
            "id",
            "image_url",
            "last_name",
            "public_metadata",
            "updated_at",
            "username"
        ]
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn another_users_record_is_forbidden_unless_the_token_carries_the_admin_claim() {
    let h = harness("others").await;
    h.seed(ADA, 20).await;
    h.seed("user_bob", 20).await;

    let bob = keys().mint("user_bob");
    let response = h.get(&format!("/v1/users/{ADA}"), &bob).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json()["error"]["code"], "forbidden");
    assert_eq!(h.get("/v1/users/user_bob", &bob).await.status, 200);

    let mut admin = claims("user_bob");
    admin["metadata"] = json!({"role": "admin"});
    let admin = keys().sign(&admin);
    let response = h.get(&format!("/v1/users/{ADA}"), &admin).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["id"], ADA);
    assert_eq!(h.get("/v1/users/user_nobody", &admin).await.status, 404);

    // Not a Clerk user id: no one's own, so forbidden, and not found only for an admin.
    let response = h.get("/v1/users/bob", &bob).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json()["error"]["code"], "forbidden");
    let response = h.get("/v1/users/bob", &admin).await;
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["error"]["code"], "user_not_found");
}

#[tokio::test]
async fn deleted_users_are_not_found_everywhere_and_not_fetched_from_clerk() {
    let h = harness("deleted").await;
    h.seed(ADA, 20).await;
    h.seed_deleted(ADA).await;
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 30)),
    )
    .await;
    let token = keys().mint(ADA);
    for route in [ME.to_owned(), format!("/v1/users/{ADA}")] {
        let response = h.get(&route, &token).await;
        assert_eq!(response.status, 404, "{route}");
        assert_eq!(response.json()["error"]["code"], "user_not_found");
    }
    let asked = h.clerk.received_requests().await.unwrap();
    assert!(asked.iter().all(|r| !r.url.path().starts_with("/v1/users")));
}

#[tokio::test]
async fn an_unreachable_user_store_is_503_not_404() {
    let h = harness("store-down").await;
    let nowhere = sdk_config_for("http://127.0.0.1:9").await;
    let function = h.api_over(aws_sdk_dynamodb::Client::new(&nowhere));
    let event = request_event("GET", ME, &bearer(&keys().mint(ADA)), b"");
    let response = read_response(&function(event).await.unwrap()).unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.json()["error"]["code"], "store_unavailable");
}

#[tokio::test]
async fn reading_me_with_warm_keys_spends_exactly_one_dynamodb_read() {
    let h = harness("one-read").await;
    h.seed(ADA, 20).await;
    let counter = devkit::counting::RequestCounter::default();
    let function = h.api_over(counter.client(&h.sdk));
    let event = request_event("GET", ME, &bearer(&keys().mint(ADA)), b"");
    let response = read_response(&function(event).await.unwrap()).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        counter.counts(),
        std::collections::HashMap::from([("GetItem".to_owned(), 1)])
    );
}
