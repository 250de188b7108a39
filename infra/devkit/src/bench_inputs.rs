//! The inputs the benchmarks share: a signed ~4 KiB Svix delivery and a Clerk-shaped session
//! token with its key, made in one place for the criterion benches and for `make bench-peers`,
//! which writes them out as JSON so the Node and Python peers verify exactly the same bytes.

use clerk_sync::domain::auth::{AdminClaim, BearerToken, TokenPolicy};
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::signing;
use crate::tokens::{DevKeys, LOCAL_AZP, LOCAL_ISSUER};

/// The secret the benchmark deliveries are signed with (not the local stack's).
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A second secret, tried first by the "second of two secrets" case (a rotation).
pub const RETIRING_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// The user the benchmark token speaks for.
pub const USER_ID: &str = "user_35kQ7zvT0cWnHq1d2xXy9RbLmAa";
/// The admin claim the benchmark policy reads (and the token holds).
pub const ADMIN_CLAIM: &str = "o.rol=admin";
/// The body size the webhook benchmarks aim at: a typical `user.updated` with some metadata.
pub const BODY_BYTES: usize = 4096;

/// The `user.updated` fixture with public metadata grown until the pretty-printed body is at least
/// [`BODY_BYTES`] long (it ends up within ~300 bytes past it).
pub fn four_kib_user_updated() -> String {
    let mut event: Value =
        serde_json::from_str(&crate::fixture("user.updated")).expect("the fixture is JSON");
    let mut i = 0;
    while serde_json::to_string_pretty(&event).expect("JSON").len() < BODY_BYTES {
        event["data"]["public_metadata"][format!("preference_{i}")] =
            format!("value-{i}-lorem-ipsum").into();
        i += 1;
    }
    serde_json::to_string_pretty(&event).expect("JSON")
}

/// A signed webhook delivery: what Clerk (through Svix) posts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookInput {
    pub secret: String,
    pub retiring_secret: String,
    pub body: String,
    pub svix_id: String,
    /// Unix seconds; receivers refuse a delivery more than 5 minutes off their clock.
    pub svix_timestamp: i64,
    pub svix_signature: String,
}

impl WebhookInput {
    /// The ~4 KiB `user.updated` body signed with [`WEBHOOK_SECRET`] now.
    pub fn signed_now() -> Self {
        let body = four_kib_user_updated();
        let svix_id = signing::new_svix_id();
        let svix_timestamp = signing::now();
        let headers = signing::sign(WEBHOOK_SECRET, &svix_id, svix_timestamp, &body);
        let svix_signature = headers["svix-signature"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        Self {
            secret: WEBHOOK_SECRET.to_owned(),
            retiring_secret: RETIRING_SECRET.to_owned(),
            body,
            svix_id,
            svix_timestamp,
            svix_signature,
        }
    }

    /// The delivery's `svix-id`, `svix-timestamp` and `svix-signature` headers.
    pub fn headers(&self) -> HeaderMap {
        let value = |v: &str| HeaderValue::from_str(v).expect("header-safe");
        let mut headers = HeaderMap::new();
        headers.insert("svix-id", value(&self.svix_id));
        headers.insert("svix-timestamp", value(&self.svix_timestamp.to_string()));
        headers.insert("svix-signature", value(&self.svix_signature));
        headers
    }
}

/// A session token as Clerk mints it, with what a verifier needs: the public key and the policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInput {
    /// SPKI PEM, what `CLERK_JWT_KEY` holds.
    pub public_pem: String,
    /// The same key as a JWKS document.
    pub jwks: Value,
    pub token: String,
    pub issuer: String,
    pub authorized_party: String,
    pub user_id: String,
    pub leeway_seconds: i64,
    pub admin_claim: String,
}

