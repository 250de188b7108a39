//! The harness: fresh resources in the shared emulator, a local Clerk with generated users on a
//! loopback port, the [`Target`] the commands get, and the files a local stack leaves for the
//! binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clerk_sync::domain::event_log::{LogRecord, Source};
use clerk_sync::domain::user::UserEvent;
use clerk_sync::ports::UserStore;
use clerk_sync_ops::aws::bookkeeping::{self, Bookkeeping};
use clerk_sync_ops::clerk::ClerkClient;
use clerk_sync_ops::target::{Outputs, Target};
use devkit::emulator::Emulator;
use devkit::resources::{DEV_CLERK_SECRET_KEY, Names, Resources, provision};
use devkit::signing::DEV_WEBHOOK_SECRET;
use local_stack::clerk::{LocalClerk, LocalClerkOptions};

pub struct Harness {
    pub sdk: aws_config::SdkConfig,
    pub resources: Resources,
    pub target: Target,
    pub clerk: Arc<LocalClerk>,
    pub clerk_url: String,
    _server: tokio::task::JoinHandle<()>,
}

impl Harness {
    /// Fresh resources, and a local Clerk with `users` generated users answering 429 to every
    /// `rate_limit_every`-th request (0: never).
    pub async fn start(label: &str, users: usize, rate_limit_every: u64) -> Self {
        clerk_sync::telemetry::init_for_tests();
        let emulator = Emulator::shared();
        let sdk = emulator.sdk_config().await;
        let resources = provision(&sdk, Names::unique(label), DEV_WEBHOOK_SECRET)
            .await
            .expect("provision");
        let clerk = Arc::new(LocalClerk::with_options(
            DEV_CLERK_SECRET_KEY,
            LocalClerkOptions {
                generated_users: users,
                rate_limit_every,
                retry_after_seconds: 1,
            },
        ));
        // The fixtures' user is not a generated one: dropped, so Clerk holds exactly `users`.
        clerk.remove_user("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa");
        assert_eq!(clerk.user_count(), users);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = clerk.clone().router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let clerk_url = format!("http://{addr}{}", local_stack::clerk::API_PREFIX);
        let target = Target {
            label: "test".into(),
            sdk: sdk.clone(),
            outputs: Outputs {
                users_table: resources.names.users_table.clone(),
                event_log_table: resources.names.event_log_table.clone(),
                events_queue_url: resources.queue_url.clone(),
                dead_letter_queue_url: resources.dead_letter_queue_url.clone(),
                dead_letter_queue_arn: Some(resources.dead_letter_queue_arn.clone()),
                clerk_secret_key_arn: Some(resources.clerk_secret_key_id.clone()),
            },
            clerk_api_url: clerk_url.clone(),
            clerk_secret_key: None,
            retention_days: 30,
        };
        Self {
            sdk,
            resources,
            target,
            clerk,
            clerk_url,
            _server: server,
        }
    }

    /// A Clerk client at a rate that keeps tests quick, with the key read from the stack's
    /// secret (as the binary does).
    pub async fn clerk_client(&self) -> ClerkClient {
        self.target.clerk(500.0).await.expect("clerk client")
    }

    pub fn users(&self) -> Arc<dyn UserStore> {
        Arc::new(self.target.users())
    }

    /// Applies `event` as the sync function would for Svix message `svix_id`.
    pub async fn webhook(&self, event: &UserEvent, svix_id: &str) {
        self.target
            .users()
            .apply(event, svix_id, clerk_sync::clock::now_ms())
            .await
            .expect("apply");
    }

    /// Every users-table item's bookkeeping, by id.
    pub async fn table(&self) -> BTreeMap<String, Bookkeeping> {
        let mut all = BTreeMap::new();
        bookkeeping::scan(
            &self.target.dynamodb(),
            &self.resources.names.users_table,
            |b| {
                all.insert(b.id.clone(), b);
            },
        )
        .await
        .expect("scan");
        all
    }

    /// Every event-log record.
    pub async fn log(&self) -> Vec<LogRecord> {
        let client = self.target.dynamodb();
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let out = client
                .scan()
                .table_name(&self.resources.names.event_log_table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for item in out.items() {
                records.push(serde_dynamo::from_item(item.clone()).expect("a log record"));
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return records,
            }
        }
    }

    pub async fn log_of(&self, source: Source) -> Vec<LogRecord> {
        self.log()
            .await
            .into_iter()
            .filter(|r| r.source == source)
            .collect()
    }

