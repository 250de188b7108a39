//! Where verification keys come from: a pinned PEM, or a JWKS fetched on rotation but never
//! hammered, by unknown kids or by a failing endpoint.

use std::time::Duration;

use devkit::tokens::DevKeys;
use http::HeaderMap;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use crate::support::{ADA, ME, Options, assert_unauthorized, harness, harness_with, keys};

#[tokio::test]
async fn a_pem_key_verifies_tokens_without_any_network() {
    let h = harness_with(
        "pem",
        Options {
            pinned_pem: true,
            ..Options::default()
        },
    )
    .await;
    h.seed(ADA, 20).await;
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
    assert!(h.clerk.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_kids_cannot_make_the_api_hammer_the_jwks_endpoint() {
    let h = harness("refetch").await;
    h.seed(ADA, 20).await;
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
    let stranger = DevKeys::generate();
    for _ in 0..20 {
        assert_unauthorized(&h.get(ME, &stranger.mint(ADA)).await, "invalid_token");
    }
    let fetches = h
        .clerk
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/.well-known/jwks.json")
        .count();
    assert_eq!(
        fetches, 1,
        "refetches are at most one per 30 s, the first load included"
    );
}

#[tokio::test]
async fn a_key_clerk_starts_signing_with_is_fetched_on_its_first_unknown_kid() {
    let old = DevKeys::generate();
    let h = harness_with(
        "rotation",
        Options {
            jwks_min_refresh: Duration::ZERO,
            first_jwks: Some(old.jwks.clone()),
            ..Options::default()
        },
    )
    .await;
    h.seed(ADA, 20).await;
    assert_eq!(h.get(ME, &old.mint(ADA)).await.status, 200);
    // Clerk rotated: tokens now carry the new key's kid, which the cached JWKS lacks.
    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_fetched_once_per_interval_however_many_requests_need_keys() {
    let h = harness_with(
        "jwks-500",
        Options {
            jwks_min_refresh: Duration::from_secs(3600),
            ..Options::default()
        },
    )
    .await;
    h.clerk.reset().await;
    Mock::given(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&h.clerk)
        .await;
    let token = keys().mint(ADA);

    for i in 0..100 {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 503, "#{i}: {}", response.json());
        assert_eq!(response.json()["error"]["code"], "keys_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
        if i % 20 == 0 {
            let health = h.request("GET", "/health", &HeaderMap::new()).await;
            assert_eq!(health.status, 503);
            assert_eq!(health.json()["failing"], json!(["signing_keys"]));
        }
    }

    let fetches = h
        .clerk
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/.well-known/jwks.json")
        .count();
    assert_eq!(fetches, 1, "100 token requests and 5 health checks");
}
