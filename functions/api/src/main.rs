//! Lambda entry point of the api function.

use std::sync::Arc;

use api::Api;
use clerk_sync::config::ApiConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let mut init = clerk_sync::telemetry::InitSteps::start();
    clerk_sync::telemetry::init();
    init.step("telemetry");
    let config = ApiConfig::from_env()?;
    init.step("config");
    let https = clerk_sync::adapters::aws::https_client();
    init.step("https");
    let sdk = clerk_sync::adapters::aws::sdk_config_with(https).await;
    init.step("sdk_config");
    let app = Arc::new(Api::from_config(&config, &sdk)?);
    init.step("clients");
    init.finish();
    clerk_sync::edge::run(app).await
}
