//! The `smoke` binary as `make smoke` builds it — on its own, so reqwest's features are not unified
//! with this test build's — speaks HTTPS and trusts certificates through `SSL_CERT_FILE`.
//!
//! Its own test binary: it rebuilds `target/debug/smoke` (the path `CARGO_BIN_EXE_smoke` names),
//! and cargo runs test binaries one after another, so no other test runs the binary meanwhile.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use devkit::resources::Names;
use devkit::signing::DEV_WEBHOOK_SECRET;
use local_stack::{ClerkOptions, Stack, StackOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// `cargo build --locked -p e2e --bin smoke` in this workspace's target directory (cargo releases
/// its build lock once `cargo test` has built the tests). Dependencies whose features match the
/// test build are reused; the rest is built once. Returns a copy of the binary, so what runs is
/// what this build produced.
async fn smoke_built_alone() -> PathBuf {
    let output = tokio::process::Command::new(env!("CARGO"))
        .current_dir(devkit::workspace_root())
        .args(["build", "--locked", "-p", "e2e", "--bin", "smoke"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo build failed:\n{stderr}");
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "smoke")
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("no smoke executable in cargo's messages:\n{stderr}"));
    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smoke-built-alone");
    std::fs::copy(&executable, &copy).unwrap();
    copy
}

/// TLS on a free loopback port, relayed as plain TCP to `backend`. Its certificate is
/// self-signed for `127.0.0.1`; returns the port's address and the certificate in PEM.
async fn tls_relay(backend: SocketAddr) -> (SocketAddr, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![cert.cert.der().clone()];
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake: nothing to relay.
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (addr, cert.cert.pem())
}

/// Runs `smoke` against `outputs` with a session token; `cert_file` is the only extra trust.
async fn run_smoke(
    smoke: &Path,
    outputs: &Path,
    token: &str,
    cert_file: Option<&Path>,
) -> (i32, String) {
    let mut command = tokio::process::Command::new(smoke);
    command
        .arg("--outputs")
        .arg(outputs)
        .args(["--wait-seconds", "10", "--check-forgery"])
        .env("SMOKE_TOKEN", token)
        .env_remove("SMOKE_WEBHOOK_SECRET")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null());
    if let Some(file) = cert_file {
        command.env("SSL_CERT_FILE", file);
    }
    let output = command.output().await.expect("the smoke binary runs");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn the_smoke_binary_built_on_its_own_passes_over_https_trusting_only_ssl_cert_file() {
    let (smoke, stack) = tokio::join!(
        smoke_built_alone(),
        Stack::start(StackOptions {
            port: 0,
            webhook_secrets: DEV_WEBHOOK_SECRET.to_owned(),
            names: Names::unique("e2e-tls"),
            sync: true,
            clerk: ClerkOptions::default(),
            local_clerk: Default::default(),
            metrics_file: None,
            aws_endpoint: None,
            sync_pollers: devkit::poller::DEFAULT_POLLERS,
        })
    );
    let stack = stack.expect("local stack starts");
    let (relay, cert_pem) = tls_relay(stack.addr).await;
    let base = format!("https://{relay}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("smoke-https-{}", relay.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_file = dir.join("relay.pem");
    std::fs::write(&cert_file, &cert_pem).unwrap();
    // As `sam list stack-outputs --output json` prints them, every URL on the TLS relay.
    let outputs: Vec<Value> = local_stack::outputs(&base, &stack.resources, stack.endpoint())
        .into_iter()
        .map(|(key, value)| json!({"OutputKey": key, "OutputValue": value}))
        .collect();
    let outputs_file = dir.join("stack-outputs.json");
    std::fs::write(&outputs_file, serde_json::to_string(&outputs).unwrap()).unwrap();
    let clerk = stack.local_clerk.clone().expect("the local Clerk runs");
    let token = clerk.keys.mint("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa");

    let (code, out) = run_smoke(&smoke, &outputs_file, &token, Some(&cert_file)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("smoke test of {base}")), "{out}");
    assert!(out.contains("passed: 5 of 5 checks (0 skipped)"), "{out}");
    assert!(out.contains("ok    health"), "{out}");
    assert!(out.contains("401 without a token"), "{out}");

    // The same run without SSL_CERT_FILE: the system store does not know the relay's certificate.
    let (code, out) = run_smoke(&smoke, &outputs_file, &token, None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  health"), "{out}");
    assert!(
        out.contains("invalid peer certificate: UnknownIssuer"),
        "a certificate error: {out}"
    );
    assert!(!out.contains("scheme is not http"), "{out}");
    stack.stop().await;
}
