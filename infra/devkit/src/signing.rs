//! Signing Clerk webhooks the way Svix does, with the current time.

use http::{HeaderMap, HeaderValue};

/// LOCAL DEVELOPMENT ONLY: the signing secret the local stack uses when `CLERK_WEBHOOK_SECRET`
/// is not set. It is public; never configure it in a deployed Clerk endpoint.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_bG9jYWwtZGV2LW9ubHktbm90LWEtcmVhbC1zZWNyZXQ=";

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::UNIX_EPOCH
        .elapsed()
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A fresh Svix message id.
pub fn new_svix_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::UNIX_EPOCH
        .elapsed()
        .expect("clock after 1970")
        .as_nanos();
    format!("msg_dev{nanos:x}{:x}", N.fetch_add(1, Ordering::Relaxed))
}

/// `svix-id`, `svix-timestamp` and `svix-signature` headers for `body`.
pub fn sign(secret: &str, svix_id: &str, timestamp: i64, body: &str) -> HeaderMap {
    let signature = svix::webhooks::Webhook::new(secret)
        .expect("a whsec_ secret")
        .sign(svix_id, timestamp, body.as_bytes())
        .expect("UTF-8 body");
    let mut headers = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).expect("header-safe");
    headers.insert("svix-id", value(svix_id));
    headers.insert("svix-timestamp", value(&timestamp.to_string()));
    headers.insert("svix-signature", value(&signature));
    headers
}

/// Headers signing `body` now, under a new message id.
pub fn sign_now(secret: &str, body: &str) -> HeaderMap {
    sign(secret, &new_svix_id(), now(), body)
}
