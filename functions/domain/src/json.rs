//! JSON parsing whose errors say where and what went wrong, never with which value.
//!
//! serde_json's messages quote the offending value (`invalid type: string "ada@example.com"`),
//! and these messages end up in logs and in the event log. [`parse`] keeps only the path, the
//! kind of error and the position.
//!
//! It also reads JSON nested deeper than serde_json's recursion limit (128): Clerk accepts deeper
//! metadata (up to its 8 KB cap), and a refusal here would make that user unsyncable. Such a
//! document is read again without the limit, on a stack that grows as needed (serde_stacker), so
//! the common case pays nothing for it.

use std::fmt;

use serde::Deserialize;

/// A JSON document that could not be read as the expected shape. Holds no payload value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JsonError {
    /// Where in the document, e.g. `data.email_addresses[0].id` (`.` for the top level).
    pub path: String,
    pub kind: JsonErrorKind,
    pub line: usize,
    pub column: usize,
}

/// What kind of error, as serde_json classes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Not JSON at all.
    Syntax,
    /// Ends in the middle of a value.
    Truncated,
    /// JSON, but a field is missing or has another type than expected.
    Shape,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            JsonErrorKind::Syntax => "invalid JSON",
            JsonErrorKind::Truncated => "truncated JSON",
            JsonErrorKind::Shape => "unexpected type or missing field",
        };
        write!(
            f,
            "{kind} at {} (line {}, column {})",
            self.path, self.line, self.column
        )
    }
}

impl JsonError {
    /// Prefixes the path with the field the document was found in (`data`).
    pub fn within(mut self, field: &str) -> Self {
        self.path = if self.path == "." {
            field.to_owned()
        } else {
            format!("{field}.{}", self.path)
        };
        self
    }
}

/// Parses `json` as `T`. The fast path is plain serde_json; only a failure is parsed again,
/// tracking the path, to explain it.
pub fn parse<'a, T: Deserialize<'a>>(json: &'a str) -> Result<T, JsonError> {
    let error = match serde_json::from_str(json) {
        Ok(value) => return Ok(value),
        Err(e) if is_recursion_limit(&e) => match parse_unbounded(json) {
            Ok(value) => return Ok(value),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let (path, error) = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(tracked) => (tracked.path().to_string(), tracked.into_inner()),
        Ok(_) => (".".to_owned(), error),
    };
    use serde_json::error::Category;
    Err(JsonError {
        path,
        kind: match error.classify() {
            Category::Syntax => JsonErrorKind::Syntax,
            Category::Eof => JsonErrorKind::Truncated,
            Category::Data | Category::Io => JsonErrorKind::Shape,
        },
        line: error.line(),
        column: error.column(),
    })
}

/// serde_json refused the document only for its depth. (Its message is the only way to tell; a
/// change of wording would lose deep documents, which the tests below would catch.)
fn is_recursion_limit(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("recursion limit exceeded")
}

fn parse_unbounded<'a, T: Deserialize<'a>>(json: &'a str) -> Result<T, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(serde_stacker::Deserializer::new(&mut deserializer))?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        emails: Vec<Email>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Email {
        id: i64,
    }

    #[test]
    fn a_shape_error_names_the_path_and_kind_but_not_the_value() {
        let e = parse::<Shape>(r#"{"emails":[{"id":1},{"id":"ada@example.com"}]}"#).unwrap_err();
        assert_eq!(e.path, "emails[1].id");
        assert_eq!(e.kind, JsonErrorKind::Shape);
        let text = e.within("data").to_string();
        assert!(text.starts_with("unexpected type or missing field at data.emails[1].id"));
        assert!(!text.contains("ada"), "{text}");
    }

    #[test]
    fn json_nested_far_deeper_than_serde_json_s_limit_is_read() {
        #[derive(Deserialize)]
        struct Wrapper<'a> {
            #[serde(borrow)]
            data: &'a serde_json::value::RawValue,
        }
        for depth in [129, 1_000, 20_000] {
            let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let doc = format!(r#"{{"data":{deep}}}"#);
            let read: Wrapper = parse(&doc).unwrap();
            assert_eq!(read.data.get(), deep);
            let unclosed = format!(r#"{{"data":{}1}}"#, "[".repeat(depth));
            assert!(parse::<Wrapper>(&unclosed).is_err(), "{depth}");
        }
    }

    #[test]
    fn syntax_and_truncation_are_told_apart() {
        assert_eq!(
            parse::<Shape>("nope").unwrap_err().kind,
            JsonErrorKind::Syntax
        );
        let e = parse::<Shape>(r#"{"emails":[{"id":1"#).unwrap_err();
        assert_eq!(e.kind, JsonErrorKind::Truncated);
        assert_eq!(e.within("data").path, "data.emails[0].?");
    }
}
