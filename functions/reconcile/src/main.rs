//! Lambda entry point of the scheduled reconcile.

use std::sync::Arc;

use clerk_sync::telemetry::correlation::InvocationIds;
use lambda_runtime::{LambdaEvent, service_fn};
use reconcile::{ReconcileConfig, Reconciler};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    clerk_sync::telemetry::init();
    let config = ReconcileConfig::from_env()?;
    let sdk = clerk_sync::adapters::aws::sdk_config().await;
    let reconciler = Arc::new(Reconciler::from_config(config, &sdk));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let reconciler = reconciler.clone();
        // Every line of the run carries the invocation's request and trace ids.
        let span = InvocationIds::of(&event.context).span();
        async move {
            reconciler.run(&event.payload).await.map_err(|e| {
                tracing::error!(error = %e, "reconcile run failed");
                lambda_runtime::Error::from(e.to_string())
            })
        }
        .instrument(span)
    }))
    .await
}
