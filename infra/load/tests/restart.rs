//! The local stack killed (SIGKILL) mid-run and started again against the same emulator: the
//! deliveries it never answered are retried by the sender as Svix retries them, the messages its
//! sync function held come back after the visibility timeout, and nothing is lost.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use devkit::emulator::Emulator;
use devkit::resources::Names;
use devkit::signing::DEV_WEBHOOK_SECRET;
use load::deliveries;
use load::model::{Model, Size};
use load::oracle::Tables;
use load::sender::{Answer, Retry, Sender};
use load::{Target, converge};

/// The `local-stack` binary `cargo test --workspace` builds next to this test's directory.
fn local_stack_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = dir.join("local-stack");
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build -p local-stack --bin local-stack`; `cargo test --workspace` does)",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the local stack on `port` against `endpoint`, with its files in `state`.
fn start_stack(endpoint: &str, port: u16, state: &std::path::Path) -> Child {
    Command::new(local_stack_binary())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("LOCAL_PORT", port.to_string())
        .env("LOCAL_STATE_DIR", state)
        .env("LOCAL_DEMO", "off")
        .env("LOCAL_VISIBILITY_TIMEOUT_SECONDS", "3")
        .env_remove("CLERK_WEBHOOK_SECRET")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the local stack starts")
}

async fn wait_until_healthy(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let healthy = http
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if healthy {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the local stack never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_killed_mid_run_and_restarted_loses_nothing() {
    let emulator = tokio::task::spawn_blocking(Emulator::start)
        .await
        .unwrap()
        .expect("the emulator starts");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let state = std::env::temp_dir().join(format!("load-restart-{}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    let http = devkit::http_client();
    let mut child = start_stack(emulator.endpoint(), port, &state);
    wait_until_healthy(&http, &base).await;

    let size = Size {
        users: 30,
        deliveries: 300,
        duplicate_percent: 10,
        delete_percent: 20,
        seed: 3,
    }
    .or_from_env();
    let model = Model::generate(size);
    let mut sender = Sender::new(
        format!("{base}/webhooks/clerk"),
        DEV_WEBHOOK_SECRET.to_owned(),
        16,
    );
    sender.retry = Retry {
        first: Duration::from_millis(100),
        max: Duration::from_millis(500),
        give_up_after: size.patience(),
    };
    let sending = tokio::spawn(async move { sender.send_all(deliveries::plan(&model)).await });

    // Mid-run: kill -9, a second of nothing, then the same stack again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !sending.is_finished(),
        "the run is still going when the stack dies"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut child = start_stack(emulator.endpoint(), port, &state);
    wait_until_healthy(&http, &base).await;
    let sent = sending.await.unwrap();

    let sdk = devkit::emulator::sdk_config_for(emulator.endpoint()).await;
    let names = Names::local();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = |name: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_url()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap()
        }
    };
    let target = Target {
        webhook_url: String::new(),
        secret: String::new(),
        tables: Tables {
            users_table: names.users_table.clone(),
            event_log_table: names.event_log_table.clone(),
            queue_url: url(names.queue.clone()).await,
            dead_letter_queue_url: url(names.dead_letter_queue.clone()).await,
        },
        sdk,
    };
    let model = Model::generate(size);
    let (verdict, took) = converge(&target, &model, size.patience()).await.unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&state);

    println!(
        "answers {:?}; converged {:.1} s after the last 2xx: {verdict}",
        sent.answers,
        took.as_secs_f64()
    );
    assert!(verdict.converged(), "{verdict}");
    assert_eq!(
        sent.accepted, size.deliveries,
        "given up: {:?}",
        sent.given_up
    );
    assert!(
        sent.answers
            .get(&Answer::ConnectionError)
            .copied()
            .unwrap_or(0)
            > 0,
        "the kill cut some attempts off: {:?}",
        sent.answers
    );
}
