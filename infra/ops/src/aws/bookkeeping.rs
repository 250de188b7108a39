//! A user item's bookkeeping (id, tombstone, `updated_at`, last writer, when synced): what
//! `inspect` shows without `--show-pii` and what `reconcile` compares. No personal attribute is
//! ever read here (a projection).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use clerk_sync::adapters::dynamodb::users;

use super::sdk;

/// The attribute the functions record the write time in (Unix ms).
const SYNCED_AT: &str = "synced_at";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookkeeping {
    pub id: String,
    pub deleted: bool,
    pub updated_at: Option<i64>,
    /// The writer id of the stored state: a Svix message id, or `lazy-sync:`/`backfill:`/….
    pub writer: Option<String>,
    pub synced_at: Option<i64>,
}

fn projection<T>(
    request: T,
    set: impl Fn(T, &str, &str) -> T,
    expression: impl FnOnce(T, String) -> T,
) -> T {
    let names = [
        ("#id", users::ID),
        ("#deleted", users::DELETED),
        ("#updated_at", users::UPDATED_AT),
        ("#writer", users::LAST_SVIX_ID),
        ("#synced_at", SYNCED_AT),
    ];
    let request = names
        .iter()
        .fold(request, |r, (placeholder, name)| set(r, placeholder, name));
    expression(
        request,
        "#id, #deleted, #updated_at, #writer, #synced_at".into(),
    )
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .ok()
            .or_else(|| n.parse::<f64>().ok().map(|f| f as i64)),
        _ => None,
    }
}

/// Reads it as the adapter does: `deleted = true` is a tombstone, anything else live.
fn read(item: &HashMap<String, AttributeValue>) -> Option<Bookkeeping> {
    let id = match item.get(users::ID) {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => return None,
    };
    Some(Bookkeeping {
        id,
        deleted: matches!(item.get(users::DELETED), Some(AttributeValue::Bool(true))),
        updated_at: number(item, users::UPDATED_AT),
        writer: match item.get(users::LAST_SVIX_ID) {
            Some(AttributeValue::S(w)) => Some(w.clone()),
            _ => None,
        },
        synced_at: number(item, SYNCED_AT),
    })
}

/// One user's bookkeeping, read consistently.
pub async fn get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> anyhow::Result<Option<Bookkeeping>> {
    let request = client
        .get_item()
        .table_name(table)
        .key(users::ID, AttributeValue::S(id.to_owned()))
        .consistent_read(true);
    let request = projection(
        request,
        |r, p, n| r.expression_attribute_names(p, n),
        |r, e| r.projection_expression(e),
    );
    let out = request.send().await.map_err(|e| sdk("GetItem", e))?;
    Ok(out.item.as_ref().and_then(read))
}

/// Every item's bookkeeping, page by page, handed to `each`; returns how many were read.
pub async fn scan(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut each: impl FnMut(Bookkeeping),
) -> anyhow::Result<u64> {
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    let mut read_items = 0;
    loop {
        let request = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take());
        let request = projection(
            request,
            |r, p, n| r.expression_attribute_names(p, n),
            |r, e| r.projection_expression(e),
        );
        let out = request.send().await.map_err(|e| sdk("Scan", e))?;
        for item in out.items() {
            if let Some(b) = read(item) {
                read_items += 1;
                each(b);
            }
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(read_items),
        }
    }
}
