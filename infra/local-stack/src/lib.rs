//! The local stack: the AWS emulator, the resources, a local API Gateway that turns HTTP requests
//! into Lambda events and runs the real function code in-process, and the SQS event source
//! mapping that feeds queued events to the sync function.

mod api_env;
pub mod clerk;
pub mod cors;
mod demo;
mod files;
mod gateway;
mod stack;
pub mod walkthrough;

pub use api_env::ClerkOptions;
pub use demo::demo;
pub use files::{
    LOCAL_ENDPOINT_OUTPUT, env_file, local_dir, metrics_file, outputs, outputs_file, read_env_file,
};
pub use gateway::Route;
pub use stack::{Stack, StackOptions};