impl TokenInput {
    /// A token from a freshly generated key, valid for the next hour, carrying an organisation in
    /// which the user is admin (so the admin claim is read too).
    pub fn minted_now() -> Self {
        let keys = DevKeys::generate();
        let mut claims = keys.claims(USER_ID);
        claims["o"] = json!({"id": "org_1", "slg": "acme", "rol": "admin", "per": "read,write"});
        claims["exp"] = (signing::now() + 3600).into();
        Self {
            public_pem: keys.public_pem.clone(),
            jwks: keys.jwks.clone(),
            token: keys.sign(&claims),
            issuer: LOCAL_ISSUER.to_owned(),
            authorized_party: LOCAL_AZP.to_owned(),
            user_id: USER_ID.to_owned(),
            leeway_seconds: 5,
            admin_claim: ADMIN_CLAIM.to_owned(),
        }
    }

    /// The policy the api would run with for this token: issuer, authorized party, admin claim,
    /// pending sessions refused.
    pub fn policy(&self) -> TokenPolicy {
        TokenPolicy {
            issuer: Some(self.issuer.clone()),
            authorized_parties: Some(vec![self.authorized_party.clone()]),
            leeway_seconds: self.leeway_seconds,
            admin: Some(AdminClaim::parse(&self.admin_claim).expect("a valid admin claim")),
            refuse_pending_sessions: true,
        }
    }

    /// The `Authorization` header value the api receives.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// The token as the api's edge parses it.
    pub fn bearer(&self) -> BearerToken {
        BearerToken::from_authorization(Some(&self.authorization())).expect("a bearer token")
    }
}

/// Everything the benchmarks verify, generated once per run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchInputs {
    pub webhook: WebhookInput,
    pub token: TokenInput,
}

impl BenchInputs {
    /// A delivery signed now and a token minted now (an RSA key generated for the run).
    pub fn generate() -> Self {
        Self {
            webhook: WebhookInput::signed_now(),
            token: TokenInput::minted_now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clerk_sync::adapters::svix::{WebhookKeys, verify_and_prepare};
    use clerk_sync::domain::auth::{VerificationKeys, verify};
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn the_benchmark_body_is_a_little_over_four_kib() {
        let body = four_kib_user_updated();
        assert!(
            (BODY_BYTES..BODY_BYTES + 300).contains(&body.len()),
            "{}",
            body.len()
        );
    }

    #[test]
    fn the_generated_delivery_verifies_with_the_bare_svix_crate() {
        let input = WebhookInput::signed_now();
        let bare = svix::webhooks::Webhook::new(&input.secret).unwrap();
        bare.verify(input.body.as_bytes(), &input.headers())
            .unwrap();
    }

    #[test]
    fn the_generated_delivery_verifies_with_ours_under_either_secret_list() {
        let input = WebhookInput::signed_now();
        let headers = input.headers();
        for secrets in [
            input.secret.clone(),
            format!("{} {}", input.retiring_secret, input.secret),
        ] {
            let keys = WebhookKeys::parse(&SecretString::from(secrets)).unwrap();
            let event = verify_and_prepare(&headers, input.body.as_bytes(), &keys).unwrap();
            assert_eq!(event.event_type, "user.updated");
        }
    }

    #[test]
    fn the_generated_token_verifies_with_ours_as_an_admin() {
        let input = TokenInput::minted_now();
        for keys in [
            VerificationKeys::from_pem(&input.public_pem).unwrap(),
            VerificationKeys::from_jwks(input.jwks.to_string().as_bytes()).unwrap(),
        ] {
            let principal =
                verify(&input.bearer(), &keys, &input.policy(), signing::now()).unwrap();
            assert_eq!(principal.user_id.as_str(), USER_ID);
            assert!(principal.is_admin);
        }
    }

    #[test]
    fn the_inputs_survive_a_round_trip_through_json() {
        let inputs = BenchInputs::generate();
        let back: BenchInputs =
            serde_json::from_str(&serde_json::to_string(&inputs).unwrap()).unwrap();
        assert_eq!(back.webhook.body, inputs.webhook.body);
        assert_eq!(back.token.token, inputs.token.token);
    }
}
