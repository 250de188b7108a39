//! Clerk session tokens: the bearer token from `Authorization`, the verification keys, and the
//! checks — RS256 only, signature before claims, `exp`/`nbf`/`iat` with a bounded clock skew,
//! `sub`, and `iss`/`azp` when configured. Equal to or stricter than Clerk's own `verifyToken`.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
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
}

impl AuthError {
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
    use base64::Engine;
    let decode = |v: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v.trim_end_matches('='))
            .ok()
    };
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
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            issuer: None,
            authorized_parties: None,
            leeway_seconds: 5,
            admin: None,
        }
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: Option<String>,
    pub is_admin: bool,
}

/// The `kid` a token names, for choosing (or refetching) keys. Errors are the token's.
pub fn token_kid(token: &BearerToken) -> Result<Option<String>, AuthError> {
    let header = jsonwebtoken::decode_header(token.expose()).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => AuthError::UnsupportedAlgorithm,
        _ => AuthError::Malformed,
    })?;
    if header.alg != Algorithm::RS256 {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    Ok(header.kid)
}

/// Verifies `token` at `now` (Unix seconds): header, signature, then claims.
pub fn verify(
    token: &BearerToken,
    keys: &VerificationKeys,
    policy: &TokenPolicy,
    now: i64,
) -> Result<Principal, AuthError> {
    let kid = token_kid(token)?;
    let key = keys.key_for(kid.as_deref()).ok_or(AuthError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Time and issuer checks are ours (below), with an explicit clock and clear errors.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token.expose(), key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => AuthError::UnsupportedAlgorithm,
            _ => AuthError::Malformed,
        })?
        .claims;

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
    Ok(Principal {
        user_id,
        session_id: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
        is_admin: policy.admin.as_ref().is_some_and(|a| a.holds(&claims)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_jwks_without_rs256_signing_keys_is_refused() {
        let jwks = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#;
        assert!(VerificationKeys::from_jwks(jwks).is_err());
        assert!(VerificationKeys::from_jwks(b"nope").is_err());
    }
}
