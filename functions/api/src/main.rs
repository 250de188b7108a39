//! Lambda entry point of the api function.

use std::sync::Arc;

use api::Api;
use clerk_sync::config::ApiConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    clerk_sync::telemetry::init();
    let config = ApiConfig::from_env()?;
    let sdk = clerk_sync::adapters::aws::sdk_config().await;
    let app = Arc::new(Api::from_config(&config, &sdk)?);
    clerk_sync::edge::run(app).await
}
