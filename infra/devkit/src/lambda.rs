//! Invoking a function's Lambda service in-process, with the JSON in and out that the Lambda
//! runtime would exchange, so local runs and tests exercise the same code paths as AWS.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::anyhow;
use lambda_runtime::{Context, LambdaEvent, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A function as the runtime sees it: an event's JSON in, the response's JSON out.
pub type JsonFn = Arc<dyn Fn(Value) -> BoxFuture<anyhow::Result<Value>> + Send + Sync>;

/// Wraps a Lambda service: deserialises the event as the runtime would, calls the service with
/// a fresh invocation context, serialises the response.
pub fn json_fn<S, A, R>(service: S) -> JsonFn
where
    S: Service<LambdaEvent<A>, Response = R> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Debug,
    A: DeserializeOwned + Send + 'static,
    R: Serialize,
{
    Arc::new(move |event: Value| {
        let mut service = service.clone();
        Box::pin(async move {
            let payload: A = serde_json::from_value(event)?;
            let mut context = Context::default();
            let now = std::time::UNIX_EPOCH.elapsed()?;
            context.request_id = format!("local-{:x}", now.as_nanos());
            context.deadline = now.as_millis() as u64 + 30_000;
            let response = service
                .call(LambdaEvent::new(payload, context))
                .await
                .map_err(|e| anyhow!("function error: {e:?}"))?;
            Ok(serde_json::to_value(response)?)
        })
    })
}
