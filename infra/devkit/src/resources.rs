//! The AWS resources the functions use, created in the emulator as the SAM template creates them
//! in AWS: the events queue with its dead-letter queue and redrive policy, the signing secret,
//! and the users and event-log tables.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName as Q;
use clerk_sync::adapters::dynamodb::{event_log, users};
use clerk_sync::adapters::sqs::MAX_MESSAGE_BYTES;

/// Receives before SQS moves a message to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// The output key under which the local stack names its AWS endpoint (the emulator); deployed
/// stacks have no such output.
pub const LOCAL_ENDPOINT_OUTPUT: &str = "LocalAwsEndpointUrl";
/// Events queue visibility timeout: at least 6 × the sync function's timeout (30 s).
pub const VISIBILITY_TIMEOUT_SECONDS: u32 = 180;
/// 4 days on the events queue, 14 (the maximum) on the dead-letter queue.
pub const RETENTION_SECONDS: u32 = 4 * 24 * 3600;
pub const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;

/// Resource names (and the one setting tests change). `local()` for the local stack; `unique()`
/// isolates each test.
#[derive(Debug, Clone)]
pub struct Names {
    pub queue: String,
    pub dead_letter_queue: String,
    pub webhook_secret: String,
    pub clerk_secret_key: String,
    pub users_table: String,
    pub event_log_table: String,
    /// The events queue's visibility timeout; tests shorten it to see redelivery quickly.
    pub visibility_timeout_seconds: u32,
}

impl Names {
    pub fn local() -> Self {
        Self::with_prefix("clerk-sync-local")
    }

    pub fn unique(label: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Self::with_prefix(&format!("t-{label}-{}-{n}-{nanos:x}", std::process::id()))
    }

    fn with_prefix(prefix: &str) -> Self {
        Self {
            queue: format!("{prefix}-events"),
            dead_letter_queue: format!("{prefix}-events-dlq"),
            webhook_secret: format!("{prefix}/webhook-signing-secrets"),
            clerk_secret_key: format!("{prefix}/clerk-secret-key"),
            users_table: format!("{prefix}-users"),
            event_log_table: format!("{prefix}-event-log"),
            visibility_timeout_seconds: VISIBILITY_TIMEOUT_SECONDS,
        }
    }

    pub fn with_visibility_timeout(mut self, seconds: u32) -> Self {
        self.visibility_timeout_seconds = seconds;
        self
    }
}

/// What `provision` created.
#[derive(Debug, Clone)]
pub struct Resources {
    pub names: Names,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub webhook_secret_id: String,
    pub clerk_secret_key_id: String,
    pub dead_letter_queue_arn: String,
    pub queue_arn: String,
}

impl Resources {
    /// The webhook function's environment, with the variable names the SAM template sets.
    pub fn webhook_env(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("WEBHOOK_SECRET_ID", self.webhook_secret_id.clone()),
            ("EVENTS_QUEUE_URL", self.queue_url.clone()),
        ])
    }

    /// The api function's environment (token settings come from the caller), with the variable
    /// names the SAM template sets.
    pub fn api_env(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("USERS_TABLE", self.names.users_table.clone()),
            ("EVENT_LOG_TABLE", self.names.event_log_table.clone()),
            ("EVENTS_QUEUE_URL", self.queue_url.clone()),
            ("CLERK_SECRET_KEY_ID", self.clerk_secret_key_id.clone()),
        ])
    }

    /// The sync function's environment, with the variable names the SAM template sets.
    pub fn sync_env(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("USERS_TABLE", self.names.users_table.clone()),
            ("EVENT_LOG_TABLE", self.names.event_log_table.clone()),
        ])
    }
}

/// LOCAL DEVELOPMENT ONLY: the Clerk secret key stored when none is given (the local Clerk
/// accepts it). Not a real key.
pub const DEV_CLERK_SECRET_KEY: &str = "sk_test_local_development_only";

