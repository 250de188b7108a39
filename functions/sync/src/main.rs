//! Lambda entry point of the sync function.

use std::sync::Arc;

use clerk_sync::config::SyncConfig;
use sync::SyncWorker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    clerk_sync::telemetry::init();
    let config = SyncConfig::from_env()?;
    let sdk = clerk_sync::adapters::aws::sdk_config().await;
    let worker = Arc::new(SyncWorker::from_config(&config, &sdk));
    lambda_runtime::run(sync::lambda_service(worker)).await
}
