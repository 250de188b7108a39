//! The local API Gateway: routes HTTP requests to the HTTP functions in-process, as API Gateway's
//! Lambda proxy integration does, with API Gateway's payload limit and CORS.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::Response;
use devkit::apigw::{read_response, request_event};
use devkit::lambda::{JsonFn, http_fn};
use http::StatusCode;
use serde_json::json;

use crate::{clerk, cors};

/// API Gateway's payload limit for HTTP APIs.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// One route of the gateway: a path (`{id}` matches one segment) served by a function.
#[derive(Clone)]
pub struct Route {
    pub path: &'static str,
    pub function: &'static str,
    handler: JsonFn,
}

/// The HTTP functions' routes. This is where the gateway's functions are wired in-process:
/// each one's `clerk_sync::edge::service`, called with API Gateway v2 events as JSON.
pub(crate) fn routes(webhook: Arc<webhook::Ingest>, api: Arc<api::Api>) -> Vec<Route> {
    let api = http_fn(clerk_sync::edge::service(api));
    let api_route = |path| Route {
        path,
        function: "api",
        handler: api.clone(),
    };
    vec![
        Route {
            path: webhook::ROUTE,
            function: "webhook",
            handler: http_fn(clerk_sync::edge::service(webhook)),
        },
        api_route(api::ME),
        api_route("/v1/users/{id}"),
        api_route(api::HEALTH),
    ]
}

/// Everything the gateway serves: the function routes (with CORS for `cors`), the api's
/// OpenAPI document, and the local Clerk when there is one.
pub(crate) fn router(
    routes: Vec<Route>,
    cors: Option<cors::Cors>,
    local_clerk: Option<&Arc<clerk::LocalClerk>>,
) -> axum::Router {
    let mut app = axum::Router::new()
        .fallback(gateway)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(Arc::new(Gateway { routes, cors }));
    if let Some(clerk) = local_clerk {
        app = clerk.clone().router().merge(app);
    }
    // The api's OpenAPI document, as committed.
    axum::Router::new()
        .route(
            "/openapi.json",
            axum::routing::get(|| async {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    include_str!("../../../functions/api/openapi.json"),
                )
            }),
        )
        .merge(app)
}

/// The gateway: finds the route, builds the API Gateway v2 event, invokes the function, and
/// turns its response back into HTTP, as API Gateway does.
async fn gateway(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let cors = gateway.cors.as_ref();
    if let Some((status, headers)) = cors.and_then(|c| c.preflight(&parts.method, &parts.headers)) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return response;
    }
    let mut response = invoke(&gateway.routes, &parts, body).await;
    if let Some(cors) = cors {
        cors.decorate(&parts.headers, response.headers_mut());
    }
    response
}

/// The routes and CORS settings the gateway serves.
struct Gateway {
    routes: Vec<Route>,
    cors: Option<cors::Cors>,
}

/// Runs the function of the matching route, as API Gateway's Lambda proxy integration does.
async fn invoke(routes: &[Route], parts: &http::request::Parts, body: Body) -> Response {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let Some(route) = routes.iter().find(|r| matches(r.path, parts.uri.path())) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route for {}", parts.uri.path()),
        );
    };
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            );
        }
    };
    let event = request_event(
        parts.method.as_str(),
        &path_and_query,
        &parts.headers,
        &body,
    );
    let reply = match (route.handler)(event).await.and_then(|v| read_response(&v)) {
        Ok(reply) => reply,
        Err(e) => {
            // API Gateway answers 500 when the function errors or returns garbage.
            tracing::error!(function = route.function, error = %e, "function failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal server error",
            );
        }
    };
    tracing::info!(
        function = route.function,
        method = %parts.method,
        path = %parts.uri.path(),
        status = reply.status,
        "request"
    );
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap_or_else(|_| {
        error(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "function returned an invalid response",
        )
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"error": {"code": code, "message": message}}).to_string(),
        ))
        .expect("static parts are valid")
}

/// Whether `path` is served by a route `pattern` (`{id}` is one non-empty segment).
fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix("{id}") {
        Some(prefix) => path
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        None => pattern == path,
    }
}
