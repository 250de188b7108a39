//! Svix-signed Clerk webhooks: what a genuine, well-formed event is, and why a request is not one.
//!
//! Everything here is pure and holds no HTTP type: the caller looks the headers up, supplies the
//! raw body, and checks the signature through [`SignatureCheck`] (Svix's scheme, implemented with
//! the `svix` crate in clerk-sync's `adapters::svix`). The result is a [`Verified`] event ready to
//! queue, or a [`Rejection`] saying why not.

mod envelope;
mod filter;
mod headers;
mod secrets;

pub use envelope::{SignatureCheck, Unverified, Verified};
pub use filter::{DEFAULT_SYNCED_EVENT_TYPES, EventTypeFilter};
pub use headers::{ID_HEADER, SIGNATURE_HEADER, SvixHeaders, SvixId, TIMESTAMP_HEADER};
pub use secrets::{SIGNING_SECRET_PREFIX, SecretFormatError, signing_secrets};

/// Largest body we accept. Clerk's user payloads are a few KiB; metadata is capped at 8 KiB per
/// field, so anything near this is not a Clerk event.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

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
    BodyNotJson(crate::json::JsonError),
    #[error("event envelope has no `{0}`")]
    EnvelopeMissing(&'static str),
    #[error("signature matches none of the signing secrets")]
    SignatureMismatch,
    #[error("timestamp is more than 5 minutes old")]
    TimestampTooOld,
    #[error("timestamp is more than 5 minutes in the future")]
    TimestampInFuture,
}
