//! Local development kit: the AWS emulator, the resources the functions need, Svix signing and
//! API Gateway events, shared by the local stack, the dev tool and the tests.

pub mod apigw;
pub mod bench_inputs;
pub mod clerk;
pub mod counting;
pub mod emulator;
pub mod fuzz;
pub mod lambda;
pub mod poller;
pub mod resources;
pub mod runtime_api;
pub mod signing;
pub mod sqs_event;
pub mod tokens;

use std::path::PathBuf;

/// A plain HTTP(S) client for tools and tests, verifying servers against the system's certificate
/// store, or the certificates in `SSL_CERT_FILE` / `SSL_CERT_DIR` when set. The workspace builds
/// reqwest's rustls without a built-in crypto provider (the functions use aws-lc-rs, which the AWS
/// SDK links anyway), so the provider is installed first.
pub fn http_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// Installs aws-lc-rs as the process's rustls crypto provider, once (later calls do nothing):
/// reqwest's rustls is built without one, and panics building a client otherwise.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The repository root (this crate lives at `infra/devkit`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// Where the Clerk webhook fixture `name` (e.g. `user.created`) lives: `tests/fixtures/clerk/`.
pub fn fixture_path(name: &str) -> PathBuf {
    let file = name.strip_suffix(".json").unwrap_or(name);
    workspace_root().join(format!("tests/fixtures/clerk/{file}.json"))
}

/// The text of a Clerk webhook fixture, for tests.
pub fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}
