//! Local development kit: the AWS emulator, the resources the functions need, Svix signing and
//! API Gateway events, shared by the local stack, the dev tool and the tests.

pub mod apigw;
pub mod emulator;
pub mod lambda;
pub mod resources;
pub mod signing;

use std::path::PathBuf;

/// The repository root (this crate lives at `infra/devkit`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// The text of a Clerk webhook fixture under `tests/fixtures/clerk/`, e.g. `user.created`.
pub fn fixture(name: &str) -> String {
    let file = name.strip_suffix(".json").unwrap_or(name);
    let path = workspace_root().join(format!("tests/fixtures/clerk/{file}.json"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}
