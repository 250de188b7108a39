//! The AWS resources the functions use, created in the emulator as the SAM template creates them
//! in AWS: the events queue with its dead-letter queue and redrive policy, and the signing secret.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName as Q;

/// Receives before SQS moves a message to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// Events queue visibility timeout: at least 6 × the sync function's timeout (30 s).
pub const VISIBILITY_TIMEOUT_SECONDS: u32 = 180;
/// 4 days on the events queue, 14 (the maximum) on the dead-letter queue.
pub const RETENTION_SECONDS: u32 = 4 * 24 * 3600;
pub const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;

/// Resource names. `local()` for the local stack; `unique()` isolates each test.
#[derive(Debug, Clone)]
pub struct Names {
    pub queue: String,
    pub dead_letter_queue: String,
    pub webhook_secret: String,
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
        }
    }
}

/// What `provision` created.
#[derive(Debug, Clone)]
pub struct Resources {
    pub names: Names,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub webhook_secret_id: String,
}

impl Resources {
    /// The webhook function's environment, with the variable names the SAM template sets.
    pub fn webhook_env(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("WEBHOOK_SECRET_ID", self.webhook_secret_id.clone()),
            ("EVENTS_QUEUE_URL", self.queue_url.clone()),
        ])
    }
}

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
        .send()
        .await
        .context("creating the dead-letter queue")?
        .queue_url
        .context("no dead-letter queue URL")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(Q::QueueArn)
        .send()
        .await
        .context("reading the dead-letter queue ARN")?
        .attributes
        .and_then(|mut a| a.remove(&Q::QueueArn))
        .context("no dead-letter queue ARN")?;
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT});
    let queue_url = sqs
        .create_queue()
        .queue_name(&names.queue)
        .attributes(Q::VisibilityTimeout, VISIBILITY_TIMEOUT_SECONDS.to_string())
        .attributes(Q::MessageRetentionPeriod, RETENTION_SECONDS.to_string())
        .attributes(Q::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .context("creating the events queue")?
        .queue_url
        .context("no events queue URL")?;

    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let created = secrets
        .create_secret()
        .name(&names.webhook_secret)
        .description("Clerk webhook signing secret(s), whitespace-separated (local development)")
        .secret_string(webhook_secrets)
        .send()
        .await;
    let webhook_secret_id = match created {
        Ok(out) => out.arn.context("no secret ARN")?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            put_secret(sdk, &names.webhook_secret, webhook_secrets).await?;
            names.webhook_secret.clone()
        }
        Err(e) => return Err(e).context("creating the webhook signing secret"),
    };
    Ok(Resources {
        names,
        queue_url,
        dead_letter_queue_url: dlq_url,
        webhook_secret_id,
    })
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
