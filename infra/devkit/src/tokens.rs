//! A local Clerk's session tokens: a freshly generated RSA key pair, its JWKS, and minted RS256
//! tokens with Clerk's claims. For the local stack and tests only.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// The issuer the local stack's tokens carry (a Clerk Frontend API URL in production).
pub const LOCAL_ISSUER: &str = "https://clerk.local.dev";
/// The authorized party (`azp`) the local stack's tokens carry.
pub const LOCAL_AZP: &str = "http://localhost:5173";

/// The `cat` header Clerk puts on each kind of token it signs with the instance key.
pub mod category {
    pub const SESSION_TOKEN: &str = "cl_B7d4PD111AAA";
    pub const JWT_TEMPLATE: &str = "cl_B7d4PD222AAA";
    pub const MACHINE_TOKEN: &str = "cl_B7d4PD333AAA";
    /// Stamped on every kind of token by instances with `use_ignore_jwt_cat`.
    pub const IGNORED: &str = "cl_I7d4PD111III";
}

/// An RSA key pair generated for this run.
#[derive(Clone)]
pub struct DevKeys {
    pub kid: String,
    /// PKCS#8 private key, PEM.
    pub private_pem: String,
    /// SPKI public key, PEM (what `CLERK_JWT_KEY` holds).
    pub public_pem: String,
    /// `{"keys":[…]}` with the public key (what `CLERK_JWKS_URL` serves).
    pub jwks: Value,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl DevKeys {
    pub fn generate() -> Self {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::KeyPair as _;
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let private: Pkcs8V1Der = pair.as_der().expect("PKCS#8 encoding");
        let public = pair.public_key();
        let spki: PublicKeyX509Der = public.as_der().expect("SPKI encoding");
        // From the key itself: two keys generated in the same second (tests do) must not share a kid.
        let modulus = public.modulus().big_endian_without_leading_zero();
        let kid = modulus[modulus.len() - 8..]
            .iter()
            .fold("ins_local_".to_owned(), |kid, b| kid + &format!("{b:02x}"));
        let jwks = json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(modulus),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }]});
        Self {
            kid,
            private_pem: pem("PRIVATE KEY", private.as_ref()),
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
            jwks,
        }
    }

    /// Session-token claims for `user_id`, valid now for 60 s, as Clerk mints them.
    pub fn claims(&self, user_id: &str) -> Value {
        let now = crate::signing::now();
        json!({
            "sub": user_id,
            "sid": format!("sess_local{now:x}"),
            "iss": LOCAL_ISSUER,
            "azp": LOCAL_AZP,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 60,
            "jti": format!("jti{now:x}"),
            "v": 2,
            "sts": "active",
        })
    }

    /// The protected header of Clerk's session tokens: RS256, this `kid`, `typ` and `cat`.
    /// Change or remove fields to mint other kinds of token.
    pub fn header(&self) -> Value {
        json!({
            "alg": "RS256",
            "cat": category::SESSION_TOKEN,
            "kid": self.kid,
            "typ": "JWT",
        })
    }

    /// Signs `claims` as a session token (RS256, this `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }

    /// Signs `claims` under `header` exactly as given (RS256 with this key, whatever `alg` says).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).expect("our own key");
        let message = signing_input(header, claims);
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::RS256)
            .expect("signing");
        format!("{message}.{signature}")
    }

    /// A session token for `user_id`, valid for the next 60 s.
    pub fn mint(&self, user_id: &str) -> String {
        self.sign(&self.claims(user_id))
    }
}

/// A token with arbitrary header and payload and the given signature bytes, for attack tests
/// (`alg: none`, HS256 key confusion, tampering).
pub fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}",
        signing_input(header, claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// `base64url(header).base64url(claims)`, what a JWS signature covers.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
