//! A user's metadata fields, kept as the JSON text Clerk sent.
//!
//! Clerk accepts any JSON in `public_metadata`, `private_metadata` and `unsafe_metadata`, and end
//! users write `unsafe_metadata` straight from the browser. A store's native types cannot hold all
//! of it (DynamoDB refuses numbers beyond 1E-130..9.99E+125 and nesting deeper than 32 levels), so
//! metadata is never taken apart: it is carried, stored and served as its text.

use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One metadata field exactly as Clerk sent it.
///
/// Its serde form is that text as a string (`"{\"score\":1e200}"`), which every store holds.
/// Reading also accepts a native value (a map, a number…), the format records were written in
/// before, and turns it into its JSON text.
#[derive(Clone)]
pub struct Metadata(Box<RawValue>);

static NULL: LazyLock<Box<RawValue>> =
    LazyLock::new(|| RawValue::from_string("null".to_owned()).expect("null is JSON"));

impl Metadata {
    /// No metadata (JSON `null`): what a missing field means.
    pub fn null() -> Self {
        Self(NULL.clone())
    }

    /// From the JSON text, which must be one well-formed JSON value (nested as deep as it likes).
    pub fn parse(text: &str) -> Result<Self, super::json::JsonError> {
        super::json::parse::<&RawValue>(text.trim()).map(|raw| Self(raw.to_owned()))
    }

    pub fn from_raw(raw: Box<RawValue>) -> Self {
        Self(raw)
    }

    /// The JSON text, to serve as it is.
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    pub fn is_null(&self) -> bool {
        self.as_str() == "null"
    }
}

impl Default for Metadata {
    fn default() -> Self {
        Self::null()
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metadata({})", self.as_str())
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            Native(Value),
        }
        let native = match Stored::deserialize(deserializer)? {
            Stored::Text(text) => match Self::parse(&text) {
                Ok(metadata) => return Ok(metadata),
                // A bare string stored natively (never Clerk's shape, but a valid value).
                Err(_) => Value::String(text),
            },
            Stored::Native(value) => value,
        };
        serde_json::value::to_raw_value(&native)
            .map(Self)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_as_text_whatever_its_numbers_and_depth() {
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        for text in [
            r#"{"score":1e200}"#,
            r#"{"n":-1e130,"big":123456789012345678901234567890}"#,
            &deep,
        ] {
            let metadata = Metadata::parse(text).unwrap();
            let stored = serde_json::to_string(&metadata).unwrap();
            assert_eq!(stored, serde_json::to_string(text).unwrap());
            let back: Metadata = serde_json::from_str(&stored).unwrap();
            assert_eq!(back.as_str(), text);
        }
    }

    #[test]
    fn a_native_value_written_before_reads_as_its_json_text() {
        let old: Metadata = serde_json::from_str(r#"{"plan":"pro","seats":3}"#).unwrap();
        assert_eq!(old.as_str(), r#"{"plan":"pro","seats":3}"#);
        let string: Metadata = serde_json::from_str(r#""not json""#).unwrap();
        assert_eq!(string.as_str(), r#""not json""#);
        assert!(Metadata::default().is_null());
    }
}
