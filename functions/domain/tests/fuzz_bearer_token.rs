//! Fuzz target: the bearer-token parser (`BearerToken::from_authorization`, then
//! `UnverifiedToken::parse`) and, on tampered genuine tokens, `verify`. Bounded by `FUZZ_CASES` /
//! `FUZZ_SECONDS` (`make fuzz`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clerk_sync_domain::auth::{
    AuthError, BearerToken, IGNORED_CATEGORY, SESSION_TOKEN_CATEGORY, TokenPolicy, UnverifiedToken,
    VerificationKeys,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const MAX_TOKEN: usize = 16 * 1024;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// What `from_authorization` must make of a header, stated independently of it.
fn expected_bearer(header: Option<&str>) -> Result<String, AuthError> {
    let header = header.map(str::trim).unwrap_or_default();
    if header.is_empty() || header.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let Some(space) = header.find(' ') else {
        return Err(AuthError::NotBearer);
    };
    if !header[..space].eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = header[space + 1..].trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    if token.len() > MAX_TOKEN || !token.chars().all(is_token_char) {
        return Err(AuthError::Malformed);
    }
    Ok(token.to_owned())
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    let scheme = prop_oneof![
        "[bB][eE][aA][rR][eE][rR]",
        Just("Basic".to_owned()),
        "[A-Za-z]{0,8}",
    ];
    let token = prop_oneof![
        "[A-Za-z0-9_-]{1,30}\\.[A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,30}",
        "[A-Za-z0-9_.-]{0,40}",
        ".{0,40}",
        (MAX_TOKEN - 2..MAX_TOKEN + 3).prop_map(|n| "a".repeat(n)),
    ];
    let space = "[ \t\u{a0}\u{2003}]{0,3}";
    prop_oneof![
        4 => (space, scheme, "[ \t]{0,3}", token, space)
            .prop_map(|(a, s, b, t, c)| Some(format!("{a}{s}{b}{t}{c}"))),
        1 => proptest::option::of(".{0,60}"),
    ]
}

#[test]
fn any_authorization_header_yields_its_token_or_a_documented_refusal() {
    devkit::fuzz::run(file!(), "bearer_header", 2000, authorization(), |header| {
        let got = BearerToken::from_authorization(header.as_deref());
        match (&got, expected_bearer(header.as_deref())) {
            (Ok(token), Ok(_)) => {
                // The token never shows in logs.
                prop_assert_eq!(format!("{token:?}"), "BearerToken([redacted])");
            }
            (Err(e), Err(want)) => prop_assert_eq!(e, &want),
            (got, want) => prop_assert!(false, "got {got:?}, expected {want:?}"),
        }
        if let Err(e) = got {
            prop_assert!(matches!(
                e,
                AuthError::MissingToken | AuthError::NotBearer | AuthError::Malformed
            ));
            // Refusals never echo the request: the challenge is one of a fixed set.
            prop_assert!(e.challenge().starts_with("Bearer error=\"invalid_"));
        }
        Ok(())
    });
}

/// A header field: absent, or some JSON value (often the interesting ones).
fn field(interesting: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    let any_json = prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
        Just(json!(["RS256"])),
        Just(json!({})),
    ];
    proptest::option::weighted(
        0.8,
        prop_oneof![3 => proptest::sample::select(interesting), 1 => any_json],
    )
}

#[derive(Debug, Clone)]
struct Header {
    alg: Option<Value>,
    typ: Option<Value>,
    cat: Option<Value>,
    kid: Option<Value>,
}

fn header() -> impl Strategy<Value = Header> {
    (
        field(vec![
            json!("RS256"),
            json!("HS256"),
            json!("none"),
            json!("rs256"),
        ]),
        field(vec![json!("JWT"), json!("jwt"), json!("at+jwt")]),
        field(vec![
            json!(SESSION_TOKEN_CATEGORY),
            json!(IGNORED_CATEGORY),
            json!("cl_B7d4PD222AAA"),
            json!("cl_B7d4PD333AAA"),
        ]),
        field(vec![json!("ins_1"), json!("")]),
    )
        .prop_map(|(alg, typ, cat, kid)| Header { alg, typ, cat, kid })
}

