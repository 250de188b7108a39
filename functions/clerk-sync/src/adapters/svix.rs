//! Svix's signature scheme through the `svix` crate: the domain's [`SignatureCheck`], and the
//! webhook's request headers read into the domain's terms.

use std::fmt;

use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::webhook::{
    ID_HEADER, Rejection, SIGNATURE_HEADER, SecretFormatError, SignatureCheck, SvixHeaders,
    TIMESTAMP_HEADER, Unverified, Verified, signing_secrets,
};

/// The signing keys of every live Clerk endpoint secret (two during a rotation).
pub struct WebhookKeys {
    keys: Vec<::svix::webhooks::Webhook>,
}

impl fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookKeys")
            .field("secrets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl WebhookKeys {
    /// Parses a stored secret value: one or more `whsec_…` secrets separated by whitespace or
    /// commas, or a JSON array of them.
    pub fn parse(value: &SecretString) -> Result<Self, SecretFormatError> {
        let keys = signing_secrets(value.expose_secret())?
            .iter()
            .enumerate()
            .map(|(i, secret)| {
                ::svix::webhooks::Webhook::new(secret)
                    .map_err(|_| SecretFormatError::NotBase64(i + 1))
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
}

impl SignatureCheck for WebhookKeys {
    /// Checks the signature against every key, the timestamp against a ±5 minute tolerance.
    fn check(&self, headers: &SvixHeaders<'_>, payload: &str) -> Result<(), Rejection> {
        use ::svix::webhooks::WebhookError as E;
        let signed = svix_headers(headers)?;
        for key in &self.keys {
            match key.verify(payload.as_bytes(), &signed) {
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
                Err(E::InvalidTimestamp) => return Err(Rejection::InvalidHeader(TIMESTAMP_HEADER)),
            }
        }
        Err(Rejection::SignatureMismatch)
    }
}

/// The parsed headers as the `svix` crate reads them.
fn svix_headers(headers: &SvixHeaders<'_>) -> Result<HeaderMap, Rejection> {
    let value = |name: &'static str, v: &str| {
        HeaderValue::from_str(v).map_err(|_| Rejection::InvalidHeader(name))
    };
    let mut map = HeaderMap::with_capacity(3);
    map.insert(ID_HEADER, value(ID_HEADER, headers.id.as_str())?);
    map.insert(TIMESTAMP_HEADER, HeaderValue::from(headers.timestamp));
    map.insert(
        SIGNATURE_HEADER,
        value(SIGNATURE_HEADER, headers.signature)?,
    );
    Ok(map)
}

fn canonical(svix_name: &str) -> &'static str {
    match svix_name {
        "id" => ID_HEADER,
        "timestamp" => TIMESTAMP_HEADER,
        _ => SIGNATURE_HEADER,
    }
}

/// A request's Svix headers and body, checked for form (not yet for authenticity).
pub fn unverified<'b>(headers: &'b HeaderMap, body: &'b [u8]) -> Result<Unverified<'b>, Rejection> {
    Unverified::parse(|name| headers.get(name).map(HeaderValue::as_bytes), body)
}

/// Parses and verifies a webhook in one step, and extracts what the queue message carries.
pub fn verify_and_prepare<'b>(
    headers: &'b HeaderMap,
    body: &'b [u8],
    keys: &WebhookKeys,
) -> Result<Verified<'b>, Rejection> {
    unverified(headers, body)?.verify(keys)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

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
        let sig = ::svix::webhooks::Webhook::new(secret)
            .unwrap()
            .sign(id, ts, body.as_bytes())
            .unwrap();
        let mut h = HeaderMap::new();
        let mut set = |name: &str, value: &str| {
            h.insert(
                http::HeaderName::from_bytes(format!("{prefix}-{name}").as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        };
        set("id", id);
        set("timestamp", &ts.to_string());
        set("signature", &sig);
        h
    }

    /// The signature check alone (every body here is a well-formed envelope).
    fn verify(keys: &WebhookKeys, h: &HeaderMap, body: &str) -> Result<(), Rejection> {
        verify_and_prepare(h, body.as_bytes(), keys).map(|_| ())
    }

    #[test]
    fn published_svix_test_vector_verifies_ignoring_its_old_timestamp() {
        let mut h = HeaderMap::new();
        h.insert("svix-id", HeaderValue::from_static(VECTOR_ID));
        h.insert("svix-timestamp", HeaderValue::from_static(VECTOR_TS));
        h.insert("svix-signature", HeaderValue::from_static(VECTOR_SIG));
        let key = ::svix::webhooks::Webhook::new(VECTOR_SECRET).unwrap();
        key.verify_ignoring_timestamp(VECTOR_BODY.as_bytes(), &h)
            .unwrap();
        let expected = key
            .sign(VECTOR_ID, 1731705121, VECTOR_BODY.as_bytes())
            .unwrap();
        assert_eq!(expected, VECTOR_SIG);
        // With the tolerance enforced the same vector is (correctly) too old.
        assert_eq!(
            verify(&keys(VECTOR_SECRET), &h, VECTOR_BODY),
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
            assert_eq!(verify(&both, &h, BODY), Ok(()));
        }
    }

    #[test]
    fn header_with_several_v1_entries_is_accepted_when_any_one_matches() {
        let mut h = signed(SECRET_A, "msg_m", now(), BODY, "svix");
        let good = h["svix-signature"].to_str().unwrap().to_owned();
        let bogus = "v1,Ynl0ZXNieXRlc2J5dGVzYnl0ZXNieXRlc2J5dGVzYnk=";
        h.insert(
            "svix-signature",
            HeaderValue::from_str(&format!("{bogus} {good} v1,xyz")).unwrap(),
        );
        assert_eq!(verify(&keys(SECRET_A), &h, BODY), Ok(()));
    }

    #[test]
    fn timestamp_beyond_tolerance_is_rejected_in_both_directions() {
        let k = keys(SECRET_A);
        let at = |ts: i64| signed(SECRET_A, "msg_o", ts, BODY, "svix");
        assert_eq!(
            verify(&k, &at(now() - 301), BODY),
            Err(Rejection::TimestampTooOld)
        );
        assert_eq!(
            verify(&k, &at(now() + 301), BODY),
            Err(Rejection::TimestampInFuture)
        );
        assert_eq!(verify(&k, &at(now() - 290), BODY), Ok(()));
        assert_eq!(verify(&k, &at(now() + 290), BODY), Ok(()));
    }

    #[test]
    fn tampered_body_fails_the_signature() {
        let h = signed(SECRET_A, "msg_t", now(), BODY, "svix");
        let tampered = BODY.replace("user_1", "user_2");
        assert_eq!(
            verify(&keys(SECRET_A), &h, &tampered),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn header_with_only_v2_entries_is_not_accepted() {
        let mut h = signed(SECRET_A, "msg_v2", now(), BODY, "svix");
        let v2 = h["svix-signature"]
            .to_str()
            .unwrap()
            .replacen("v1,", "v2,", 1);
        h.insert("svix-signature", HeaderValue::from_str(&v2).unwrap());
        assert_eq!(
            verify(&keys(SECRET_A), &h, BODY),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn event_signed_with_another_secret_is_rejected() {
        let h = signed(SECRET_B, "msg_w", now(), BODY, "svix");
        assert_eq!(
            verify(&keys(SECRET_A), &h, BODY),
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
            let parsed = |h: &HeaderMap| unverified(h, BODY.as_bytes()).map(|_| ()).unwrap_err();
            assert_eq!(parsed(&h), Rejection::MissingHeader(name));
            h.insert(
                http::HeaderName::from_static(name),
                HeaderValue::from_static("  "),
            );
            assert_eq!(parsed(&h), Rejection::InvalidHeader(name));
        }
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
        assert_eq!(
            parse(&format!("{SECRET_A} whsec_!!!")),
            SecretFormatError::NotBase64(2)
        );
        assert_eq!(parse(r#"{"a":1}"#), SecretFormatError::BadJson);
        let debug = format!("{:?}", keys(SECRET_A));
        // Exactly the count: neither the secret's text nor its decoded key bytes.
        assert_eq!(debug, "WebhookKeys { secrets: 1, .. }");
    }
}
