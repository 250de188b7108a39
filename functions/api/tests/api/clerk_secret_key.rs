//! The Clerk secret key lazy sync sends: read again once Clerk refuses it, and from Secrets Manager
//! at most once per interval however many requests need it.

use std::time::Duration;

use api::clerk::SECRET_KEY_POLICY;
use clerk_sync::secret_cache::CachePolicy;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{ADA, Harness, ME, Options, clerk_user, harness_with, keys};

/// The Clerk secret key's `GetSecretValue` requests so far.
fn secret_reads(h: &Harness) -> usize {
    let counts = h.clerk_key_requests.counts();
    assert!(counts.keys().all(|op| op == "GetSecretValue"), "{counts:?}");
    counts.get("GetSecretValue").copied().unwrap_or_default()
}

/// One hour between reads of the Clerk secret key: every read a test sees beyond the first is a
/// bug, not timing.
fn clerk_key_read_hourly() -> Options {
    Options {
        clerk_key_policy: CachePolicy {
            min_refresh_interval: Duration::from_secs(3600),
            ..SECRET_KEY_POLICY
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn a_refused_clerk_secret_key_is_read_again_on_the_next_request() {
    let h = harness_with(
        "rotated-key",
        Options {
            // Re-reads are not held back by an interval here (see the next test for that).
            clerk_key_policy: CachePolicy {
                min_refresh_interval: Duration::ZERO,
                ..SECRET_KEY_POLICY
            },
            ..Options::default()
        },
    )
    .await;
    // Clerk accepts only the rotated key.
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .and(header("authorization", "Bearer sk_test_rotated"))
        .respond_with(ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)))
        .mount(&h.clerk)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .respond_with(ResponseTemplate::new(401))
        .mount(&h.clerk)
        .await;
    let token = keys().mint(ADA);
    assert_eq!(h.get(ME, &token).await.status, 503);

    devkit::resources::put_secret(&h.sdk, &h.resources.clerk_secret_key_id, "sk_test_rotated")
        .await
        .unwrap();

    assert_eq!(h.get(ME, &keys().mint(ADA)).await.status, 200);
    assert_eq!(
        secret_reads(&h),
        2,
        "read once, then once more after the refusal"
    );
}

#[tokio::test]
async fn a_placeholder_clerk_secret_key_is_read_once_per_interval_however_many_lazy_syncs_need_it()
{
    let h = harness_with("placeholder-key", clerk_key_read_hourly()).await;
    // What the stack stores until someone puts the real value (GenerateSecretString: 32 chars).
    devkit::resources::put_secret(
        &h.sdk,
        &h.resources.clerk_secret_key_id,
        "R4nd0mPlaceh0lderNotAClerkKey123",
    )
    .await
    .unwrap();
    h.clerk_answers(
        ADA,
        ResponseTemplate::new(200).set_body_json(clerk_user(ADA, 10)),
    )
    .await;
    let token = keys().mint(ADA);

    for i in 0..50 {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 503, "#{i}: {}", response.json());
        assert_eq!(response.json()["error"]["code"], "clerk_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
    }

    assert_eq!(secret_reads(&h), 1);
    let asked = h.clerk.received_requests().await.unwrap();
    assert!(
        asked.iter().all(|r| !r.url.path().starts_with("/v1/users")),
        "Clerk never sees the placeholder"
    );
}

#[tokio::test]
async fn a_refused_clerk_secret_key_is_read_again_at_most_once_per_interval() {
    let h = harness_with("refused-key", clerk_key_read_hourly()).await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{ADA}")))
        .respond_with(ResponseTemplate::new(401))
        .mount(&h.clerk)
        .await;
    let token = keys().mint(ADA);

    for i in 0..20 {
        let response = h.get(ME, &token).await;
        assert_eq!(response.status, 503, "#{i}");
        assert_eq!(response.json()["error"]["code"], "clerk_unavailable");
    }

    assert_eq!(
        secret_reads(&h),
        1,
        "the first read only, within the interval"
    );
}
