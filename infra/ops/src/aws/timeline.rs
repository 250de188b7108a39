//! A user's latest event-log records, oldest first, from the `by_user` index.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use clerk_sync::adapters::dynamodb::event_log;
use clerk_sync::domain::event_log::LogRecord;

use super::sdk;

pub async fn user_events(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    user_id: &str,
    limit: usize,
) -> anyhow::Result<Vec<LogRecord>> {
    let mut records = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .index_name(event_log::BY_USER_INDEX)
            .key_condition_expression("#user = :user")
            .expression_attribute_names("#user", event_log::USER_ID)
            .expression_attribute_values(":user", AttributeValue::S(user_id.to_owned()))
            .scan_index_forward(false)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk("Query", e))?;
        for item in out.items() {
            match serde_dynamo::from_item::<_, LogRecord>(item.clone()) {
                Ok(record) => records.push(record),
                Err(_) => tracing::warn!("an event-log item of this user does not read"),
            }
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() && records.len() < limit => start = Some(key),
            _ => {
                records.truncate(limit);
                records.reverse();
                return Ok(records);
            }
        }
    }
}
