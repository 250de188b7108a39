//! Svix-signed Clerk webhooks: header parsing, signature verification, envelope checks.
//!
//! Everything here is pure: the caller supplies the headers, the raw body and the signing keys,
//! and gets back either a [`Verified`] event ready to queue or a [`Rejection`] saying why not.

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Largest body we accept. Clerk's user payloads are a few KiB; metadata is capped at 8 KiB per
/// field, so anything near this is not a Clerk event.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Event types the sync stores unless configured otherwise.
pub const DEFAULT_SYNCED_EVENT_TYPES: &str = "user.created,user.updated,user.deleted";

const ID_HEADERS: (&str, &str) = ("svix-id", "webhook-id");
const TIMESTAMP_HEADERS: (&str, &str) = ("svix-timestamp", "webhook-timestamp");
const SIGNATURE_HEADERS: (&str, &str) = ("svix-signature", "webhook-signature");

/// Why a request is not a genuine, well-formed Clerk event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    #[error("header `{0}` is empty or malformed")]
    InvalidHeader(&'static str),
    #[error("body is not valid UTF-8")]
    BodyNotUtf8,
    #[error("body is not a JSON event: {0}")]
    BodyNotJson(super::json::JsonError),
    #[error("event envelope has no `{0}`")]
    EnvelopeMissing(&'static str),
    #[error("signature matches none of the signing secrets")]
    SignatureMismatch,
    #[error("timestamp is more than 5 minutes old")]
    TimestampTooOld,
    #[error("timestamp is more than 5 minutes in the future")]
    TimestampInFuture,
}

/// The id Svix gives a message; the same on every retry of it, so it is the dedupe key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SvixId(String);

impl SvixId {
    /// Accepts 1..=256 visible ASCII characters (Svix ids look like `msg_2b…`).
    pub fn parse(raw: &str) -> Result<Self, Rejection> {
        if super::is_visible_ascii_id(raw, 256) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Rejection::InvalidHeader(ID_HEADERS.0))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SvixId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three Svix headers, under either their `svix-*` or white-label `webhook-*` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvixHeaders {
    pub id: SvixId,
    /// Unix seconds, as sent by Svix.
    pub timestamp: i64,
}

impl SvixHeaders {
    /// Parses the id and timestamp, and checks the signature header is present and non-empty.
    pub fn parse(headers: &HeaderMap) -> Result<Self, Rejection> {
        let id = SvixId::parse(header(headers, ID_HEADERS)?)?;
        let timestamp = header(headers, TIMESTAMP_HEADERS)?
            .parse::<i64>()
            .map_err(|_| Rejection::InvalidHeader(TIMESTAMP_HEADERS.0))?;
        header(headers, SIGNATURE_HEADERS)?;
        Ok(Self { id, timestamp })
    }
}

fn header<'h>(
    headers: &'h HeaderMap,
    (svix, white_label): (&'static str, &str),
) -> Result<&'h str, Rejection> {
    let value = headers
        .get(svix)
        .or_else(|| headers.get(white_label))
        .ok_or(Rejection::MissingHeader(svix))?;
    let value = value
        .to_str()
        .map_err(|_| Rejection::InvalidHeader(svix))?
        .trim();
    if value.is_empty() {
        return Err(Rejection::InvalidHeader(svix));
    }
    Ok(value)
}

/// Why a stored signing-secret value could not be used. Never contains the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("the secret value holds no signing secret")]
    Empty,
    #[error("signing secret #{0} does not start with `whsec_`")]
    MissingPrefix(usize),
    #[error("signing secret #{0} is not valid base64 after `whsec_`")]
    NotBase64(usize),
    #[error("the secret value is a JSON document but not an array of strings")]
    BadJson,
}

/// The signing keys of every live Clerk endpoint secret (two during a rotation).
pub struct WebhookKeys {
    keys: Vec<svix::webhooks::Webhook>,
}

