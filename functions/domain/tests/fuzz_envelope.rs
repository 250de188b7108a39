//! Fuzz target: the Svix envelope parser (`Unverified::parse` then `verify`), on arbitrary bytes,
//! on generated envelopes whose verdict is known, and on mutations of genuine ones. Bounded by
//! `FUZZ_CASES` / `FUZZ_SECONDS` (`make fuzz`).

use clerk_sync_domain::webhook::{Rejection, SignatureCheck, SvixHeaders, Unverified, Verified};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The signature check, out of the way: accepts every request, or (a forgery) none.
struct Signature(bool);

impl SignatureCheck for Signature {
    fn check(&self, _: &SvixHeaders<'_>, _: &str) -> Result<(), Rejection> {
        if self.0 {
            Ok(())
        } else {
            Err(Rejection::SignatureMismatch)
        }
    }
}

fn headers<'b>(name: &str) -> Option<&'b [u8]> {
    match name {
        "svix-id" => Some(b"msg_fuzz"),
        "svix-timestamp" => Some(b"1700000000"),
        "svix-signature" => Some(b"v1,c2ln"),
        _ => None,
    }
}

fn verify(body: &[u8], genuine: bool) -> Result<Verified<'_>, Rejection> {
    Unverified::parse(headers, body)?.verify(&Signature(genuine))
}

/// The refusals a genuine request's body can earn.
fn is_body_rejection(e: &Rejection) -> bool {
    matches!(
        e,
        Rejection::BodyNotUtf8
            | Rejection::BodyNotJson(_)
            | Rejection::EnvelopeMissing("type" | "data")
    )
}

/// What a body is, read with serde_json's `Value` (no recursion limit): the oracle for bodies
/// that parse. `Err(true)` for valid JSON that `Value` cannot hold (a number beyond `f64`'s range,
/// which JSON's grammar allows and the envelope parser, skipping `data`, rightly accepts).
fn as_value(body: &str) -> Result<Value, bool> {
    let unbounded = |body| {
        let mut de = serde_json::Deserializer::from_str(body);
        de.disable_recursion_limit();
        de
    };
    let mut de = unbounded(body);
    match Value::deserialize(serde_stacker::Deserializer::new(&mut de))
        .and_then(|v| de.end().map(|()| v))
    {
        Ok(value) => Ok(value),
        Err(e) if e.to_string().starts_with("number out of range") => {
            let mut de = unbounded(body);
            let grammar = IgnoredAny::deserialize(serde_stacker::Deserializer::new(&mut de))
                .and_then(|_| de.end());
            Err(grammar.is_ok())
        }
        Err(_) => Err(false),
    }
}

use serde::Deserialize;
use serde::de::IgnoredAny;

/// Checks the properties every outcome must have, whatever the body.
fn check_outcome(
    body: &[u8],
    outcome: &Result<Verified<'_>, Rejection>,
) -> Result<(), TestCaseError> {
    match outcome {
        Ok(v) => {
            // What is queued is exactly what was signed, with the type the body states.
            prop_assert_eq!(v.payload.as_bytes(), body);
            prop_assert_eq!(v.svix_id.as_str(), "msg_fuzz");
            let value = match as_value(v.payload) {
                Ok(value) => value,
                Err(valid_json) => {
                    prop_assert!(valid_json, "accepted a body that is not one JSON value");
                    return Ok(());
                }
            };
            prop_assert_eq!(value["type"].as_str(), Some(&*v.event_type));
            prop_assert!(!v.event_type.trim().is_empty());
            prop_assert!(value["data"].is_object());
        }
        Err(e) => {
            prop_assert!(is_body_rejection(e), "{e:?}");
            prop_assert_eq!(
                matches!(e, Rejection::BodyNotUtf8),
                std::str::from_utf8(body).is_err()
            );
        }
    }
    Ok(())
}

#[test]
fn arbitrary_bodies_are_queued_verbatim_or_refused_as_a_body_problem() {
    devkit::fuzz::run(
        file!(),
        "envelope_bytes",
        1000,
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            ".{0,200}".prop_map(String::into_bytes),
            "[{}\\[\\]\":,a-z0-9 \\\\]{0,80}".prop_map(String::into_bytes),
        ],
        |body| {
            let outcome = verify(&body, true);
            check_outcome(&body, &outcome)?;
            // A forgery is refused for its signature whatever its (UTF-8) body.
            if std::str::from_utf8(&body).is_ok() {
                prop_assert_eq!(verify(&body, false), Err(Rejection::SignatureMismatch));
            }
            Ok(())
        },
    );
}

/// A JSON value of bounded size, keys and strings including escapes and non-ASCII.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An envelope's `type` and `data`, each present or not, of the right JSON type or not.
/// `type`, `data`, the other fields, and how to order and space them.
type Generated = (Option<Value>, Option<Value>, Vec<(String, Value)>, usize);

