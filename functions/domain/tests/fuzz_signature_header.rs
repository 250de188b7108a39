//! Fuzz target: the Svix headers (`SvixHeaders::parse`) and the `svix-signature` entry list as the
//! signature check reads it. Bounded by `FUZZ_CASES` / `FUZZ_SECONDS` (`make fuzz`).

use clerk_sync::adapters::svix::WebhookKeys;
use clerk_sync_domain::webhook::{
    ID_HEADER, Rejection, SIGNATURE_HEADER, SignatureCheck, SvixHeaders, TIMESTAMP_HEADER,
};
use proptest::prelude::*;
use secrecy::SecretString;

const CANONICAL: [&str; 3] = [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER];
const WHITE_LABEL: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// One header as a request may carry it: under its Svix name, its white-label name, both, or not
/// at all.
#[derive(Debug, Clone)]
struct Carried {
    svix: Option<Vec<u8>>,
    white_label: Option<Vec<u8>>,
}

/// Header values: arbitrary bytes, and plausible ones (padded, numeric, near the id length cap).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        "[ \t]{0,2}[!-~]{1,12}[ \t]{0,2}".prop_map(String::into_bytes),
        "[ \t]{0,2}[+-]?[0-9]{1,20}[ \t]{0,2}".prop_map(String::into_bytes),
        (250usize..260).prop_map(|n| "a".repeat(n).into_bytes()),
        "v1,[A-Za-z0-9+/=]{0,44}( v1,[A-Za-z0-9+/=]{0,44}){0,3}".prop_map(String::into_bytes),
    ]
}

fn carried() -> impl Strategy<Value = Carried> {
    (
        proptest::option::weighted(0.8, value()),
        proptest::option::weighted(0.3, value()),
    )
        .prop_map(|(svix, white_label)| Carried { svix, white_label })
}

/// What the parser must make of one header, stated independently of it: the Svix name wins over
/// the white-label one; the value must be tab or printable ASCII, and not blank once trimmed.
fn expected_text(carried: &Carried, name: &'static str) -> Result<String, Rejection> {
    let raw = carried
        .svix
        .as_ref()
        .or(carried.white_label.as_ref())
        .ok_or(Rejection::MissingHeader(name))?;
    if !raw
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(Rejection::InvalidHeader(name));
    }
    let text = String::from_utf8(raw.clone()).expect("ASCII");
    let text = text.trim_matches(|c| c == ' ' || c == '\t').to_owned();
    if text.is_empty() {
        return Err(Rejection::InvalidHeader(name));
    }
    Ok(text)
}

fn expected(headers: &[Carried; 3]) -> Result<(String, i64, String), Rejection> {
    let id = expected_text(&headers[0], ID_HEADER)?;
    if id.len() > 256 || id.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(Rejection::InvalidHeader(ID_HEADER));
    }
    let timestamp = expected_text(&headers[1], TIMESTAMP_HEADER)?
        .parse::<i64>()
        .map_err(|_| Rejection::InvalidHeader(TIMESTAMP_HEADER))?;
    let signature = expected_text(&headers[2], SIGNATURE_HEADER)?;
    Ok((id, timestamp, signature))
}

#[test]
fn any_header_set_parses_exactly_as_specified_or_names_the_first_bad_header() {
    devkit::fuzz::run(
        file!(),
        "svix_headers",
        1000,
        [carried(), carried(), carried()],
        |headers| {
            let get = |name: &str| -> Option<&[u8]> {
                let i = CANONICAL.iter().position(|n| *n == name);
                let j = WHITE_LABEL.iter().position(|n| *n == name);
                match (i, j) {
                    (Some(i), _) => headers[i].svix.as_deref(),
                    (_, Some(j)) => headers[j].white_label.as_deref(),
                    _ => None,
                }
            };
            let parsed = SvixHeaders::parse(get);
            match (&parsed, expected(&headers)) {
                (Ok(h), Ok((id, timestamp, signature))) => {
                    prop_assert_eq!(h.id.as_str(), id);
                    prop_assert_eq!(h.timestamp, timestamp);
                    prop_assert_eq!(h.signature, signature);
                }
                (Err(got), Err(want)) => prop_assert_eq!(got, &want),
                (got, want) => prop_assert!(false, "parsed {got:?}, expected {want:?}"),
            }
            // Only the two header classes, and always one of the three canonical names.
            if let Err(e) = parsed {
                prop_assert!(matches!(
                    e,
                    Rejection::MissingHeader(n) | Rejection::InvalidHeader(n) if CANONICAL.contains(&n)
                ));
            }
            Ok(())
        },
    );
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"data":{"id":"user_1"},"type":"user.updated"}"#;

/// Entries a signature list may hold besides the genuine one: other versions, other valid-looking
/// signatures, junk without a comma, stray commas and padding.
fn other_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        "v1,[A-Za-z0-9+/]{43}=",
        "v[0-9a],[A-Za-z0-9+/=]{0,50}",
        "[!-~]{1,20}",
        Just("v1,".to_owned()),
        Just(",".to_owned()),
        Just("v1a,abc=".to_owned()),
    ]
}

#[test]
fn a_signature_list_is_accepted_exactly_when_it_holds_the_genuine_v1_entry() {
    let keys = WebhookKeys::parse(&SecretString::from(SECRET.to_owned())).unwrap();
    let timestamp = devkit::signing::now();
    let genuine = svix::webhooks::Webhook::new(SECRET)
        .unwrap()
        .sign("msg_fuzz", timestamp, BODY.as_bytes())
        .unwrap();
    devkit::fuzz::run(
        file!(),
        "signature_list",
        300,
        (
            proptest::collection::vec(other_entry(), 0..6),
            proptest::option::of(any::<prop::sample::Index>()),
            "[ ]{1,3}",
        ),
        |(others, genuine_at, separator)| {
            let mut entries = others;
            if let Some(at) = genuine_at {
                entries.insert(at.index(entries.len() + 1), genuine.clone());
            }
            let list = entries.join(&separator);
            let get = |name: &str| -> Option<&[u8]> {
                match name {
                    ID_HEADER => Some(b"msg_fuzz"),
                    SIGNATURE_HEADER => Some(list.as_bytes()),
                    _ => None,
                }
            };
            let timestamp_text = timestamp.to_string();
            let get = |name: &str| match name {
                TIMESTAMP_HEADER => Some(timestamp_text.as_bytes()),
                _ => get(name),
            };
            let outcome = match SvixHeaders::parse(get) {
                Ok(headers) => keys.check(&headers, BODY),
                Err(e) => Err(e),
            };
            // An entry list nobody could read is a bad header; otherwise only the genuine entry
            // decides, wherever it stands among junk.
            if genuine_at.is_some() {
                prop_assert_eq!(outcome, Ok(()), "{}", list);
            } else {
                prop_assert!(
                    matches!(
                        outcome,
                        Err(Rejection::SignatureMismatch
                            | Rejection::InvalidHeader(SIGNATURE_HEADER))
                    ),
                    "{list}: {outcome:?}"
                );
            }
            Ok(())
        },
    );
}