/// Creates (or finds) the queues and stores `webhook_secrets` as the signing secret value.
/// Idempotent, so the local stack can be restarted against a long-running emulator.
pub async fn provision(
    sdk: &SdkConfig,
    names: Names,
    webhook_secrets: &str,
) -> anyhow::Result<Resources> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name(&names.dead_letter_queue)
        .attributes(Q::MessageRetentionPeriod, DLQ_RETENTION_SECONDS.to_string())
        .attributes(Q::MaximumMessageSize, MAX_MESSAGE_BYTES.to_string())
        .send()
        .await
        .context("creating the dead-letter queue")?
        .queue_url
        .context("no dead-letter queue URL")?;
    let dlq_arn = queue_arn(&sqs, &dlq_url).await?;
    let redrive =
        serde_json::json!({"deadLetterTargetArn": &dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT});
    let queue_url = sqs
        .create_queue()
        .queue_name(&names.queue)
        .attributes(
            Q::VisibilityTimeout,
            names.visibility_timeout_seconds.to_string(),
        )
        .attributes(Q::MessageRetentionPeriod, RETENTION_SECONDS.to_string())
        .attributes(Q::MaximumMessageSize, MAX_MESSAGE_BYTES.to_string())
        .attributes(Q::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .context("creating the events queue")?
        .queue_url
        .context("no events queue URL")?;
    let queue_arn = queue_arn(&sqs, &queue_url).await?;

    let webhook_secret_id = ensure_secret(
        sdk,
        &names.webhook_secret,
        "Clerk webhook signing secret(s), whitespace-separated (local development)",
        webhook_secrets,
    )
    .await?;
    let clerk_secret_key_id = ensure_secret(
        sdk,
        &names.clerk_secret_key,
        "Clerk secret key for the Backend API (local development)",
        DEV_CLERK_SECRET_KEY,
    )
    .await?;
    provision_tables(sdk, &names).await?;
    Ok(Resources {
        names,
        queue_url,
        dead_letter_queue_url: dlq_url,
        webhook_secret_id,
        clerk_secret_key_id,
        dead_letter_queue_arn: dlq_arn,
        queue_arn,
    })
}

/// Creates the secret, or sets its value if it exists; returns its id.
async fn ensure_secret(
    sdk: &SdkConfig,
    name: &str,
    description: &str,
    value: &str,
) -> anyhow::Result<String> {
    let created = aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .description(description)
        .secret_string(value)
        .send()
        .await;
    match created {
        Ok(out) => out.arn.context("no secret ARN"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            put_secret(sdk, name, value).await?;
            Ok(name.to_owned())
        }
        Err(e) => Err(e).with_context(|| format!("creating the secret {name}")),
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(Q::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of {url}"))?
        .attributes
        .and_then(|mut a| a.remove(&Q::QueueArn))
        .context("no queue ARN")
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("name and type set")
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("name and type set")
}

/// The users table (key `id`) and the event log (key `svix_id`, index `by_user`, TTL
/// `expires_at`), on demand, as the template declares them. Existing tables are kept.
async fn provision_tables(sdk: &SdkConfig, names: &Names) -> anyhow::Result<()> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let users = dynamodb
        .create_table()
        .table_name(&names.users_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(users::ID, ScalarAttributeType::S))
        .key_schema(key(users::ID, KeyType::Hash))
        .send()
        .await;
    let by_user = GlobalSecondaryIndex::builder()
        .index_name(event_log::BY_USER_INDEX)
        .key_schema(key(event_log::USER_ID, KeyType::Hash))
        .key_schema(key(event_log::RECEIVED_AT, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .context("building the by_user index")?;
    let log = dynamodb
        .create_table()
        .table_name(&names.event_log_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(event_log::SVIX_ID, ScalarAttributeType::S))
        .attribute_definitions(attribute(event_log::USER_ID, ScalarAttributeType::S))
        .attribute_definitions(attribute(event_log::RECEIVED_AT, ScalarAttributeType::N))
        .key_schema(key(event_log::SVIX_ID, KeyType::Hash))
        .global_secondary_indexes(by_user)
        .send()
        .await;
    for (table, created) in [
        (&names.users_table, users.map(|_| ())),
        (&names.event_log_table, log.map(|_| ())),
    ] {
        match created {
            Ok(()) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(e).with_context(|| format!("creating table {table}")),
        }
    }
    dynamodb
        .update_time_to_live()
        .table_name(&names.event_log_table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(event_log::EXPIRES_AT)
                .enabled(true)
                .build()
                .context("building the TTL specification")?,
        )
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            // Enabling TTL twice is refused; the table keeps its TTL.
            let again = e.as_service_error().is_some_and(|e| {
                e.meta()
                    .message()
                    .is_some_and(|m| m.contains("already enabled"))
            });
            if again {
                Ok(())
            } else {
                Err(e).context("enabling TTL on the event log")
            }
        })?;
    Ok(())
}

/// Replaces a secret's value, as an operator rotating it would.
pub async fn put_secret(sdk: &SdkConfig, secret_id: &str, value: &str) -> anyhow::Result<()> {
    aws_sdk_secretsmanager::Client::new(sdk)
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(value)
        .send()
        .await
        .context("updating the secret value")?;
    Ok(())
}
