//! Lambda entry point of the deploy-check function (CodeDeploy's pre-traffic hook).

use deploy_check::{Config, Hook, HookEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    clerk_sync::telemetry::init();
    let config = Config::from_env()?;
    let sdk = clerk_sync::adapters::aws::sdk_config().await;
    let hook = &Hook::new(config, &sdk);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<HookEvent>| async move {
            hook.handle(event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
