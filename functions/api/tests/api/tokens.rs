//! What a token must be to read users: every claim, header and `Authorization` attack refused.

use clerk_sync::domain::auth::AuthError;
use devkit::signing::now;
use devkit::tokens::{DevKeys, category, forge};
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::support::{
    ADA, ME, Options, assert_refused, assert_unauthorized, claims, harness, harness_with, keys,
};

/// A token for `user` signed with the instance key, its session-token header changed: `field`
/// set to `value`, or removed when `value` is null.
fn with_header(user: &str, field: &str, value: Value) -> String {
    let mut header = keys().header();
    match value {
        Value::Null => drop(header.as_object_mut().unwrap().remove(field)),
        value => header[field] = value,
    }
    keys().sign_with_header(&header, &claims(user))
}

/// A token for `user` whose session status (`sts`) is `status`.
fn with_session_status(user: &str, status: &str) -> String {
    let mut c = claims(user);
    c["sts"] = status.into();
    keys().sign(&c)
}

#[tokio::test]
async fn expired_not_yet_valid_and_future_issued_tokens_are_refused() {
    let h = harness("times").await;
    h.seed(ADA, 20).await;
    let t = now();
    let cases = [
        ("exp", t - 30, "invalid_token"),
        ("nbf", t + 30, "invalid_token"),
        ("iat", t + 30, "invalid_token"),
    ];
    for (claim, value, error) in cases {
        let mut c = claims(ADA);
        c[claim] = value.into();
        assert_unauthorized(&h.get(ME, &keys().sign(&c)).await, error);
    }
    // Within the 5 s skew, a just-expired token still passes.
    let mut c = claims(ADA);
    c["exp"] = (t - 2).into();
    assert_eq!(h.get(ME, &keys().sign(&c)).await.status, 200);
}

#[tokio::test]
async fn wrong_issuer_and_missing_or_unlisted_authorized_party_are_refused() {
    let h = harness("iss-azp").await;
    h.seed(ADA, 20).await;
    let mut wrong_iss = claims(ADA);
    wrong_iss["iss"] = "https://evil.example.com".into();
    let mut no_azp = claims(ADA);
    no_azp.as_object_mut().unwrap().remove("azp");
    let mut other_azp = claims(ADA);
    other_azp["azp"] = "https://evil.example.com".into();
    for c in [wrong_iss, no_azp, other_azp] {
        assert_unauthorized(&h.get(ME, &keys().sign(&c)).await, "invalid_token");
    }
}

#[tokio::test]
async fn alg_none_and_hs256_signed_with_the_public_key_are_refused() {
    let h = harness("alg").await;
    h.seed(ADA, 20).await;
    let none = forge(
        &json!({"alg": "none", "typ": "JWT", "kid": keys().kid}),
        &claims(ADA),
        b"",
    );
    assert_unauthorized(&h.get(ME, &none).await, "invalid_token");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(keys().kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &claims(ADA),
        &jsonwebtoken::EncodingKey::from_secret(keys().public_pem.as_bytes()),
    )
    .unwrap();
    assert_unauthorized(&h.get(ME, &confused).await, "invalid_token");
}

#[tokio::test]
async fn a_known_kid_signed_by_another_key_an_unknown_kid_and_a_tampered_payload_are_refused() {
    let h = harness("keys").await;
    h.seed(ADA, 20).await;
    h.seed("user_mallory", 20).await;
    let mut impostor = DevKeys::generate();
    impostor.kid = keys().kid.clone();
    assert_unauthorized(&h.get(ME, &impostor.mint(ADA)).await, "invalid_token");

    let stranger = DevKeys::generate();
    assert_unauthorized(&h.get(ME, &stranger.mint(ADA)).await, "invalid_token");

    let genuine = keys().mint("user_mallory");
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut c = claims("user_mallory");
    c["sub"] = ADA.into();
    parts[1] = forge(&json!({}), &c, b"")
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    assert_unauthorized(&h.get(ME, &parts.join(".")).await, "invalid_token");
}

