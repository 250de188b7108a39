//! Paths and methods the api does not serve, answered in its error format.

use crate::support::{ADA, ME, bearer, harness, keys};

#[tokio::test]
async fn unknown_routes_are_404_and_other_methods_405_in_the_error_format() {
    let h = harness("routes").await;
    let token = keys().mint(ADA);
    for route in [
        "/",
        "/v1/users",
        "/v1/users/",
        "/v1/users/a/b",
        "/v2/users/me",
        "/health/",
        "/v1/users/me/",
        "/v1/users/user_bob/",
    ] {
        let response = h.get(route, &token).await;
        assert_eq!(response.status, 404, "{route}");
        assert_eq!(response.json()["error"]["code"], "not_found");
    }
    let response = h.request("POST", ME, &bearer(&token)).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET"));
    for (method, route) in [
        ("DELETE", format!("/v1/users/{ADA}")),
        ("PUT", "/health".to_owned()),
    ] {
        let response = h.request(method, &route, &bearer(&token)).await;
        assert_eq!(response.status, 405, "{method} {route}");
        assert_eq!(response.json()["error"]["code"], "method_not_allowed");
        assert_eq!(response.header("allow"), Some("GET"));
    }
}
