//! The three Svix headers, under their `svix-*` or white-label `webhook-*` names.

use std::fmt;

use super::Rejection;

/// The message id header (`webhook-id` is accepted too).
pub const ID_HEADER: &str = "svix-id";
/// The signing time header, Unix seconds (`webhook-timestamp` is accepted too).
pub const TIMESTAMP_HEADER: &str = "svix-timestamp";
/// The signatures header, space-separated `v1,<base64>` entries (`webhook-signature` too).
pub const SIGNATURE_HEADER: &str = "svix-signature";

const NAMES: [(&str, &str); 3] = [
    (ID_HEADER, "webhook-id"),
    (TIMESTAMP_HEADER, "webhook-timestamp"),
    (SIGNATURE_HEADER, "webhook-signature"),
];

/// The id Svix gives a message; the same on every retry of it, so it is the dedupe key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SvixId(String);

impl SvixId {
    /// Accepts 1..=256 visible ASCII characters (Svix ids look like `msg_2b…`).
    pub fn parse(raw: &str) -> Result<Self, Rejection> {
        if crate::is_visible_ascii_id(raw, 256) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Rejection::InvalidHeader(ID_HEADER))
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

/// The Svix headers of one request, checked for presence and form (not yet for authenticity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvixHeaders<'h> {
    pub id: SvixId,
    /// Unix seconds, as sent by Svix.
    pub timestamp: i64,
    /// The signature header's value, trimmed and non-empty; its entries are judged by the
    /// [`super::SignatureCheck`].
    pub signature: &'h str,
}

impl<'h> SvixHeaders<'h> {
    /// Parses the headers `get` returns by name (the raw value bytes, as HTTP carries them).
    pub fn parse(get: impl Fn(&str) -> Option<&'h [u8]>) -> Result<Self, Rejection> {
        let [id, timestamp, signature] = NAMES;
        let id = SvixId::parse(header(&get, id)?)?;
        let timestamp = header(&get, timestamp)?
            .parse::<i64>()
            .map_err(|_| Rejection::InvalidHeader(TIMESTAMP_HEADER))?;
        let signature = header(&get, signature)?;
        Ok(Self {
            id,
            timestamp,
            signature,
        })
    }
}

/// A header's value under either name: visible ASCII (tabs allowed, as HTTP allows), trimmed,
/// not empty.
fn header<'h>(
    get: &impl Fn(&str) -> Option<&'h [u8]>,
    (svix, white_label): (&'static str, &str),
) -> Result<&'h str, Rejection> {
    let value = get(svix)
        .or_else(|| get(white_label))
        .ok_or(Rejection::MissingHeader(svix))?;
    let text = value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
        .ok_or(Rejection::InvalidHeader(svix))?
        .trim();
    if text.is_empty() {
        return Err(Rejection::InvalidHeader(svix));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'h>(headers: &'h [(&'h str, &'h str)]) -> impl Fn(&str) -> Option<&'h [u8]> {
        |name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        }
    }

    const FULL: [(&str, &str); 3] = [
        ("svix-id", "msg_h"),
        ("svix-timestamp", "1700000000"),
        ("svix-signature", "v1,abc"),
    ];

    #[test]
    fn the_three_headers_are_read_and_trimmed() {
        let headers = [
            ("svix-id", " msg_h "),
            ("svix-timestamp", "1700000000"),
            ("svix-signature", "\tv1,abc v1,def "),
        ];
        let h = SvixHeaders::parse(lookup(&headers)).unwrap();
        assert_eq!(h.id.as_str(), "msg_h");
        assert_eq!(h.timestamp, 1_700_000_000);
        assert_eq!(h.signature, "v1,abc v1,def");
    }

    #[test]
    fn white_label_names_are_read_when_the_svix_names_are_absent() {
        let headers = [
            ("webhook-id", "msg_wl"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", "v1,abc"),
        ];
        assert_eq!(
            SvixHeaders::parse(lookup(&headers)).unwrap().id.as_str(),
            "msg_wl"
        );
    }

    #[test]
    fn missing_blank_or_non_ascii_headers_are_named_in_the_rejection() {
        for name in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
            let without: Vec<_> = FULL.into_iter().filter(|(n, _)| *n != name).collect();
            assert_eq!(
                SvixHeaders::parse(lookup(&without)),
                Err(Rejection::MissingHeader(name))
            );
            for bad in ["  ", "caf\u{e9}", "a\u{7f}b"] {
                let mut with: Vec<_> = without.clone();
                with.push((name, bad));
                assert_eq!(
                    SvixHeaders::parse(lookup(&with)),
                    Err(Rejection::InvalidHeader(name)),
                    "{name}: {bad:?}"
                );
            }
        }
        let mut h = FULL.to_vec();
        h[1].1 = "yesterday";
        assert_eq!(
            SvixHeaders::parse(lookup(&h)),
            Err(Rejection::InvalidHeader(TIMESTAMP_HEADER))
        );
    }

    #[test]
    fn svix_ids_must_be_visible_ascii_of_bounded_length() {
        assert!(SvixId::parse("msg_2bVxsdfA").is_ok());
        assert!(SvixId::parse("").is_err());
        assert!(SvixId::parse("msg 1").is_err());
        assert!(SvixId::parse(&"a".repeat(256)).is_ok());
        assert!(SvixId::parse(&"a".repeat(257)).is_err());
    }
}
