//! Adapters: the ports implemented over the AWS SDK, and Svix's signature scheme over the `svix`
//! crate. SDK and HTTP types stop here.

pub mod aws;
pub mod dynamodb;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod secrets_manager;
pub mod sqs;
pub mod svix;
