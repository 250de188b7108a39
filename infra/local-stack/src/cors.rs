//! API Gateway's CORS handling as `template.yaml` configures the HTTP API (`CorsConfiguration`):
//! origins are the api's `CLERK_AUTHORIZED_PARTIES`, and the gateway, not the function, answers
//! preflights. `tests/template.rs` checks these constants against the template.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

pub const ALLOW_METHODS: &[&str] = &["GET"];
pub const ALLOW_HEADERS: &[&str] = &["authorization"];
pub const EXPOSE_HEADERS: &[&str] = &["retry-after", "www-authenticate"];
pub const MAX_AGE_SECONDS: u32 = 600;

/// The origins browsers may call the API from. Without any, CORS is off (as in the template).
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// From the comma-separated origins of `ClerkAuthorizedParties`; `None` when there are none.
    pub fn new(authorized_parties: Option<&str>) -> Option<Self> {
        // Split as the api splits CLERK_AUTHORIZED_PARTIES, so both see the same origins.
        let origins: Vec<String> =
            clerk_sync::domain::list_items(authorized_parties.unwrap_or_default())
                .map(str::to_owned)
                .collect();
        (!origins.is_empty()).then_some(Self { origins })
    }

    fn allowed_origin<'h>(&self, request: &'h HeaderMap) -> Option<&'h HeaderValue> {
        let origin = request.get(header::ORIGIN)?;
        self.origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes())
            .then_some(origin)
    }

    /// A preflight (`OPTIONS` with `Access-Control-Request-Method`) is the gateway's to answer:
    /// 204, with the CORS headers only when the origin is allowed.
    pub fn preflight(
        &self,
        method: &Method,
        request: &HeaderMap,
    ) -> Option<(StatusCode, HeaderMap)> {
        if method != Method::OPTIONS || !request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut headers = HeaderMap::new();
        if let Some(origin) = self.allowed_origin(request) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, joined(ALLOW_METHODS));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, joined(ALLOW_HEADERS));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS.into());
        }
        Some((StatusCode::NO_CONTENT, headers))
    }

    /// Adds the CORS headers to a function's response to an allowed origin.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if let Some(origin) = self.allowed_origin(request) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            response.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                joined(EXPOSE_HEADERS),
            );
        }
    }
}

fn joined(values: &[&str]) -> HeaderValue {
    HeaderValue::from_str(&values.join(",")).expect("header-safe constants")
}
