//! The Backend API client against a misbehaving Clerk: 5xx retried with backoff, a refused key
//! not retried, the version header and the cursor sent.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use clerk_sync_ops::clerk::{API_VERSION, ClerkClient, ClerkFailure, Retry};

#[derive(Default)]
struct Flaky {
    /// Requests answered 503 before the first 200.
    failures: u32,
    /// Answer 401 instead.
    refuse: bool,
    seen: AtomicU32,
    last: Mutex<Option<(String, Option<String>)>>,
}

async fn serve(flaky: Arc<Flaky>) -> String {
    let handler = move |uri: Uri, headers: HeaderMap| {
        let flaky = flaky.clone();
        async move {
            let n = flaky.seen.fetch_add(1, Ordering::Relaxed);
            *flaky.last.lock().unwrap() = Some((
                uri.to_string(),
                headers
                    .get("clerk-api-version")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ));
            if flaky.refuse {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            if n < flaky.failures {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            axum::Json(vec![local_stack::clerk::generated_user(1)]).into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(handler)).await;
    });
    format!("http://{addr}/v1")
}

fn client(url: &str) -> ClerkClient {
    ClerkClient::new(url, "sk_test_x".to_owned().into(), 1_000.0)
        .unwrap()
        .with_retry(Retry {
            attempts: 4,
            backoff: Duration::from_millis(20),
            rate_limited: 3,
        })
}

#[tokio::test]
async fn a_5xx_is_retried_with_backoff_and_the_page_arrives_with_the_version_header_and_cursor() {
    let flaky = Arc::new(Flaky {
        failures: 2,
        ..Flaky::default()
    });
    let clerk = client(&serve(flaky.clone()).await);
    let page = clerk.list_page(Some("user_after"), 500).await.unwrap();
    assert_eq!(page.users.len(), 1);
    assert_eq!(clerk.retried(), 2);
    assert_eq!(flaky.seen.load(Ordering::Relaxed), 3);
    let (uri, version) = flaky.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        uri,
        "/v1/users?limit=500&order_by=%2Bcreated_at&starting_after=user_after"
    );
    assert_eq!(version.as_deref(), Some(API_VERSION));
}

#[tokio::test]
async fn a_5xx_past_the_retry_budget_fails_and_a_refused_key_is_never_retried() {
    let down = Arc::new(Flaky {
        failures: u32::MAX,
        ..Flaky::default()
    });
    let clerk = client(&serve(down.clone()).await);
    let e = clerk.list_page(None, 10).await.unwrap_err();
    assert!(
        matches!(e, ClerkFailure::Exhausted { attempts: 4, .. }),
        "{e}"
    );
    assert_eq!(down.seen.load(Ordering::Relaxed), 4);

    let refused = Arc::new(Flaky {
        refuse: true,
        ..Flaky::default()
    });
    let clerk = client(&serve(refused.clone()).await);
    let e = clerk.count().await.unwrap_err();
    assert!(matches!(e, ClerkFailure::Unauthorized(..)), "{e}");
    assert_eq!(refused.seen.load(Ordering::Relaxed), 1);
    assert!(
        !e.to_string().contains("sk_test_x"),
        "the key is never in a message"
    );
}