    /// Writes the files `make local` leaves (outputs and lambda.env) into a fresh directory,
    /// for the binary; returns the outputs file.
    pub fn local_stack_files(&self) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ops-stack-{:x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let r = &self.resources;
        let outputs = serde_json::json!([
            {"OutputKey": "UsersTableName", "OutputValue": r.names.users_table},
            {"OutputKey": "EventLogTableName", "OutputValue": r.names.event_log_table},
            {"OutputKey": "EventsQueueUrl", "OutputValue": r.queue_url},
            {"OutputKey": "DeadLetterQueueUrl", "OutputValue": r.dead_letter_queue_url},
            {"OutputKey": "DeadLetterQueueArn", "OutputValue": r.dead_letter_queue_arn},
            {"OutputKey": "ClerkSecretKeyArn", "OutputValue": r.clerk_secret_key_id},
            {"OutputKey": "LocalAwsEndpointUrl", "OutputValue": Emulator::shared().endpoint()},
        ]);
        let path = dir.join("stack-outputs.json");
        std::fs::write(&path, outputs.to_string()).unwrap();
        let mut env: BTreeMap<&str, String> = Emulator::shared().process_env();
        env.insert("CLERK_API_URL", self.clerk_url.clone());
        let text: String = env.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        std::fs::write(dir.join("lambda.env"), text).unwrap();
        path
    }

    /// A throwaway checkpoint path.
    pub fn checkpoint_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!("ops-ckpt-{:x}.json", fastrand::u64(..)))
    }
}

/// Generated user number `n`'s id.
pub fn generated_id(n: usize) -> String {
    format!("user_local{n:07}")
}

/// A user event for `id` at `updated_at`, as a webhook brings it.
pub fn upsert(id: &str, updated_at: i64) -> UserEvent {
    UserEvent::parse(&devkit::clerk::user_upsert("user.updated", id, updated_at)).unwrap()
}

pub fn deleted(id: &str, at: i64) -> UserEvent {
    UserEvent::parse(&devkit::clerk::user_deleted(id, at)).unwrap()
}

/// A generated user's `updated_at`, from what the local Clerk serves.
pub fn generated_updated_at(n: usize) -> i64 {
    local_stack::clerk::generated_user(n)["updated_at"]
        .as_i64()
        .unwrap()
}

impl Harness {
    /// Queues `body` on `queue_url` exactly as the webhook does (the queue contract's encoding
    /// and attributes), as Svix message `svix_id`.
    pub async fn enqueue(&self, queue_url: &str, svix_id: &str, body: &str) {
        use clerk_sync::ports::EventQueue;
        let event_type: serde_json::Value = serde_json::from_str(body).unwrap();
        let verified = clerk_sync::domain::webhook::Verified {
            svix_id: clerk_sync::domain::webhook::SvixId::parse(svix_id).unwrap(),
            event_type: event_type["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
                .into(),
            payload: body,
        };
        clerk_sync::adapters::sqs::SqsEventQueue::new(
            aws_sdk_sqs::Client::new(&self.sdk),
            queue_url,
        )
        .enqueue(&verified)
        .await
        .expect("enqueue");
    }

    /// Runs the real sync function over the events queue until it is empty: how many messages
    /// it received.
    pub async fn sync_events_queue(&self) -> usize {
        let worker = Arc::new(sync::SyncWorker::new(
            self.users(),
            Arc::new(self.target.event_log()),
            30,
        ));
        let function = devkit::lambda::json_fn(sync::lambda_service(worker));
        let mut mapping =
            devkit::poller::Mapping::new(&self.resources.queue_url, &self.resources.queue_arn);
        mapping.wait_seconds = 1;
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut received = 0;
        loop {
            let n = devkit::poller::poll_once(&sqs, &mapping, &function)
                .await
                .expect("poll");
            if n == 0 {
                return received;
            }
            received += n;
        }
    }

    /// Every message on `queue_url`, taken off it: their svix ids.
    pub async fn take_svix_ids(&self, queue_url: &str) -> Vec<String> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut ids = Vec::new();
        devkit::sqs_event::take_all(&sqs, queue_url, |m| {
            let id = m
                .message_attributes()
                .and_then(|a| a.get(clerk_sync::adapters::sqs::attributes::SVIX_ID))
                .and_then(|v| v.string_value())
                .unwrap_or_default()
                .to_owned();
            ids.push(id);
        })
        .await
        .expect("take");
        ids
    }
}
