//! Shared AWS SDK configuration: bounded timeouts and retries, so a slow dependency turns into a
//! clear error well within Svix's 15 s and API Gateway's 30 s, and one HTTPS client for all.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, default_async_sleep};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::ports::DependencyError;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// How long a connection may take to open, for every AWS client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Loads region, credentials and endpoint from the environment (`AWS_ENDPOINT_URL` points every
/// client at a local emulator), with one HTTPS client ([`https_client`]) shared by every AWS client.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_with(https_client()).await
}

/// [`sdk_config`] with the HTTP client given, for a `main` that times building it apart.
pub async fn sdk_config_with(http_client: SharedHttpClient) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    // Lambda always sets the region and the role's credentials in the environment, where the
    // default chains look first; taking them from there directly skips building the rest of each
    // chain (an STS client for web identity, IMDS and container clients) on every cold start.
    // Elsewhere (no such variables) the default chains run as ever.
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(region) = set("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    if set("AWS_ACCESS_KEY_ID").is_some() && set("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    loader
        .http_client(http_client)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// The SDK's own HTTPS connector (hyper, rustls with aws-lc, the system's root certificates, the
/// proxy from the environment), built once, now, and shared by every AWS client of the process.
///
/// Left to itself, each SDK client builds a default HTTP client of its own, builds (and drops) a
/// connector when it is constructed so that the roots are read at init, then builds another at its
/// first request: the root store parsed twice per client. Here it is parsed once, at init, for the
/// connect and read timeouts every client uses; other timeouts (credential providers that are
/// never reached in Lambda) get a connector of their own when first asked, as before.
pub fn https_client() -> SharedHttpClient {
    let ours = HttpConnectorSettings::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build();
    let client = OneHttpsConnector {
        connectors: RwLock::new(HashMap::new()),
    };
    let connector = connector(&ours, default_async_sleep());
    client
        .connectors
        .write()
        .expect("not poisoned")
        .insert(Timeouts::of(&ours), connector);
    SharedHttpClient::new(client)
}

/// The connector settings a connector is built for (what the SDK's own client caches by).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Timeouts {
    connect: Option<Duration>,
    read: Option<Duration>,
}

impl Timeouts {
    fn of(settings: &HttpConnectorSettings) -> Self {
        Self {
            connect: settings.connect_timeout(),
            read: settings.read_timeout(),
        }
    }
}

/// Builds a connector exactly as aws-smithy-runtime's default HTTPS client does.
fn connector(
    settings: &HttpConnectorSettings,
    sleep: Option<SharedAsyncSleep>,
) -> SharedHttpConnector {
    #[cfg(test)]
    tests::BUILT.with(|n| n.set(n.get() + 1));
    let mut builder =
        ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    builder.set_connector_settings(Some(settings.clone()));
    builder.set_sleep_impl(sleep);
    builder.set_proxy_config(Some(ProxyConfig::from_env()));
    SharedHttpConnector::new(builder.build())
}

/// An [`HttpClient`] holding one connector per connector settings, the common one prebuilt.
#[derive(Debug)]
struct OneHttpsConnector {
    connectors: RwLock<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for OneHttpsConnector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        #[cfg(test)]
        tests::ASKED.with(|n| n.set(n.get() + 1));
        let key = Timeouts::of(settings);
        if let Some(connector) = self.connectors.read().expect("not poisoned").get(&key) {
            return connector.clone();
        }
        self.connectors
            .write()
            .expect("not poisoned")
            .entry(key)
            .or_insert_with(|| connector(settings, components.sleep_impl()))
            .clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("hyper", Some("1.x".into())))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Connectors built on this thread (a current-thread test runtime: all of its work).
        pub(super) static BUILT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// Connectors asked for by the SDK on this thread.
        pub(super) static ASKED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[tokio::test]
    async fn clients_of_every_service_share_the_one_connector_built_at_init() {
        let sdk = sdk_config_with(https_client()).await;
        // One, and here maybe a second for the region lookup's own timeouts (IMDS, when the test
        // environment names no region; Lambda always does).
        let at_init = BUILT.get();
        assert!((1..=2).contains(&at_init), "{at_init}");
        let asked = ASKED.get();
        // Nothing listens on port 9: each call fails fast, after asking for its connector.
        let local = |b: aws_sdk_dynamodb::config::Builder| {
            b.endpoint_url("http://127.0.0.1:9")
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
                .retry_config(RetryConfig::disabled())
        };
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(local((&sdk).into()).build());
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .endpoint_url("http://127.0.0.1:9")
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        assert!(dynamodb.list_tables().send().await.is_err());
        assert!(sqs.list_queues().send().await.is_err());
        assert!(dynamodb.list_tables().send().await.is_err());
        assert_eq!(
            ASKED.get(),
            asked + 3,
            "every call went through the shared client"
        );
        assert_eq!(BUILT.get(), at_init, "no connector built after init");
    }

    #[tokio::test]
    async fn every_client_asks_for_the_connector_built_at_init() {
        // The SDK asks its HTTP client for a connector by the connect and read timeouts of the
        // config: these must be the settings `https_client` prebuilds for, or the first request
        // would build (and parse the roots) again.
        let sdk = sdk_config().await;
        let timeouts = sdk.timeout_config().expect("set");
        let mut asked = HttpConnectorSettings::builder();
        asked
            .set_connect_timeout(timeouts.connect_timeout())
            .set_read_timeout(timeouts.read_timeout());
        let asked = asked.build();
        let prebuilt = HttpConnectorSettings::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build();
        assert_eq!(Timeouts::of(&asked), Timeouts::of(&prebuilt));
        assert!(sdk.http_client().is_some());
    }
}
