//! Counting the AWS requests a piece of code makes, as they leave for the network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

/// Counts requests by operation (the last part of `X-Amz-Target`, e.g. `PutItem`,
/// `GetSecretValue`). One counter may watch clients of several services.
#[derive(Debug, Default, Clone)]
pub struct RequestCounter(Arc<Mutex<HashMap<String, usize>>>);

impl RequestCounter {
    /// A DynamoDB client for `sdk` whose requests this counter sees.
    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(self.clone())
                .build(),
        )
    }

    /// A Secrets Manager client for `sdk` whose requests this counter sees.
    pub fn secrets_manager_client(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk)
                .interceptor(self.clone())
                .build(),
        )
    }

    /// Requests so far, by operation.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or("?")
            .to_owned();
        *self
            .0
            .lock()
            .expect("not poisoned")
            .entry(target)
            .or_default() += 1;
        Ok(())
    }
}
