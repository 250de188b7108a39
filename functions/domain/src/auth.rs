//! Clerk session tokens: the bearer token from `Authorization`, the verification keys, and the
//! checks, in order. Header (decoded once): `alg` RS256 only, `typ` absent or exactly `JWT`, `cat`
//! absent or a session token's, so JWT-template and machine tokens signed with the same instance key
//! are refused. Then the key (by `kid`), the signature before any claim, `exp`/`nbf`/`iat` with a
//! bounded clock skew, `sub`, `iss` and `azp` when configured, and pending sessions (`sts`) when
//! asked. Equal to or stricter than Clerk's own `verifyToken`.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::user::UserId;

/// Why a request is not authenticated. Every variant is a 401; the text is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token in the Authorization header")]
    MissingToken,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not RS256")]
    UnsupportedAlgorithm,
    #[error("the token's `typ` header is not JWT")]
    WrongType,
    #[error("the token is not a Clerk session token")]
    NotASessionToken,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token has no valid `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token's authorized party is not accepted")]
    UnauthorizedParty,
    #[error("the token's session is pending: sign-in is not complete")]
    PendingSession,
}

impl AuthError {
    /// A stable name for the refusal, for metrics and logs (never the token or its claims).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::NotBearer => "not_bearer",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::WrongType => "wrong_type",
            Self::NotASessionToken => "not_a_session_token",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::MissingClaim(_) => "missing_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::UnauthorizedParty => "unauthorized_party",
            Self::PendingSession => "pending_session",
        }
    }

    /// The RFC 6750 `error` of the `WWW-Authenticate` challenge.
    pub fn challenge_error(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::NotBearer => "invalid_request",
            _ => "invalid_token",
        }
    }

    /// The `WWW-Authenticate` header value for this failure.
    pub fn challenge(&self) -> String {
        format!(
            "Bearer error=\"{}\", error_description=\"{self}\"",
            self.challenge_error()
        )
    }
}

/// A bearer token as received. Its `Debug` never shows it.
pub struct BearerToken(SecretString);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

impl BearerToken {
    /// From the `Authorization` header value (`Bearer <token>`, scheme case-insensitive). Tokens
    /// anywhere else (query string, cookies) are never looked at.
    pub fn from_authorization(header: Option<&str>) -> Result<Self, AuthError> {
        let header = header.map(str::trim).filter(|h| !h.is_empty());
        let Some(header) = header else {
            return Err(AuthError::MissingToken);
        };
        if header.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::MissingToken);
        }
        let (scheme, token) = header.split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        // Base64url segments and dots only: anything else cannot be a JWS compact token.
        if token.len() > 16 * 1024
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(AuthError::Malformed);
        }
        Ok(Self(SecretString::from(token.to_owned())))
    }

    pub fn new(token: impl Into<String>) -> Self {
        Self(SecretString::from(token.into()))
    }

    fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// The keys tokens may be signed with.
#[derive(Clone, Default)]
pub struct VerificationKeys {
    /// From a JWKS, by `kid`.
    by_kid: HashMap<String, DecodingKey>,
    /// A PEM public key (`CLERK_JWT_KEY`): used whatever the `kid`.
    pinned: Option<DecodingKey>,
}

impl fmt::Debug for VerificationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKeys")
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .field("pinned", &self.pinned.is_some())
            .finish()
    }
}

/// A key source's content is not usable.
#[derive(Debug, thiserror::Error)]
#[error("verification keys are unusable: {0}")]
pub struct KeyFormatError(String);

impl VerificationKeys {
    /// An RSA public key in PEM (`-----BEGIN PUBLIC KEY-----`), as Clerk's dashboard shows it.
    pub fn from_pem(pem: &str) -> Result<Self, KeyFormatError> {
        // Environment variables often carry PEMs with literal `\n`.
        let pem = pem.trim().replace("\\n", "\n");
        let key = DecodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| KeyFormatError(format!("CLERK_JWT_KEY is not an RSA public key: {e}")))?;
        Ok(Self {
            by_kid: HashMap::new(),
            pinned: Some(key),
        })
    }

    /// A JWKS document. Only RSA signing keys for RS256 are kept; others are ignored.
    pub fn from_jwks(json: &[u8]) -> Result<Self, KeyFormatError> {
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(json)
            .map_err(|e| KeyFormatError(format!("not a JWKS document: {e}")))?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let usable = matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_)
            ) && jwk
                .common
                .key_algorithm
                .is_none_or(|a| a == jsonwebtoken::jwk::KeyAlgorithm::RS256)
                && jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature);
            if let (true, Some(kid), jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa)) =
                (usable, &jwk.common.key_id, &jwk.algorithm)
                && let Some(der) = rsa_public_key_der(&rsa.n, &rsa.e)
            {
                by_kid.insert(kid.clone(), DecodingKey::from_rsa_der(&der));
            }
        }
        if by_kid.is_empty() {
            return Err(KeyFormatError("the JWKS has no RS256 signing key".into()));
        }
        Ok(Self {
            by_kid,
            pinned: None,
        })
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + usize::from(self.pinned.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key_for(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        self.pinned
            .as_ref()
            .or_else(|| kid.and_then(|k| self.by_kid.get(k)))
    }

    /// Whether a token naming `kid` could be checked with these keys (else: refetch the JWKS).
    pub fn knows(&self, kid: Option<&str>) -> bool {
        self.key_for(kid).is_some()
    }
}

/// A JWK's RSA modulus and exponent (base64url) as a PKCS#1 `RSAPublicKey` DER, the form the
/// PEM path yields too: verifying against it is faster than against bare components, which are
/// turned into a key on every verification.
fn rsa_public_key_der(n: &str, e: &str) -> Option<Vec<u8>> {
    let decode = |v: &str| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok();
    fn length(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
    }
    fn integer(unsigned: &[u8], out: &mut Vec<u8>) {
        let trimmed: &[u8] = match unsigned.iter().position(|b| *b != 0) {
            Some(i) => &unsigned[i..],
            None => &[0],
        };
        let pad = trimmed[0] & 0x80 != 0;
        out.push(0x02);
        length(trimmed.len() + usize::from(pad), out);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
    }
    let (n, e) = (decode(n)?, decode(e)?);
    if n.is_empty() || e.is_empty() {
        return None;
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&n, &mut body);
    integer(&e, &mut body);
    let mut der = vec![0x30];
    length(body.len(), &mut der);
    der.extend(body);
    Some(der)
}

/// A claim that makes the caller an admin: the value at a dotted path (`metadata.role`, `o.rol`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminClaim {
    path: Vec<String>,
    value: String,
}

impl AdminClaim {
    /// Parses `path=value`, e.g. `metadata.role=admin`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (path, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?} is not `claim.path=value`"))?;
        let path: Vec<String> = path.trim().split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) || value.trim().is_empty() {
            return Err(format!("{spec:?} is not `claim.path=value`"));
        }
        Ok(Self {
            path,
            value: value.trim().to_owned(),
        })
    }

    /// True when the claim is the value, or an array containing it.
    fn holds(&self, claims: &Map<String, Value>) -> bool {
        let mut at = claims.get(&self.path[0]);
        for segment in &self.path[1..] {
            at = at.and_then(|v| v.get(segment));
        }
        match at {
            Some(Value::String(s)) => *s == self.value,
            Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(&self.value)),
            _ => false,
        }
    }
}

/// What a token must satisfy beyond its signature.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// `iss` must equal this, when set (`CLERK_ISSUER`).
    pub issuer: Option<String>,
    /// `azp` must be present and one of these, when set (`CLERK_AUTHORIZED_PARTIES`).
    pub authorized_parties: Option<Vec<String>>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: i64,
    /// The claim that grants reading other users (`CLERK_ADMIN_CLAIM`).
    pub admin: Option<AdminClaim>,
    /// Refuse sessions whose `sts` is `pending`: signed in, but with a step such as MFA or
    /// choosing an organisation still to do (`CLERK_REFUSE_PENDING_SESSIONS`).
    pub refuse_pending_sessions: bool,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            issuer: None,
            authorized_parties: None,
            leeway_seconds: 5,
            admin: None,
            refuse_pending_sessions: false,
        }
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub is_admin: bool,
}

/// The `cat` header of Clerk session tokens. JWT-template (`cl_B7d4PD222AAA`) and machine
/// (`cl_B7d4PD333AAA`) tokens are signed with the same instance key and differ only here.
pub const SESSION_TOKEN_CATEGORY: &str = "cl_B7d4PD111AAA";

/// The `cat` that instances with Clerk's `use_ignore_jwt_cat` setting stamp on every token,
/// whatever its kind. It says nothing, so Clerk's SDKs treat it as absent, and so do we: on such
/// an instance a template token cannot be told from a session token by its header (see README).
pub const IGNORED_CATEGORY: &str = "cl_I7d4PD111III";

/// The protected header fields the checks read; the rest are ignored, as Clerk ignores them.
#[derive(Deserialize)]
struct Header {
    alg: String,
    /// `Some(Value::Null)` for `"typ": null`, which Clerk refuses; `None` when absent.
    #[serde(default, deserialize_with = "present")]
    typ: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    cat: Option<Value>,
    kid: Option<String>,
}

/// A field that is present, `null` included (a plain `Option` reads `null` as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A bearer token whose header passed: RS256, a `typ` of `JWT` and a session token's `cat` (each
/// absent or exactly that). Nothing else in it is trusted yet; its `kid` only chooses a key.
pub struct UnverifiedToken<'t> {
    /// `header.payload`, what the signature covers.
    signing_input: &'t str,
    payload: &'t str,
    signature: &'t str,
    kid: Option<String>,
}

impl fmt::Debug for UnverifiedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl<'t> UnverifiedToken<'t> {
    /// Decodes the header, once, and checks `alg`, `typ` and `cat`. No key or signature work is
    /// spent on a token these refuse.
    pub fn parse(token: &'t BearerToken) -> Result<Self, AuthError> {
        let (signing_input, signature) = token
            .expose()
            .rsplit_once('.')
            .ok_or(AuthError::Malformed)?;
        let (header, payload) = signing_input
            .split_once('.')
            .filter(|(_, payload)| !payload.contains('.'))
            .ok_or(AuthError::Malformed)?;
        let header: Header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(AuthError::Malformed)?;
        if header.alg != "RS256" {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        // Exactly `JWT`, as Clerk compares it. RFC 7515 makes `typ` a media type, so
        // case-insensitive, but Clerk refuses `jwt` and only ever mints `JWT`: accepting other
        // spellings would be laxer than Clerk for no token Clerk issues.
        if header.typ.is_some_and(|typ| typ != "JWT") {
            return Err(AuthError::WrongType);
        }
        // Absent on tokens minted before Clerk added categories, and meaningless when it is the
        // ignored category; any other value (including a non-string) is another kind of token.
        if header
            .cat
            .is_some_and(|cat| cat != SESSION_TOKEN_CATEGORY && cat != IGNORED_CATEGORY)
        {
            return Err(AuthError::NotASessionToken);
        }
        Ok(Self {
            signing_input,
            payload,
            signature,
            kid: header.kid,
        })
    }

    /// The key id the header names, for choosing (or refetching) keys.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Checks the signature with `keys`, then the claims against `policy` at `now` (Unix
    /// seconds).
    pub fn verify(
        &self,
        keys: &VerificationKeys,
        policy: &TokenPolicy,
        now: i64,
    ) -> Result<Principal, AuthError> {
        let key = keys.key_for(self.kid()).ok_or(AuthError::UnknownKey)?;
        // The algorithm is fixed here, never taken from the token.
        let valid = jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            key,
            Algorithm::RS256,
        )
        .map_err(|_| AuthError::Malformed)?;
        if !valid {
            return Err(AuthError::BadSignature);
        }
        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(self.payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(AuthError::Malformed)?;
        check_claims(&claims, policy, now)
    }
}

/// Verifies `token` at `now` (Unix seconds): header, signature, then claims.
pub fn verify(
    token: &BearerToken,
    keys: &VerificationKeys,
    policy: &TokenPolicy,
    now: i64,
) -> Result<Principal, AuthError> {
    UnverifiedToken::parse(token)?.verify(keys, policy, now)
}

/// The claims of a token whose signature holds.
fn check_claims(
    claims: &Map<String, Value>,
    policy: &TokenPolicy,
    now: i64,
) -> Result<Principal, AuthError> {
    let time = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_i64)
            .ok_or(AuthError::MissingClaim(name))
    };
    let leeway = policy.leeway_seconds;
    if now > time("exp")?.saturating_add(leeway) {
        return Err(AuthError::Expired);
    }
    if time("nbf")? > now.saturating_add(leeway) {
        return Err(AuthError::NotYetValid);
    }
    if time("iat")? > now.saturating_add(leeway) {
        return Err(AuthError::IssuedInFuture);
    }
    let user_id = claims
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|s| UserId::parse(s).ok())
        .ok_or(AuthError::MissingClaim("sub"))?;
    if let Some(issuer) = &policy.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
    {
        return Err(AuthError::WrongIssuer);
    }
    if let Some(parties) = &policy.authorized_parties {
        let azp = claims.get("azp").and_then(Value::as_str);
        if !azp.is_some_and(|azp| parties.iter().any(|p| p == azp)) {
            return Err(AuthError::UnauthorizedParty);
        }
    }
    if policy.refuse_pending_sessions
        && claims.get("sts").and_then(Value::as_str) == Some("pending")
    {
        return Err(AuthError::PendingSession);
    }
    Ok(Principal {
        user_id,
        is_admin: policy.admin.as_ref().is_some_and(|a| a.holds(claims)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What aws-lc-rs itself encodes as a PKCS#1 `RSAPublicKey` for a key of `bits`, with the
    /// key's modulus and exponent as a JWK carries them.
    fn reference_key(bits: aws_lc_rs::rsa::KeySize) -> (Vec<u8>, String, String) {
        use aws_lc_rs::signature::KeyPair as _;
        let pair = aws_lc_rs::rsa::KeyPair::generate(bits).unwrap();
        let public = pair.public_key();
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        (
            public.as_ref().to_vec(),
            b64(public.modulus().big_endian_without_leading_zero()),
            b64(public.exponent().big_endian_without_leading_zero()),
        )
    }

    #[test]
    fn the_der_of_a_jwk_equals_what_aws_lc_rs_encodes_for_the_same_key() {
        // 2048 and 4096 bits: two-byte lengths (0x82) for the modulus and the sequence, and a
        // modulus whose top bit is set, so a zero byte must be prepended.
        for bits in [
            aws_lc_rs::rsa::KeySize::Rsa2048,
            aws_lc_rs::rsa::KeySize::Rsa4096,
        ] {
            let (der, n, e) = reference_key(bits);
            assert_eq!(rsa_public_key_der(&n, &e).unwrap(), der);
        }
    }

    #[test]
    fn the_der_encoder_handles_leading_zeros_padding_short_lengths_and_garbage() {
        let (der, n, e) = reference_key(aws_lc_rs::rsa::KeySize::Rsa2048);
        // A modulus sent with a redundant leading zero byte, and padded base64: the same key.
        let mut padded = vec![0u8];
        padded.extend(URL_SAFE_NO_PAD.decode(&n).unwrap());
        let n_zero = URL_SAFE_NO_PAD.encode(&padded);
        assert_eq!(rsa_public_key_der(&n_zero, &format!("{e}=")).unwrap(), der);
        // Small integers: one-byte lengths, no padding byte unless the top bit is set.
        assert_eq!(
            rsa_public_key_der("AQAB", "Aw").unwrap(),
            [0x30, 0x08, 0x02, 0x03, 0x01, 0x00, 0x01, 0x02, 0x01, 0x03]
        );
        assert_eq!(
            rsa_public_key_der("gA", "AQAB").unwrap(),
            [
                0x30, 0x09, 0x02, 0x02, 0x00, 0x80, 0x02, 0x03, 0x01, 0x00, 0x01
            ]
        );
        // All zeros is the integer 0; empty or non-base64 components are refused.
        assert_eq!(
            rsa_public_key_der("AAA", "AQAB").unwrap(),
            [0x30, 0x08, 0x02, 0x01, 0x00, 0x02, 0x03, 0x01, 0x00, 0x01]
        );
        assert!(rsa_public_key_der("", "AQAB").is_none());
        assert!(rsa_public_key_der("AQAB", "").is_none());
        assert!(rsa_public_key_der("not base64!", "AQAB").is_none());
    }
    use serde_json::json;

    #[test]
    fn only_bearer_authorization_headers_yield_a_token() {
        assert_eq!(
            BearerToken::from_authorization(None).unwrap_err(),
            AuthError::MissingToken
        );
        assert_eq!(
            BearerToken::from_authorization(Some("Bearer ")).unwrap_err(),
            AuthError::MissingToken
        );
        assert_eq!(
            BearerToken::from_authorization(Some("Basic dXNlcjpwYXNz")).unwrap_err(),
            AuthError::NotBearer
        );
        assert_eq!(
            BearerToken::from_authorization(Some("Bearer a b\"c")).unwrap_err(),
            AuthError::Malformed
        );
        assert!(BearerToken::from_authorization(Some("bearer aaa.bbb.ccc")).is_ok());
        let token = BearerToken::from_authorization(Some("Bearer aaa.bbb.ccc")).unwrap();
        assert_eq!(format!("{token:?}"), "BearerToken([redacted])");
    }

    #[test]
    fn challenges_carry_the_rfc_6750_error() {
        assert_eq!(
            AuthError::Expired.challenge(),
            "Bearer error=\"invalid_token\", error_description=\"the token has expired\""
        );
        assert_eq!(AuthError::MissingToken.challenge_error(), "invalid_request");
    }

    #[test]
    fn admin_claims_are_read_at_their_path_as_a_value_or_in_a_list() {
        let claim = AdminClaim::parse("o.rol=admin").unwrap();
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert!(claim.holds(&claims(serde_json::json!({"o": {"rol": "admin"}}))));
        assert!(claim.holds(&claims(serde_json::json!({"o": {"rol": ["x", "admin"]}}))));
        assert!(!claim.holds(&claims(serde_json::json!({"o": {"rol": "member"}}))));
        assert!(!claim.holds(&claims(serde_json::json!({"rol": "admin"}))));
        assert!(AdminClaim::parse("role").is_err());
        assert!(AdminClaim::parse(".x=1").is_err());
    }

    fn dev_keys() -> &'static devkit::tokens::DevKeys {
        static KEYS: std::sync::OnceLock<devkit::tokens::DevKeys> = std::sync::OnceLock::new();
        KEYS.get_or_init(devkit::tokens::DevKeys::generate)
    }

    fn pinned() -> VerificationKeys {
        VerificationKeys::from_pem(&dev_keys().public_pem).unwrap()
    }

    /// A token signed with the instance key whose header has `field` set to `value` (`None`:
    /// removed) and whose claims are valid now.
    fn with_header(field: &str, value: Option<Value>) -> BearerToken {
        let mut header = dev_keys().header();
        match value {
            Some(v) => header[field] = v,
            None => drop(header.as_object_mut().unwrap().remove(field)),
        }
        BearerToken::new(dev_keys().sign_with_header(&header, &dev_keys().claims("user_a")))
    }

    fn check(token: &BearerToken, policy: &TokenPolicy) -> Result<Principal, AuthError> {
        verify(token, &pinned(), policy, devkit::signing::now())
    }

    #[test]
    fn session_tokens_pass_with_the_session_category_or_none() {
        let default = TokenPolicy::default();
        let session = with_header("cat", Some(SESSION_TOKEN_CATEGORY.into()));
        assert_eq!(
            check(&session, &default).unwrap().user_id.as_str(),
            "user_a"
        );
        assert!(check(&with_header("cat", None), &default).is_ok());
        assert!(check(&with_header("cat", Some(IGNORED_CATEGORY.into())), &default).is_ok());
        assert!(check(&with_header("typ", None), &default).is_ok());
    }

    #[test]
    fn template_machine_and_unknown_categories_are_refused_before_any_key_is_chosen() {
        let template = with_header("cat", Some("cl_B7d4PD222AAA".into()));
        assert_eq!(
            check(&template, &TokenPolicy::default()).unwrap_err(),
            AuthError::NotASessionToken
        );
        // No key at all: the header is refused first, so this is not `UnknownKey`.
        assert_eq!(
            verify(
                &template,
                &VerificationKeys::default(),
                &TokenPolicy::default(),
                0
            )
            .unwrap_err(),
            AuthError::NotASessionToken
        );
        for cat in [
            json!("cl_B7d4PD333AAA"),
            json!("cl_b7d4pd111aaa"),
            json!(""),
            Value::Null,
            json!(1),
            json!(["cl_B7d4PD111AAA"]),
        ] {
            assert_eq!(
                UnverifiedToken::parse(&with_header("cat", Some(cat.clone()))).unwrap_err(),
                AuthError::NotASessionToken,
                "{cat}"
            );
        }
    }

    #[test]
    fn a_typ_other_than_exactly_jwt_is_refused() {
        for typ in [
            json!("at+jwt"),
            json!("jwt"),
            json!("JOSE"),
            Value::Null,
            json!(1),
        ] {
            assert_eq!(
                check(
                    &with_header("typ", Some(typ.clone())),
                    &TokenPolicy::default()
                )
                .unwrap_err(),
                AuthError::WrongType,
                "{typ}"
            );
        }
    }

    #[test]
    fn pending_sessions_are_refused_only_when_the_policy_says_so() {
        let token = |sts: Option<&str>| {
            let mut claims = dev_keys().claims("user_a");
            match sts {
                Some(sts) => claims["sts"] = sts.into(),
                None => drop(claims.as_object_mut().unwrap().remove("sts")),
            }
            BearerToken::new(dev_keys().sign(&claims))
        };
        let lenient = TokenPolicy::default();
        let strict = TokenPolicy {
            refuse_pending_sessions: true,
            ..TokenPolicy::default()
        };
        assert!(check(&token(Some("pending")), &lenient).is_ok());
        assert_eq!(
            check(&token(Some("pending")), &strict).unwrap_err(),
            AuthError::PendingSession
        );
        assert!(check(&token(Some("active")), &strict).is_ok());
        assert!(
            check(&token(None), &strict).is_ok(),
            "v1 tokens have no `sts`"
        );
    }

    #[test]
    fn tokens_that_are_not_three_segments_or_not_json_are_malformed() {
        let genuine = dev_keys().mint("user_a");
        for token in [
            format!("{genuine}.extra"),
            genuine.replacen('.', "", 1),
            format!("e30.{}", genuine.split_once('.').unwrap().1),
            format!("bm90IGpzb24.{}", genuine.split_once('.').unwrap().1),
        ] {
            assert_eq!(
                check(&BearerToken::new(token), &TokenPolicy::default()).unwrap_err(),
                AuthError::Malformed
            );
        }
    }

    #[test]
    fn header_and_pending_session_refusals_are_invalid_token_challenges() {
        for e in [
            AuthError::WrongType,
            AuthError::NotASessionToken,
            AuthError::PendingSession,
        ] {
            let description = e.to_string();
            // Inside the challenge's quoted-string: no quote or backslash, printable ASCII only.
            assert!(
                description
                    .bytes()
                    .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
                "{description}"
            );
            assert_eq!(
                e.challenge(),
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
            );
        }
    }

    #[test]
    fn a_jwks_without_rs256_signing_keys_is_refused() {
        let jwks = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#;
        assert!(VerificationKeys::from_jwks(jwks).is_err());
        assert!(VerificationKeys::from_jwks(b"nope").is_err());
    }
}
