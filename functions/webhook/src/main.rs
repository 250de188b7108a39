//! Lambda entry point of the webhook function.

use std::sync::Arc;

use clerk_sync::config::WebhookConfig;
use webhook::Ingest;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    clerk_sync::telemetry::init();
    let config = WebhookConfig::from_env()?;
    let sdk = clerk_sync::adapters::aws::sdk_config().await;
    let app = Arc::new(Ingest::from_config(&config, &sdk));
    clerk_sync::edge::run(app).await
}
