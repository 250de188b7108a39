//! The stored value of the webhook signing secret: one or more Clerk endpoint secrets (two during
//! a rotation), each `whsec_` and base64.

use std::borrow::Cow;

/// What every Svix signing secret starts with.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

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

/// The secrets in a stored secret value, in order: one or more separated by whitespace or
/// commas, or a JSON array. Each must start with `whsec_` and have something after it; whether
/// that is base64 is for the verifier that decodes it to say ([`SecretFormatError::NotBase64`]).
pub fn signing_secrets(value: &str) -> Result<Vec<Cow<'_, str>>, SecretFormatError> {
    let value = value.trim();
    let parts: Vec<Cow<'_, str>> = if value.starts_with('[') || value.starts_with('{') {
        serde_json::from_str::<Vec<String>>(value)
            .map_err(|_| SecretFormatError::BadJson)?
            .into_iter()
            .map(Cow::Owned)
            .collect()
    } else {
        crate::list_items(value).map(Cow::Borrowed).collect()
    };
    if parts.is_empty() {
        return Err(SecretFormatError::Empty);
    }
    for (i, part) in parts.iter().enumerate() {
        let key = part.strip_prefix(SIGNING_SECRET_PREFIX);
        if key.is_none_or(str::is_empty) {
            return Err(SecretFormatError::MissingPrefix(i + 1));
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_from_lists_and_json_arrays_in_order() {
        assert_eq!(
            signing_secrets(" whsec_a,whsec_b\nwhsec_c ").unwrap(),
            ["whsec_a", "whsec_b", "whsec_c"]
        );
        assert_eq!(
            signing_secrets(r#"["whsec_a", "whsec_b"]"#).unwrap(),
            ["whsec_a", "whsec_b"]
        );
    }

    #[test]
    fn empty_unprefixed_and_odd_json_values_are_refused_by_position() {
        assert_eq!(signing_secrets(" , "), Err(SecretFormatError::Empty));
        assert_eq!(signing_secrets("[]"), Err(SecretFormatError::Empty));
        assert_eq!(
            signing_secrets("whsec_a sk_test_123"),
            Err(SecretFormatError::MissingPrefix(2))
        );
        assert_eq!(
            signing_secrets("whsec_"),
            Err(SecretFormatError::MissingPrefix(1))
        );
        assert_eq!(
            signing_secrets(r#"{"a":1}"#),
            Err(SecretFormatError::BadJson)
        );
    }
}
