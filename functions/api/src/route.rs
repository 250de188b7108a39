//! A request's method and path, parsed once into what it asks for.

use clerk_sync::domain::user::UserId;
use lambda_http::http::Method;

use crate::ApiError;

pub const ME: &str = "/v1/users/me";
pub const USERS: &str = "/v1/users/";
pub const HEALTH: &str = "/health";

/// What a request asks for. Each route answers GET only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/health`.
    Health,
    /// `/v1/users/me`.
    Me,
    /// `/v1/users/{id}`: `None` when the segment is not a Clerk user id. The route still exists
    /// for it, so a caller learns no more than for any id that is not theirs.
    User(Option<UserId>),
}

impl Route {
    /// Paths are matched exactly (no trailing slash, no case folding, one segment after
    /// `/v1/users/`); an unknown path is `NotFound` whatever the method.
    pub fn parse(method: &Method, path: &str) -> Result<Self, ApiError> {
        let route = match path {
            HEALTH => Self::Health,
            ME => Self::Me,
            _ => match path.strip_prefix(USERS) {
                Some(id) if !id.is_empty() && !id.contains('/') => {
                    Self::User(UserId::parse(id).ok())
                }
                _ => return Err(ApiError::NotFound),
            },
        };
        if method != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        Ok(route)
    }

    /// The route's name in the request's span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Me => "me",
            Self::User(_) => "user",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Result<Route, ApiError> {
        Route::parse(&Method::GET, path)
    }

    fn user(id: &str) -> Route {
        Route::User(Some(UserId::parse(id).unwrap()))
    }

    #[test]
    fn each_served_path_parses_to_its_own_route() {
        assert_eq!(get("/health").unwrap(), Route::Health);
        assert_eq!(get("/v1/users/me").unwrap(), Route::Me);
        assert_eq!(
            get("/v1/users/user_35kQ7zvT0cWnHq1d2xXy9RbLmAa").unwrap(),
            user("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa")
        );
    }

    #[test]
    fn a_segment_that_is_not_a_clerk_user_id_is_the_user_route_without_an_id() {
        for path in [
            "/v1/users/bob",
            "/v1/users/user_",
            "/v1/users/user_a-b",
            "/v1/users/user%5Fabc",
            "/v1/users/ME",
            &format!("/v1/users/user_{}", "a".repeat(124)),
        ] {
            assert_eq!(get(path).unwrap(), Route::User(None), "{path}");
        }
    }

    #[test]
    fn paths_not_served_are_not_found_whatever_the_method() {
        for path in [
            "",
            "/",
            "/health/",
            "/HEALTH",
            "//health",
            "/health/x",
            "/v1/users",
            "/v1/users/",
            "/v1/users/me/",
            "/v1/users/user_abc/",
            "/v1/users/a/b",
            "/v1/users//user_abc",
            "/v2/users/me",
            "v1/users/me",
        ] {
            for method in [Method::GET, Method::POST] {
                assert!(
                    matches!(Route::parse(&method, path), Err(ApiError::NotFound)),
                    "{method} {path:?}"
                );
            }
        }
    }

    #[test]
    fn any_method_but_get_on_a_served_path_is_not_allowed() {
        for path in [
            "/health",
            "/v1/users/me",
            "/v1/users/user_abc",
            "/v1/users/bob",
        ] {
            for method in [
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::HEAD,
                Method::OPTIONS,
            ] {
                assert!(
                    matches!(Route::parse(&method, path), Err(ApiError::MethodNotAllowed)),
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn each_route_has_its_own_span_name() {
        let names = [
            Route::Health,
            Route::Me,
            user("user_abc"),
            Route::User(None),
        ]
        .map(|r| r.name());
        assert_eq!(names, ["health", "me", "user", "user"]);
    }
}
