//! The HTTP edge shared by the HTTP-facing functions, on lambda_http's public API: lambda_http
//! turns API Gateway HTTP API (payload 2.0) events into `http` requests and our responses back,
//! as the runtime's own examples do; this module adds the JSON response shapes.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response, Service};
use serde::Serialize;
use tracing::Instrument;

use crate::telemetry::correlation::InvocationIds;

/// An HTTP function: answers every request (an error is an answer too, never a failure).
pub trait HttpHandler: Send + Sync + 'static {
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// The function as a `Service<Request>`: what lambda_http runs, and what the local gateway and
/// the tests call in-process (`devkit::lambda::http_fn`). Each request is handled inside its
/// invocation's span, so every line it logs carries its request ids.
pub fn service<H: HttpHandler>(
    app: Arc<H>,
) -> impl Service<Request, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    lambda_http::service_fn(move |mut request: Request| {
        let app = app.clone();
        let ids = InvocationIds::of_request(&request);
        let span = ids.span();
        // Read once here; the handler finds them in the request (`InvocationIds::request_id_of`).
        request.extensions_mut().insert(ids);
        async move { Ok(app.handle(request).instrument(span).await) }
    })
}

/// Serves `app` under the Lambda runtime until it shuts the function down.
///
/// API Gateway flags a body `isBase64Encoded` only when it encoded it itself, so the flag is
/// always true to its body. Were it not, lambda_http's conversion would panic; its runtime turns
/// that into an error for that one invocation and goes on serving (the bootstrap tests show it).
pub async fn run<H: HttpHandler>(app: Arc<H>) -> Result<(), lambda_http::Error> {
    lambda_http::run(service(app)).await
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(
            serde_json::to_string(body).expect("response bodies serialise"),
        ))
        .expect("static parts are valid")
}

/// `{"error":{"code","message"}}` with `status`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}
