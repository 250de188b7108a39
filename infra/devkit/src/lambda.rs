//! Invoking a function's Lambda service in-process, with the JSON in and out that the Lambda
//! runtime would exchange, so local runs and tests exercise the same code paths as AWS.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::anyhow;
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::{Body, Request, RequestExt, Response};
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
            let response = service
                .call(LambdaEvent::new(payload, context()?))
                .await
                .map_err(|e| anyhow!("function error: {e:?}"))?;
            Ok(serde_json::to_value(response)?)
        })
    })
}

/// Wraps an HTTP function's `Service<Request>` (what `lambda_http::run` serves): the API Gateway
/// event is converted by lambda_http's public `request::from_str`, as the runtime would convert
/// it, and the response becomes the HTTP API (payload 2.0) response JSON API Gateway reads.
pub fn http_fn<S>(service: S) -> JsonFn
where
    S: Service<Request, Response = Response<Body>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Debug,
{
    Arc::new(move |event: Value| {
        let mut service = service.clone();
        Box::pin(async move {
            let request =
                lambda_http::request::from_str(&event.to_string())?.with_lambda_context(context()?);
            let response = service
                .call(request)
                .await
                .map_err(|e| anyhow!("function error: {e:?}"))?;
            Ok(serde_json::to_value(apigw_v2_response(response))?)
        })
    })
}

/// A fresh invocation context, as the runtime gives each invocation: a request id and an X-Ray
/// trace header of X-Ray's shape (`Root=1-<epoch s, hex>-<24 hex digits>`).
fn context() -> anyhow::Result<Context> {
    let mut context = Context::default();
    let now = std::time::UNIX_EPOCH.elapsed()?;
    context.request_id = format!("local-{:x}", now.as_nanos());
    context.xray_trace_id = Some(format!(
        "Root=1-{:08x}-{:024x};Sampled=0",
        now.as_secs(),
        now.as_nanos() ^ u128::from(fastrand::u64(..))
    ));
    context.deadline = now.as_millis() as u64 + 30_000;
    Ok(context)
}

/// An HTTP response as an HTTP API (payload 2.0) Lambda response: binary bodies base64-encoded.
fn apigw_v2_response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.is_base64_encoded = matches!(body, Body::Binary(_));
    out.headers = parts.headers;
    out.body = match body {
        Body::Empty => None,
        body => Some(body),
    };
    out
}
