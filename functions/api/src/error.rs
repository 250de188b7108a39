//! Every answer other than success, and the one place each becomes an HTTP status and code.

use clerk_sync::domain::auth::AuthError;
use clerk_sync::domain::outcome::Failure;
use clerk_sync::edge::error_response;
use clerk_sync::ports::{ClerkError, DependencyError};
use clerk_sync::secret_cache::KeysUnavailable;
use clerk_sync::telemetry::error_chain;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

/// Everything a request is answered with other than success, mapped to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route for this path")]
    NotFound,
    #[error("only GET is allowed here")]
    MethodNotAllowed,
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("this token may not read other users")]
    Forbidden,
    #[error("no such user")]
    UserNotFound,
    #[error("token verification keys are unavailable")]
    KeysUnavailable(#[source] KeysUnavailable),
    #[error("the user store is unavailable")]
    StoreUnavailable(#[source] DependencyError),
    #[error("the user store is unavailable")]
    NotStored(#[source] Failure),
    #[error("Clerk is rate-limiting user lookups; retry later")]
    ClerkRateLimited { retry_after_seconds: u64 },
    #[error("Clerk is unavailable; retry later")]
    ClerkUnavailable(#[source] DependencyError),
}

impl ApiError {
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::UserNotFound => (StatusCode::NOT_FOUND, "user_not_found"),
            Self::KeysUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "keys_unavailable"),
            Self::StoreUnavailable(_) | Self::NotStored(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
            Self::ClerkRateLimited { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "clerk_rate_limited")
            }
            Self::ClerkUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "clerk_unavailable"),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let (status, code) = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, error = %error_chain(&self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code, reason = %self, "request refused");
        }
        let mut response = error_response(status, code, &self.to_string());
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(e) => {
                let challenge = HeaderValue::from_str(&e.challenge())
                    .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            Self::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::ClerkRateLimited {
                retry_after_seconds,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            Self::ClerkUnavailable(_)
            | Self::StoreUnavailable(_)
            | Self::NotStored(_)
            | Self::KeysUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<ClerkError> for ApiError {
    fn from(e: ClerkError) -> Self {
        match e {
            ClerkError::RateLimited {
                retry_after_seconds,
            } => Self::ClerkRateLimited {
                retry_after_seconds,
            },
            ClerkError::Unavailable(e) => Self::ClerkUnavailable(e),
        }
    }
}