#[tokio::test]
async fn session_tokens_read_the_user_with_the_session_category_or_without_any() {
    let h = harness("cat-session").await;
    h.seed(ADA, 20).await;
    // The session category, and the one instances with `use_ignore_jwt_cat` put on every token.
    for cat in [category::SESSION_TOKEN, category::IGNORED] {
        let session = with_header(ADA, "cat", cat.into());
        let response = h.get(ME, &session).await;
        assert_eq!(response.status, 200, "{cat}: {}", response.json());
        assert_eq!(response.json()["id"], ADA);
    }
    // Tokens minted before Clerk added `cat` have none.
    let uncategorised = with_header(ADA, "cat", Value::Null);
    let response = h.get(ME, &uncategorised).await;
    assert_eq!(response.status, 200, "{}", response.json());
    assert_eq!(response.json()["id"], ADA);
}

#[tokio::test]
async fn jwt_template_and_machine_tokens_signed_with_the_instance_key_cannot_read_users() {
    let h = harness("cat-other").await;
    h.seed(ADA, 20).await;
    for cat in [category::JWT_TEMPLATE, category::MACHINE_TOKEN] {
        let token = with_header(ADA, "cat", cat.into());
        assert_refused(&h.get(ME, &token).await, AuthError::NotASessionToken);
        assert_refused(
            &h.get(&format!("/v1/users/{ADA}"), &token).await,
            AuthError::NotASessionToken,
        );
    }
}

#[tokio::test]
async fn a_token_typed_other_than_jwt_is_refused() {
    let h = harness("typ").await;
    h.seed(ADA, 20).await;
    let access_token = with_header(ADA, "typ", "at+jwt".into());
    assert_refused(&h.get(ME, &access_token).await, AuthError::WrongType);
}

#[tokio::test]
async fn pending_sessions_read_users_unless_the_api_refuses_them() {
    let lenient = harness("sts-default").await;
    lenient.seed(ADA, 20).await;
    let response = lenient.get(ME, &with_session_status(ADA, "pending")).await;
    assert_eq!(response.status, 200, "{}", response.json());

    let strict = harness_with(
        "sts-refused",
        Options {
            refuse_pending_sessions: true,
            ..Options::default()
        },
    )
    .await;
    strict.seed(ADA, 20).await;
    assert_refused(
        &strict.get(ME, &with_session_status(ADA, "pending")).await,
        AuthError::PendingSession,
    );
    let response = strict.get(ME, &with_session_status(ADA, "active")).await;
    assert_eq!(response.status, 200, "{}", response.json());
    assert_eq!(response.json()["id"], ADA);
}

#[tokio::test]
async fn a_token_without_sub_is_refused() {
    let h = harness("sub").await;
    let mut c = claims(ADA);
    c.as_object_mut().unwrap().remove("sub");
    assert_unauthorized(&h.get(ME, &keys().sign(&c)).await, "invalid_token");
}

#[tokio::test]
async fn empty_garbage_and_non_bearer_authorization_is_refused() {
    let h = harness("header").await;
    h.seed(ADA, 20).await;
    let cases = [
        ("", "invalid_request"),
        ("Bearer", "invalid_request"),
        ("Bearer    ", "invalid_request"),
        ("Bearer !!!not-a-token!!!", "invalid_token"),
        ("Bearer abc.def", "invalid_token"),
        ("Bearer a.b.c", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "invalid_request"),
        ("Token abc.def.ghi", "invalid_request"),
    ];
    for (value, error) in cases {
        let mut headers = HeaderMap::new();
        if !value.is_empty() {
            headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        }
        let response = h.request("GET", ME, &headers).await;
        assert_unauthorized(&response, error);
    }
    let token = keys().mint(ADA);
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
    );
    assert_unauthorized(&h.request("GET", ME, &headers).await, "invalid_request");
}

#[tokio::test]
async fn a_token_only_in_the_query_string_is_ignored() {
    let h = harness("query").await;
    h.seed(ADA, 20).await;
    let token = keys().mint(ADA);
    for query in ["token", "access_token", "__session"] {
        let response = h
            .request("GET", &format!("{ME}?{query}={token}"), &HeaderMap::new())
            .await;
        assert_unauthorized(&response, "invalid_request");
    }
}
