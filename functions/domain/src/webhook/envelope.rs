//! From a request with Svix headers to a genuine event: the signature first, then the envelope.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Rejection, SvixHeaders, SvixId};

/// Svix's signature scheme: whether `payload` carries a valid signature of one of the live
/// signing secrets, with a timestamp inside the ±5 minute tolerance. Implemented with the `svix`
/// crate (clerk-sync's `adapters::svix::WebhookKeys`).
pub trait SignatureCheck {
    /// `Ok` for a genuine request; otherwise `SignatureMismatch`, `TimestampTooOld` or
    /// `TimestampInFuture` (or a header or body rejection the scheme finds first).
    fn check(&self, headers: &SvixHeaders<'_>, payload: &str) -> Result<(), Rejection>;
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
    pub event_type: Cow<'a, str>,
    /// The exact bytes Svix signed.
    pub payload: &'a str,
}

/// A request that has well-formed Svix headers and a UTF-8 body, not yet verified.
#[derive(Debug, Clone)]
pub struct Unverified<'b> {
    svix: SvixHeaders<'b>,
    payload: &'b str,
}

impl<'b> Unverified<'b> {
    /// Checks everything that can be checked without the signing keys: the headers `get`
    /// returns by name, and that the body is UTF-8.
    pub fn parse(
        get: impl Fn(&str) -> Option<&'b [u8]>,
        body: &'b [u8],
    ) -> Result<Self, Rejection> {
        let svix = SvixHeaders::parse(get)?;
        let payload = std::str::from_utf8(body).map_err(|_| Rejection::BodyNotUtf8)?;
        Ok(Self { svix, payload })
    }

    pub fn svix_id(&self) -> &SvixId {
        &self.svix.id
    }

    /// Verifies the signature, then the envelope. A forgery is a signature rejection whatever
    /// its body; only a genuine event's body is judged.
    pub fn verify(&self, keys: &impl SignatureCheck) -> Result<Verified<'b>, Rejection> {
        keys.check(&self.svix, self.payload)?;
        let envelope: Envelope<'b> =
            crate::json::parse(self.payload).map_err(Rejection::BodyNotJson)?;
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
            event_type,
            payload: self.payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts exactly the requests whose signature header is `v1,good`.
    struct Accepts;

    impl SignatureCheck for Accepts {
        fn check(&self, headers: &SvixHeaders<'_>, _: &str) -> Result<(), Rejection> {
            if headers.signature == "v1,good" {
                Ok(())
            } else {
                Err(Rejection::SignatureMismatch)
            }
        }
    }

    fn request<'b>(signature: &'b str, body: &'b str) -> Result<Verified<'b>, Rejection> {
        let get = move |name: &str| match name {
            "svix-id" => Some(b"msg_1".as_slice()),
            "svix-timestamp" => Some(b"1700000000".as_slice()),
            "svix-signature" => Some(signature.as_bytes()),
            _ => None,
        };
        Unverified::parse(get, body.as_bytes())?.verify(&Accepts)
    }

    const BODY: &str = r#"{"data":{"id":"user_1"},"object":"event","type":"user.updated"}"#;

    #[test]
    fn a_genuine_event_is_prepared_without_copying_the_body() {
        let v = request("v1,good", BODY).unwrap();
        assert_eq!(v.svix_id.as_str(), "msg_1");
        assert_eq!(v.event_type, "user.updated");
        assert!(matches!(v.event_type, Cow::Borrowed(_)));
        assert_eq!(v.payload.as_ptr(), BODY.as_ptr());
    }

    #[test]
    fn a_forgery_is_a_signature_rejection_whatever_its_body() {
        assert_eq!(
            request("v1,bad", "not json"),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn genuine_but_malformed_bodies_are_told_apart() {
        let case = |body: &str| request("v1,good", body).unwrap_err();
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
    fn a_body_that_is_not_utf8_is_rejected_before_the_signature() {
        let get = |name: &str| (name != "nothing").then_some(b"1".as_slice());
        assert!(matches!(
            Unverified::parse(get, &[0xff, 0xfe]),
            Err(Rejection::BodyNotUtf8)
        ));
    }
}
