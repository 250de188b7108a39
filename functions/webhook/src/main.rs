//! Lambda entry point of the webhook function.

use std::sync::Arc;

use clerk_sync::config::WebhookConfig;
use webhook::Ingest;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let mut init = clerk_sync::telemetry::InitSteps::start();
    clerk_sync::telemetry::init();
    init.step("telemetry");
    let config = WebhookConfig::from_env()?;
    init.step("config");
    let https = clerk_sync::adapters::aws::https_client();
    init.step("https");
    let sdk = clerk_sync::adapters::aws::sdk_config_with(https).await;
    init.step("sdk_config");
    let app = Arc::new(Ingest::from_config(&config, &sdk));
    init.step("clients");
    init.finish();
    clerk_sync::edge::run(app).await
}
