//! The emulator's front door: one loopback endpoint that forwards each request, unchanged, to the
//! emulator process serving its service.
//!
//! moto is one Python process under one interpreter lock, and its SQS calls cost O(queue depth):
//! in one process, DynamoDB writes wait behind SQS traffic. So SQS runs in a process of its own and
//! everything else (DynamoDB, Secrets Manager, …) in another, and this router gives clients a
//! single endpoint, as `AWS_ENDPOINT_URL` expects. It runs on a thread of its own, so it serves
//! whatever runtime (or none) its owner uses.

use std::net::SocketAddr;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, StatusCode, header};
use tokio::sync::oneshot;

/// The largest request or response the front buffers (SQS and DynamoDB bodies are far smaller).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Which emulator process serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqs,
    /// DynamoDB, Secrets Manager and every other service (and unsigned requests such as moto's
    /// own `/moto-api`).
    Rest,
}

/// The service a request is for: its `X-Amz-Target` (`AmazonSQS.SendMessage`, JSON protocol) or
/// else the service in its SigV4 credential scope (`Credential=…/us-east-1/sqs/aws4_request`,
/// which query-protocol requests carry too), the way moto itself tells services apart.
pub fn backend_of(headers: &HeaderMap) -> Backend {
    let text = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(target) = text(HeaderName::from_static("x-amz-target")) {
        return if target.starts_with("AmazonSQS.") {
            Backend::Sqs
        } else {
            Backend::Rest
        };
    }
    let scope_service = text(header::AUTHORIZATION)
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split(['/', ',']).nth(3));
    match scope_service {
        Some("sqs") => Backend::Sqs,
        _ => Backend::Rest,
    }
}

/// A request read in full, ready to forward.
#[derive(Debug, Clone)]
pub struct Buffered {
    pub method: http::Method,
    /// Path and query, as received.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Buffered {
    /// Reads `request`'s body (up to 16 MiB).
    pub async fn read(request: Request) -> anyhow::Result<Self> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .context("reading the request body")?;
        Ok(Self {
            method: parts.method,
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned()),
            headers: parts.headers,
            body,
        })
    }
}

/// Sends `request` to `upstream` (`http://127.0.0.1:port`) and returns the answer in full.
///
/// The `Host` header goes through unchanged: moto builds queue URLs from it, so they keep pointing
/// at whatever the client called (this front, or a proxy in front of it), never around it.
pub async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    request: Buffered,
) -> Result<Response, reqwest::Error> {
    let mut headers = request.headers;
    for hop in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
    ] {
        headers.remove(hop);
    }
    let answer = client
        .request(
            request.method,
            format!("{upstream}{}", request.path_and_query),
        )
        .headers(headers)
        .body(request.body)
        .send()
        .await?;
    let status = answer.status();
    let mut headers = answer.headers().clone();
    for hop in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
    ] {
        headers.remove(hop);
    }
    let body = answer.bytes().await?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// A client for forwarding: no proxy from the environment, no automatic redirects, no timeout of
/// its own (the SDK's timeouts, and long polls of up to 20 s, belong to the caller).
pub fn forwarding_client() -> reqwest::Client {
    // reqwest's rustls (unused on plain HTTP, but built with the client) needs a crypto provider.
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client builds")
}

/// Where each backend listens.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub sqs: String,
    pub rest: String,
}

impl Upstreams {
    fn of(&self, backend: Backend) -> &str {
        match backend {
            Backend::Sqs => &self.sqs,
            Backend::Rest => &self.rest,
        }
    }
}

/// A running front; dropping it stops it.
pub struct Front {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Front {
    /// Starts the front on a free loopback port, on a thread with its own runtime.
    pub fn start(upstreams: Upstreams) -> anyhow::Result<Self> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the emulator's front")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let client = forwarding_client();
        let thread = std::thread::Builder::new()
            .name("emulator-front".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the front's runtime builds");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a bound listener");
                    let app = axum::Router::new()
                        .fallback(route)
                        .with_state((client, upstreams));
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .context("starting the emulator's front")?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Long polls in flight end with the emulator; do not wait for them.
        drop(self.thread.take());
    }
}

async fn route(
    State((client, upstreams)): State<(reqwest::Client, Upstreams)>,
    request: Request,
) -> Response {
    let upstream = upstreams.of(backend_of(request.headers())).to_owned();
    let request = match Buffered::read(request).await {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response(),
    };
    match forward(&client, &upstream, request).await {
        Ok(response) => response,
        // What a client sees when AWS's front end cannot reach the service: a retryable 502.
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("emulator at {upstream} unreachable: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn sqs_json_requests_go_to_the_sqs_process() {
        let h = headers(&[("x-amz-target", "AmazonSQS.SendMessage")]);
        assert_eq!(backend_of(&h), Backend::Sqs);
    }

    #[test]
    fn dynamodb_and_secrets_manager_requests_go_to_the_rest() {
        for target in ["DynamoDB_20120810.PutItem", "secretsmanager.GetSecretValue"] {
            assert_eq!(
                backend_of(&headers(&[("x-amz-target", target)])),
                Backend::Rest
            );
        }
    }

    #[test]
    fn query_protocol_sqs_requests_are_told_by_their_credential_scope() {
        let h = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/sqs/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc",
        )]);
        assert_eq!(backend_of(&h), Backend::Sqs);
        let h = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=abc",
        )]);
        assert_eq!(backend_of(&h), Backend::Rest);
    }

    #[test]
    fn unsigned_requests_go_to_the_rest() {
        assert_eq!(backend_of(&HeaderMap::new()), Backend::Rest);
    }
}
