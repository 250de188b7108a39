//! IO-free domain: what a Clerk webhook is, how it is verified, what we queue, and which user
//! write wins.

pub mod auth;
pub mod delivery;
pub mod json;
pub mod metadata;
pub mod user;
pub mod webhook;

/// The items of a list written with commas and/or whitespace (`a,b c`), empty items skipped.
pub fn list_items(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// An identifier we accept from outside: 1..=`max_len` visible ASCII characters.
pub(crate) fn is_visible_ascii_id(raw: &str, max_len: usize) -> bool {
    !raw.is_empty() && raw.len() <= max_len && raw.bytes().all(|b| b.is_ascii_graphic())
}
