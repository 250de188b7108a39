//! An empty `lambda_runtime` function, the floor every cold start is measured against: the same
//! runtime, async executor and release profile as the real functions, and no init of its own.
//! Not in `template.yaml`: `make cold-start` runs it beside the others, nothing deploys it.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
