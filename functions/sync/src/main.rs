//! Lambda entry point of the sync function.

use std::sync::Arc;

use clerk_sync::config::SyncConfig;
use sync::SyncWorker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let mut init = clerk_sync::telemetry::InitSteps::start();
    clerk_sync::telemetry::init();
    init.step("telemetry");
    let config = SyncConfig::from_env()?;
    init.step("config");
    let https = clerk_sync::adapters::aws::https_client();
    init.step("https");
    let sdk = clerk_sync::adapters::aws::sdk_config_with(https).await;
    init.step("sdk_config");
    let worker = Arc::new(SyncWorker::from_config(&config, &sdk));
    init.step("clients");
    init.finish();
    lambda_runtime::run(sync::lambda_service(worker)).await
}
