//! The HTTP edge shared by the HTTP-facing functions: the Lambda service that turns API Gateway
//! HTTP API (payload 2.0) or function URL events into `http` requests, and JSON responses.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::{StatusCode, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, LambdaEvent, Request, Response, Service};
use serde::Serialize;

/// An HTTP function: answers requests, and says how to answer one whose body cannot be decoded.
pub trait HttpHandler: Send + Sync + 'static {
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send;
    /// The answer to an event whose body is flagged base64 but is not.
    fn invalid_base64(&self) -> Response<Body>;
}

/// The answer to one Lambda event: lambda_http's own conversion, or one we built before it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply<R> {
    Converted(R),
    Direct(Box<ApiGatewayV2httpResponse>),
}

/// The Lambda-facing service of an HTTP function. The local gateway calls exactly this too.
///
/// lambda_http panics on a body flagged `isBase64Encoded` that is not base64, which API Gateway
/// would turn into a 500 (and Svix into retries forever); such events are answered by
/// [`HttpHandler::invalid_base64`] before lambda_http converts the event. That needs lambda_http's
/// `Adapter`/`LambdaRequest`, which are `#[doc(hidden)]`: the version is pinned exactly.
pub fn lambda_service<H: HttpHandler>(
    app: Arc<H>,
) -> impl Service<
    LambdaEvent<LambdaRequest>,
    Response = Reply<impl Serialize + Send + 'static>,
    Error = lambda_http::Error,
    Future: Send + 'static,
> + Clone {
    lambda_http::service_fn(move |event: LambdaEvent<LambdaRequest>| {
        let app = app.clone();
        async move {
            if let LambdaRequest::ApiGatewayV2(request) = &event.payload {
                let undecodable = request.is_base64_encoded
                    && request.body.as_deref().is_some_and(|b| {
                        base64::engine::general_purpose::STANDARD.decode(b).is_err()
                    });
                if undecodable {
                    let response = apigw_v2_response(app.invalid_base64());
                    return Ok(Reply::Direct(Box::new(response)));
                }
            }
            let mut adapter =
                lambda_http::Adapter::from(lambda_http::service_fn(move |request: Request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(request).await) }
                }));
            match adapter.call(event).await {
                Ok(converted) => Ok(Reply::Converted(converted)),
                Err(never) => match never {},
            }
        }
    })
}

fn apigw_v2_response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    out.body = Some(body);
    out
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
