//! Shared AWS SDK configuration: bounded timeouts and retries, so a slow dependency turns into a
//! clear error well within Svix's 15 s and API Gateway's 30 s.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::ports::DependencyError;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads region, credentials and endpoint from the environment (`AWS_ENDPOINT_URL` points every
/// client at a local emulator).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// Error codes with which an AWS service refuses a request for what it is: the same request is
/// refused every time, so retrying it only delays the dead-letter queue.
const REFUSED_REQUEST_CODES: &[&str] = &[
    // DynamoDB: an item it cannot store (a number out of range, too deep, over 400 KB…).
    "ValidationException",
    "SerializationException",
    // SQS: a message it will not accept.
    "InvalidParameterValue",
    "InvalidMessageContents",
    "InvalidAttributeName",
    "InvalidAttributeValue",
];

/// An SDK error as a [`DependencyError`], classed by what it is. The one place that decides
/// whether an AWS failure is worth retrying: a request the service refuses for its content (or
/// one the SDK could not even build) is not; throttling, timeouts, 5xx, unreachable endpoints,
/// missing resources and denied access are, since they change without the request changing.
pub fn sdk_error<E, R>(
    dependency: &'static str,
    operation: &'static str,
    error: SdkError<E, R>,
) -> DependencyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let refused = match &error {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(_) => error
            .code()
            .is_some_and(|code| REFUSED_REQUEST_CODES.contains(&code)),
        _ => false,
    };
    if refused {
        DependencyError::refused(dependency, operation, error)
    } else {
        DependencyError::new(dependency, operation, error)
    }
}
