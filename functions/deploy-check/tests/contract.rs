//! The self-check events against the real functions' code: the forged webhook is refused by the
//! webhook's own handler exactly as the hook expects, the sync function's service applies the
//! empty batch as the hook expects (writing nothing), and both HTTP events are read by lambda_http
//! as API Gateway events of the intended route.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use clerk_sync::adapters::memory::MemoryStore;
use clerk_sync::domain::webhook::{EventTypeFilter, Verified};
use clerk_sync::ports::{DependencyError, EnqueueError, EventQueue, SecretSource};
use clerk_sync::secret_cache::{CachePolicy, SecretCache};
use deploy_check::{Check, Invocation};
use lambda_http::http::Method;
use secrecy::SecretString;
use webhook::Ingest;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Secret;

#[async_trait]
impl SecretSource for Secret {
    async fn fetch(&self) -> Result<SecretString, DependencyError> {
        Ok(SecretString::from(SECRET))
    }
}

/// Counts what the webhook queues: a forgery must queue nothing.
#[derive(Default)]
struct Queue(AtomicUsize);

#[async_trait]
impl EventQueue for Queue {
    async fn enqueue(&self, _: &Verified<'_>) -> Result<(), EnqueueError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn now() -> u64 {
    std::time::UNIX_EPOCH.elapsed().unwrap().as_secs()
}

#[tokio::test]
async fn the_webhook_refuses_the_forged_self_check_as_the_hook_expects_and_queues_nothing() {
    let queue = Arc::new(Queue::default());
    let app = Ingest::new(
        SecretCache::new(Arc::new(Secret), CachePolicy::default()),
        queue.clone(),
        EventTypeFilter::default(),
    );
    let function = devkit::lambda::http_fn(clerk_sync::edge::service(Arc::new(app)));
    let answer = function(Check::Webhook.event(now())).await.unwrap();
    let invocation = Invocation {
        function_error: None,
        payload: answer.to_string().into_bytes(),
    };
    assert_eq!(Check::Webhook.judge(&invocation), Ok(()), "{answer}");
    assert_eq!(queue.0.load(Ordering::SeqCst), 0);
}

#[test]
fn the_http_self_checks_are_api_gateway_events_of_their_routes() {
    for (check, method, path) in [
        (Check::Webhook, Method::POST, webhook::ROUTE),
        (Check::Api, Method::GET, "/health"),
    ] {
        let request = lambda_http::request::from_str(&check.event(now()).to_string())
            .unwrap_or_else(|e| panic!("{check:?}: {e}"));
        assert_eq!(request.method(), method);
        assert_eq!(request.uri().path(), path);
    }
    assert_eq!(deploy_check::WEBHOOK_ROUTE, webhook::ROUTE);
}

#[tokio::test]
async fn the_sync_function_answers_the_empty_self_check_batch_as_the_hook_expects() {
    let store = Arc::new(MemoryStore::default());
    let worker = sync::SyncWorker::new(store.clone(), store.clone(), 30);
    let function = devkit::lambda::json_fn(sync::lambda_service(Arc::new(worker)));
    let answer = function(Check::Sync.event(now())).await.unwrap();
    let invocation = Invocation {
        function_error: None,
        payload: answer.to_string().into_bytes(),
    };
    assert_eq!(Check::Sync.judge(&invocation), Ok(()), "{answer}");
    assert_eq!(store.writes(), 0);
}
