//! The domain of Clerk user sync: what a Clerk webhook and a session token are, how they are
//! verified, what we queue, which user write wins, and the record of every event's fate.
//!
//! Types and rules only: no AWS, Lambda or HTTP type appears here (`cargo tree -p
//! clerk-sync-domain -e normal` shows none). Adapters in clerk-sync translate to and from them.

pub mod auth;
pub mod delivery;
pub mod dependency;
pub mod event_log;
pub mod json;
pub mod metadata;
pub mod ordering;
pub mod outcome;
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