impl fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookKeys")
            .field("secrets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The secrets in a stored secret value, in order: one or more separated by whitespace or
/// commas, or a JSON array. Their format is checked by [`WebhookKeys::parse`].
pub fn secret_list(value: &str) -> Result<Vec<Cow<'_, str>>, SecretFormatError> {
    let value = value.trim();
    let parts: Vec<Cow<'_, str>> = if value.starts_with('[') || value.starts_with('{') {
        serde_json::from_str::<Vec<String>>(value)
            .map_err(|_| SecretFormatError::BadJson)?
            .into_iter()
            .map(Cow::Owned)
            .collect()
    } else {
        super::list_items(value).map(Cow::Borrowed).collect()
    };
    if parts.is_empty() {
        return Err(SecretFormatError::Empty);
    }
    Ok(parts)
}

impl WebhookKeys {
    /// Parses a stored secret value: one or more `whsec_…` secrets separated by whitespace or
    /// commas, or a JSON array of them.
    pub fn parse(value: &SecretString) -> Result<Self, SecretFormatError> {
        let keys = secret_list(value.expose_secret())?
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let n = i + 1;
                if !part.starts_with("whsec_") || part.len() == "whsec_".len() {
                    return Err(SecretFormatError::MissingPrefix(n));
                }
                svix::webhooks::Webhook::new(part).map_err(|_| SecretFormatError::NotBase64(n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks the signature against every key, the timestamp against a ±5 minute tolerance.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Rejection> {
        use svix::webhooks::WebhookError as E;
        for key in &self.keys {
            match key.verify(body, headers) {
                Ok(()) => return Ok(()),
                Err(E::InvalidSignature | E::InvalidSecret(_) | E::EmptySecret) => continue,
                // The tolerance check runs before the signature and is the same for every key.
                Err(E::TimestampTooOldError) => return Err(Rejection::TimestampTooOld),
                Err(E::FutureTimestampError) => return Err(Rejection::TimestampInFuture),
                Err(E::InvalidPayload) => return Err(Rejection::BodyNotUtf8),
                Err(E::MissingHeader(name)) => {
                    return Err(Rejection::MissingHeader(canonical(name)));
                }
                Err(E::InvalidHeader(name)) => {
                    return Err(Rejection::InvalidHeader(canonical(name)));
                }
                Err(E::InvalidTimestamp) => {
                    return Err(Rejection::InvalidHeader(TIMESTAMP_HEADERS.0));
                }
            }
        }
        Err(Rejection::SignatureMismatch)
    }
}

fn canonical(svix_name: &str) -> &'static str {
    match svix_name {
        "id" => ID_HEADERS.0,
        "timestamp" => TIMESTAMP_HEADERS.0,
        _ => SIGNATURE_HEADERS.0,
    }
}

/// The envelope fields the edge needs. Parsing borrows from the body and skips `data`'s content,
/// which the sync worker parses; the whole body is still checked to be one JSON value.
#[derive(Deserialize)]
struct Envelope<'a> {
    // A bare `Cow` field (not `Option<Cow>`) is what makes serde borrow instead of allocate.
    #[serde(borrow, default, rename = "type")]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// A genuine event, ready to be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'a> {
    pub svix_id: SvixId,
    pub svix_timestamp: i64,
    pub event_type: Cow<'a, str>,
    /// The exact bytes Svix signed.
    pub payload: &'a str,
}

/// A request that has well-formed Svix headers and a UTF-8 body, not yet verified.
#[derive(Debug, Clone)]
pub struct Unverified<'b> {
    headers: &'b HeaderMap,
    svix: SvixHeaders,
    payload: &'b str,
}

impl<'b> Unverified<'b> {
    /// Checks everything that can be checked without the signing keys.
    pub fn parse(headers: &'b HeaderMap, body: &'b [u8]) -> Result<Self, Rejection> {
        let svix = SvixHeaders::parse(headers)?;
        let payload = std::str::from_utf8(body).map_err(|_| Rejection::BodyNotUtf8)?;
        Ok(Self {
            headers,
            svix,
            payload,
        })
    }

    pub fn svix_id(&self) -> &SvixId {
        &self.svix.id
    }

    /// Verifies the signature, then the envelope. A forgery is a signature rejection whatever
    /// its body; only a genuine event's body is judged.
    pub fn verify(&self, keys: &WebhookKeys) -> Result<Verified<'b>, Rejection> {
        keys.verify(self.headers, self.payload.as_bytes())?;
        let envelope: Envelope<'b> =
            super::json::parse(self.payload).map_err(Rejection::BodyNotJson)?;
        let event_type = envelope.event_type;
        if event_type.trim().is_empty() {
            return Err(Rejection::EnvelopeMissing("type"));
        }
        match envelope.data {
            Some(data) if data.get().starts_with('{') => {}
            _ => return Err(Rejection::EnvelopeMissing("data")),
        }
        Ok(Verified {
            svix_id: self.svix.id.clone(),
            svix_timestamp: self.svix.timestamp,
            event_type,
            payload: self.payload,
        })
    }
}

