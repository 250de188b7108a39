//! The ids that tie every log line and metric document to its invocation.
//!
//! Each invocation runs inside an `invocation` span carrying Lambda's request id (`requestId`)
//! and X-Ray trace id (`xrayTraceId`), named as the Lambda runtime names them in its own span,
//! and for HTTP functions API Gateway's request id (`apigw_request_id`, the `requestId` of the
//! access log). The functions' own spans add `svix_id` (webhook, sync), `message_id` and
//! `attempt` (sync) and `route` (api). These names are span fields only: no event uses them, so
//! the flattened JSON line ([`super::json_layer`]) never holds a key twice.

use lambda_http::request::RequestContext;
use lambda_http::{Context, Request, RequestExt};

/// The ids of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationIds {
    /// Lambda's request id (the `RequestId` of the function's START/END/REPORT lines).
    pub request_id: String,
    /// The X-Ray trace header's value, when tracing is on.
    pub xray_trace_id: Option<String>,
    /// API Gateway's request id, for HTTP invocations.
    pub apigw_request_id: Option<String>,
}

impl InvocationIds {
    /// From the runtime's invocation context.
    pub fn of(context: &Context) -> Self {
        Self {
            request_id: context.request_id.clone(),
            xray_trace_id: context.xray_trace_id.clone(),
            apigw_request_id: None,
        }
    }

    /// From an HTTP request as lambda_http hands it over: its invocation context and its API
    /// Gateway request context.
    pub fn of_request(request: &Request) -> Self {
        let mut ids = request
            .lambda_context_ref()
            .map(Self::of)
            .unwrap_or_default();
        ids.apigw_request_id = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
            _ => None,
        };
        ids
    }

    /// The request id [`crate::edge::service`] read for this request (empty when the handler is
    /// called without it, as unit tests do).
    pub fn request_id_of(request: &Request) -> String {
        request
            .extensions()
            .get::<Self>()
            .map(|ids| ids.request_id.clone())
            .unwrap_or_default()
    }

    /// The span an invocation runs in.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "invocation",
            requestId = self.request_id.as_str(),
            xrayTraceId = self.xray_trace_id.as_deref(),
            apigw_request_id = self.apigw_request_id.as_deref(),
        )
    }
}