/// The verdict of the header checks, stated independently of the parser, in its order: `alg`
/// (required, a string, exactly RS256), `typ` (absent or exactly "JWT"), `cat` (absent or a
/// session token's or the ignored one). `kid` must be absent, null or a string.
fn expected_header(h: &Header) -> Result<Option<String>, AuthError> {
    let kid = match &h.kid {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(AuthError::Malformed),
    };
    let alg = match &h.alg {
        Some(Value::String(s)) => s,
        _ => return Err(AuthError::Malformed),
    };
    if alg != "RS256" {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    if h.typ.as_ref().is_some_and(|t| t != "JWT") {
        return Err(AuthError::WrongType);
    }
    if h.cat
        .as_ref()
        .is_some_and(|c| c != SESSION_TOKEN_CATEGORY && c != IGNORED_CATEGORY)
    {
        return Err(AuthError::NotASessionToken);
    }
    Ok(kid)
}

#[test]
fn generated_token_headers_are_judged_in_the_documented_order() {
    devkit::fuzz::run(
        file!(),
        "token_header",
        2000,
        (header(), "[A-Za-z0-9_-]{0,40}", "[A-Za-z0-9_-]{0,40}"),
        |(h, payload, signature)| {
            let mut object = Map::new();
            for (name, value) in [
                ("alg", &h.alg),
                ("typ", &h.typ),
                ("cat", &h.cat),
                ("kid", &h.kid),
            ] {
                if let Some(v) = value {
                    object.insert(name.into(), v.clone());
                }
            }
            let encoded = URL_SAFE_NO_PAD.encode(Value::Object(object).to_string());
            let token = BearerToken::new(format!("{encoded}.{payload}.{signature}"));
            let got = UnverifiedToken::parse(&token);
            match (&got, expected_header(&h)) {
                (Ok(t), Ok(kid)) => prop_assert_eq!(t.kid(), kid.as_deref()),
                (Err(e), Err(want)) => prop_assert_eq!(e, &want),
                (got, want) => prop_assert!(false, "{h:?}: got {got:?}, expected {want:?}"),
            }
            Ok(())
        },
    );
}

#[test]
fn arbitrary_tokens_parse_or_are_refused_before_any_key_is_used() {
    devkit::fuzz::run(
        file!(),
        "token_bytes",
        2000,
        prop_oneof![
            "[A-Za-z0-9_.-]{0,80}",
            ".{0,80}",
            "eyJ[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,20}\\.[A-Za-z0-9_-]{0,20}",
        ],
        |raw| {
            let token = BearerToken::new(raw.clone());
            if let Err(e) = UnverifiedToken::parse(&token) {
                prop_assert!(matches!(
                    e,
                    AuthError::Malformed
                        | AuthError::UnsupportedAlgorithm
                        | AuthError::WrongType
                        | AuthError::NotASessionToken
                ));
            } else {
                // Parsing accepts only three dot-separated segments.
                prop_assert_eq!(raw.matches('.').count(), 2);
            }
            Ok(())
        },
    );
}

#[test]
fn a_tampered_genuine_token_never_verifies() {
    let keys = devkit::tokens::DevKeys::generate();
    let genuine = keys.mint("user_fuzz");
    let verification = VerificationKeys::from_pem(&keys.public_pem).unwrap();
    let now = devkit::signing::now();
    let policy = TokenPolicy::default();
    // The untampered token verifies, so a refusal below is the tampering's doing.
    let as_bearer = |t: &str| BearerToken::from_authorization(Some(&format!("Bearer {t}")));
    let principal =
        clerk_sync_domain::auth::verify(&as_bearer(&genuine).unwrap(), &verification, &policy, now);
    assert!(principal.is_ok(), "{principal:?}");
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    devkit::fuzz::run(
        file!(),
        "token_tampered",
        300,
        proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            1..4,
        ),
        |edits| {
            let mut bytes = genuine.clone().into_bytes();
            for (at, with) in edits {
                let i = at.index(bytes.len());
                bytes[i] = ALPHABET[with.index(ALPHABET.len())];
            }
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assume!(tampered != genuine);
            let outcome = as_bearer(&tampered)
                .and_then(|t| clerk_sync_domain::auth::verify(&t, &verification, &policy, now));
            // The signature covers the encoded text and base64url decoding here is canonical, so
            // any edit is a refusal.
            prop_assert!(outcome.is_err(), "{} verified", tampered);
            Ok(())
        },
    );
}