/// Parses and verifies a webhook in one step, and extracts what the queue message carries.
pub fn verify_and_prepare<'b>(
    headers: &'b HeaderMap,
    body: &'b [u8],
    keys: &WebhookKeys,
) -> Result<Verified<'b>, Rejection> {
    Unverified::parse(headers, body)?.verify(keys)
}

/// The allow-list of event types the sync stores; everything else is acknowledged and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeFilter(Vec<String>);

impl EventTypeFilter {
    /// Parses a comma- or whitespace-separated list. An empty list is refused: it would silently
    /// drop every event.
    pub fn parse(list: &str) -> Result<Self, String> {
        let types: Vec<String> = super::list_items(list).map(str::to_owned).collect();
        if types.is_empty() {
            return Err("the list of synced event types is empty".into());
        }
        Ok(Self(types))
    }

    pub fn allows(&self, event_type: &str) -> bool {
        self.0.iter().any(|t| t == event_type)
    }
}

impl Default for EventTypeFilter {
    fn default() -> Self {
        Self::parse(DEFAULT_SYNCED_EVENT_TYPES).expect("default list is not empty")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const VECTOR_SECRET: &str = "whsec_plJ3nmyCDGBKInavdOK15jsl";
    const VECTOR_ID: &str = "msg_loFOjxBNrRLzqYUf";
    const VECTOR_TS: &str = "1731705121";
    const VECTOR_BODY: &str = r#"{"event_type":"ping","data":{"success":true}}"#;
    const VECTOR_SIG: &str = "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=";

    const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const BODY: &str =
        r#"{"data":{"id":"user_1","object":"user"},"object":"event","type":"user.updated"}"#;

    fn keys(value: &str) -> WebhookKeys {
        WebhookKeys::parse(&SecretString::from(value.to_owned())).unwrap()
    }

    fn now() -> i64 {
        std::time::UNIX_EPOCH.elapsed().unwrap().as_secs() as i64
    }

    fn signed(secret: &str, id: &str, ts: i64, body: &str, prefix: &str) -> HeaderMap {
        let sig = svix::webhooks::Webhook::new(secret)
            .unwrap()
            .sign(id, ts, body.as_bytes())
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(format!("{prefix}-id").as_bytes()).unwrap(),
            HeaderValue::from_str(id).unwrap(),
        );
        h.insert(
            http::HeaderName::from_bytes(format!("{prefix}-timestamp").as_bytes()).unwrap(),
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        h.insert(
            http::HeaderName::from_bytes(format!("{prefix}-signature").as_bytes()).unwrap(),
            HeaderValue::from_str(&sig).unwrap(),
        );
        h
    }

    #[test]
    fn published_svix_test_vector_verifies_ignoring_its_old_timestamp() {
        let mut h = HeaderMap::new();
        h.insert("svix-id", HeaderValue::from_static(VECTOR_ID));
        h.insert("svix-timestamp", HeaderValue::from_static(VECTOR_TS));
        h.insert("svix-signature", HeaderValue::from_static(VECTOR_SIG));
        let key = svix::webhooks::Webhook::new(VECTOR_SECRET).unwrap();
        key.verify_ignoring_timestamp(VECTOR_BODY.as_bytes(), &h)
            .unwrap();
        let expected = key
            .sign(VECTOR_ID, 1731705121, VECTOR_BODY.as_bytes())
            .unwrap();
        assert_eq!(expected, VECTOR_SIG);
        // With the tolerance enforced the same vector is (correctly) too old.
        assert_eq!(
            keys(VECTOR_SECRET).verify(&h, VECTOR_BODY.as_bytes()),
            Err(Rejection::TimestampTooOld)
        );
    }

    #[test]
    fn genuine_event_is_verified_and_prepared_without_copying_the_body() {
        let h = signed(SECRET_A, "msg_1", now(), BODY, "svix");
        let v = verify_and_prepare(&h, BODY.as_bytes(), &keys(SECRET_A)).unwrap();
        assert_eq!(v.svix_id.as_str(), "msg_1");
        assert_eq!(v.event_type, "user.updated");
        assert!(matches!(v.event_type, Cow::Borrowed(_)));
        assert_eq!(v.payload.as_ptr(), BODY.as_ptr());
    }

    #[test]
    fn event_signed_with_either_of_two_rotated_secrets_is_accepted() {
        let both = keys(&format!("{SECRET_A}, {SECRET_B}"));
        assert_eq!(both.len(), 2);
        for secret in [SECRET_A, SECRET_B] {
            let h = signed(secret, "msg_r", now(), BODY, "svix");
            assert_eq!(both.verify(&h, BODY.as_bytes()), Ok(()));
        }
    }

    #[test]
    fn header_with_several_v1_entries_is_accepted_when_any_one_matches() {
        let mut h = signed(SECRET_A, "msg_m", now(), BODY, "svix");
        let good = h
            .get("svix-signature")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let bogus = "v1,Ynl0ZXNieXRlc2J5dGVzYnl0ZXNieXRlc2J5dGVzYnk=";
        h.insert(
            "svix-signature",
            HeaderValue::from_str(&format!("{bogus} {good} v1,xyz")).unwrap(),
        );
        assert_eq!(keys(SECRET_A).verify(&h, BODY.as_bytes()), Ok(()));
    }

    #[test]
    fn timestamp_beyond_tolerance_is_rejected_in_both_directions() {
        let k = keys(SECRET_A);
        let old = signed(SECRET_A, "msg_o", now() - 301, BODY, "svix");
        assert_eq!(
            k.verify(&old, BODY.as_bytes()),
            Err(Rejection::TimestampTooOld)
        );
        let future = signed(SECRET_A, "msg_f", now() + 301, BODY, "svix");
        assert_eq!(
            k.verify(&future, BODY.as_bytes()),
            Err(Rejection::TimestampInFuture)
        );
        let inside = signed(SECRET_A, "msg_i", now() - 290, BODY, "svix");
        assert_eq!(k.verify(&inside, BODY.as_bytes()), Ok(()));
        let inside_future = signed(SECRET_A, "msg_j", now() + 290, BODY, "svix");
        assert_eq!(k.verify(&inside_future, BODY.as_bytes()), Ok(()));
    }

    #[test]
    fn tampered_body_fails_the_signature() {
        let h = signed(SECRET_A, "msg_t", now(), BODY, "svix");
        let tampered = BODY.replace("user_1", "user_2");
        assert_eq!(
            keys(SECRET_A).verify(&h, tampered.as_bytes()),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn header_with_only_v2_entries_is_not_accepted() {
        let mut h = signed(SECRET_A, "msg_v2", now(), BODY, "svix");
        let good = h
            .get("svix-signature")
            .unwrap()
            .to_str()
            .unwrap()
            .replacen("v1,", "v2,", 1);
        h.insert("svix-signature", HeaderValue::from_str(&good).unwrap());
        assert_eq!(
            keys(SECRET_A).verify(&h, BODY.as_bytes()),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn event_signed_with_another_secret_is_rejected() {
        let h = signed(SECRET_B, "msg_w", now(), BODY, "svix");
        assert_eq!(
            verify_and_prepare(&h, BODY.as_bytes(), &keys(SECRET_A)),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn white_label_webhook_header_names_are_accepted() {
        let h = signed(SECRET_A, "msg_wl", now(), BODY, "webhook");
        let v = verify_and_prepare(&h, BODY.as_bytes(), &keys(SECRET_A)).unwrap();
        assert_eq!(v.svix_id.as_str(), "msg_wl");
    }

    #[test]
    fn missing_or_empty_headers_are_named_in_the_rejection() {
        let full = signed(SECRET_A, "msg_h", now(), BODY, "svix");
        for name in ["svix-id", "svix-timestamp", "svix-signature"] {
            let mut h = full.clone();
            h.remove(name);
            assert_eq!(SvixHeaders::parse(&h), Err(Rejection::MissingHeader(name)));
            h.insert(
                http::HeaderName::from_static(name),
                HeaderValue::from_static("  "),
            );
            assert_eq!(SvixHeaders::parse(&h), Err(Rejection::InvalidHeader(name)));
        }
        let mut h = full.clone();
        h.insert("svix-timestamp", HeaderValue::from_static("yesterday"));
        assert_eq!(
            SvixHeaders::parse(&h),
            Err(Rejection::InvalidHeader("svix-timestamp"))
        );
    }

    #[test]
    fn genuine_but_malformed_bodies_are_told_apart() {
        let k = keys(SECRET_A);
        let case = |body: &str| {
            let h = signed(SECRET_A, "msg_b", now(), body, "svix");
            verify_and_prepare(&h, body.as_bytes(), &k).unwrap_err()
        };
        assert!(matches!(case("not json"), Rejection::BodyNotJson(_)));
        assert!(matches!(
            case(r#"{"type":"user.created","data":{}} trailing"#),
            Rejection::BodyNotJson(_)
        ));
        assert_eq!(
            case(r#"{"data":{"id":"u"}}"#),
            Rejection::EnvelopeMissing("type")
        );
        assert_eq!(
            case(r#"{"type":"","data":{"id":"u"}}"#),
            Rejection::EnvelopeMissing("type")
        );
        assert_eq!(
            case(r#"{"type":"user.created"}"#),
            Rejection::EnvelopeMissing("data")
        );
        assert_eq!(
            case(r#"{"type":"user.created","data":null}"#),
            Rejection::EnvelopeMissing("data")
        );
    }

    #[test]
    fn non_utf8_body_is_rejected_before_verification() {
        let h = signed(SECRET_A, "msg_u", now(), BODY, "svix");
        let body = [0xff, 0xfe, b'{', b'}'];
        assert_eq!(
            verify_and_prepare(&h, &body, &keys(SECRET_A)),
            Err(Rejection::BodyNotUtf8)
        );
    }

    #[test]
    fn secret_values_are_parsed_from_lists_and_json_and_never_printed() {
        assert_eq!(keys(&format!("{SECRET_A}\n{SECRET_B}")).len(), 2);
        assert_eq!(keys(&format!(r#"["{SECRET_A}","{SECRET_B}"]"#)).len(), 2);
        let parse = |v: &str| WebhookKeys::parse(&SecretString::from(v.to_owned())).unwrap_err();
        assert_eq!(parse(" , "), SecretFormatError::Empty);
        assert_eq!(
            parse(&format!("{SECRET_A} sk_test_123")),
            SecretFormatError::MissingPrefix(2)
        );
        assert_eq!(parse("whsec_!!!notbase64"), SecretFormatError::NotBase64(1));
        assert_eq!(parse(r#"{"a":1}"#), SecretFormatError::BadJson);
        let debug = format!("{:?}", keys(SECRET_A));
        assert!(!debug.contains("MfKQ9r8"), "{debug}");
    }

    #[test]
    fn svix_ids_must_be_visible_ascii_of_bounded_length() {
        assert!(SvixId::parse("msg_2bVxsdfA").is_ok());
        assert!(SvixId::parse("").is_err());
        assert!(SvixId::parse("msg 1").is_err());
        assert!(SvixId::parse(&"a".repeat(257)).is_err());
    }

    #[test]
    fn event_type_filter_defaults_to_user_events_and_refuses_an_empty_list() {
        let f = EventTypeFilter::default();
        assert!(f.allows("user.created") && f.allows("user.updated") && f.allows("user.deleted"));
        assert!(!f.allows("session.created"));
        assert!(EventTypeFilter::parse(" , ").is_err());
        assert!(
            EventTypeFilter::parse("user.created organization.created")
                .unwrap()
                .allows("organization.created")
        );
    }
}