fn envelope() -> impl Strategy<Value = Generated> {
    let event_type = prop_oneof![
        3 => "[a-zA-Z]{1,12}\\.[a-z]{1,10}".prop_map(Value::from),
        1 => ".{0,16}".prop_map(Value::from),
        1 => "[ \t\n]{0,3}".prop_map(Value::from),
        1 => json_value(),
    ];
    let data = prop_oneof![
        3 => proptest::collection::btree_map("[a-z_]{1,10}", json_value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => json_value(),
        // Deeper than serde_json's default limit of 128: Clerk accepts such metadata.
        1 => (100usize..400).prop_map(|depth| {
            (0..depth).fold(json!({"leaf": true}), |v, _| json!({"m": v}))
        }),
    ];
    let extra =
        proptest::collection::vec(("[a-z_]{1,12}", json_value()), 0..4).prop_map(|fields| {
            fields
                .into_iter()
                .filter(|(k, _)| k != "type" && k != "data")
                .collect()
        });
    (
        proptest::option::weighted(0.9, event_type),
        proptest::option::weighted(0.9, data),
        extra,
        0usize..8,
    )
}

/// The envelope's JSON text with the fields in an order chosen by `rotate`, optionally spaced.
fn render(
    event_type: &Option<Value>,
    data: &Option<Value>,
    extra: &[(String, Value)],
    rotate: usize,
) -> String {
    let mut fields: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    if let Some(t) = event_type {
        fields.push(("type".into(), t.to_string()));
    }
    if let Some(d) = data {
        fields.push(("data".into(), d.to_string()));
    }
    let n = fields.len().max(1);
    fields.rotate_left(rotate % n);
    let separator = if rotate.is_multiple_of(2) {
        ","
    } else {
        " ,\n "
    };
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", inner.join(separator))
}

#[test]
fn generated_envelopes_are_accepted_exactly_when_type_and_data_are_well_formed() {
    devkit::fuzz::run(
        file!(),
        "envelope_generated",
        150,
        envelope(),
        |(event_type, data, extra, rotate)| {
            let body = render(&event_type, &data, &extra, rotate);
            let outcome = verify(body.as_bytes(), true);
            check_outcome(body.as_bytes(), &outcome)?;
            match (&event_type, &data, outcome) {
                (Some(Value::String(t)), Some(Value::Object(_)), Ok(v)) if !t.trim().is_empty() => {
                    prop_assert_eq!(&*v.event_type, t.as_str())
                }
                (Some(Value::String(t)), Some(_), Err(Rejection::EnvelopeMissing("data")))
                    if !t.trim().is_empty() => {}
                (Some(Value::String(t)), None, Err(Rejection::EnvelopeMissing("data")))
                    if !t.trim().is_empty() => {}
                (Some(Value::String(t)), _, Err(Rejection::EnvelopeMissing("type")))
                    if t.trim().is_empty() => {}
                (None, _, Err(Rejection::EnvelopeMissing("type"))) => {}
                // A `type` that is not a string is not the envelope we read.
                (Some(t), _, Err(Rejection::BodyNotJson(_))) if !t.is_string() => {}
                (t, d, outcome) => prop_assert!(
                    false,
                    "type {t:?}, data {:?}: {outcome:?}",
                    d.as_ref()
                        .map(|d| d.to_string().chars().take(80).collect::<String>())
                ),
            }
            Ok(())
        },
    );
}

#[test]
fn mutated_genuine_envelopes_are_queued_verbatim_or_refused_as_a_body_problem() {
    let genuine = devkit::fixture("user.updated").into_bytes();
    devkit::fuzz::run(
        file!(),
        "envelope_mutated",
        500,
        proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6),
        |edits| {
            let mut body = genuine.clone();
            for (at, kind, byte) in edits {
                let i = at.index(body.len().max(1));
                match kind {
                    0 if !body.is_empty() => body[i] = byte,
                    1 => body.insert(i.min(body.len()), byte),
                    _ if !body.is_empty() => {
                        body.remove(i);
                    }
                    _ => {}
                }
            }
            check_outcome(&body, &verify(&body, true))
        },
    );
}

/// Found by `envelope_mutated`: JSON's grammar puts no bound on numbers, so an envelope whose
/// `data` holds one beyond `f64` is genuine JSON and is queued as signed (serde_json's `Value`
/// cannot hold it; the consumer's typed parse decides what it means).
#[test]
fn a_number_beyond_f64_range_inside_data_is_queued_verbatim() {
    let body = r#"{"type":"user.updated","data":{"id":"user_1","x":1E64072600000}}"#;
    let verified = verify(body.as_bytes(), true).unwrap();
    assert_eq!(verified.payload, body);
    assert_eq!(as_value(body), Err(true));
}
