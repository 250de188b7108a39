//! [`SecretSource`] over Secrets Manager `GetSecretValue`.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::ports::{DependencyError, SecretSource};

pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<SecretString, DependencyError> {
        const OP: &str = "GetSecretValue";
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| DependencyError::new("secretsmanager", OP, e))?;
        if let Some(value) = out.secret_string {
            return Ok(SecretString::from(value));
        }
        let bytes = out
            .secret_binary
            .ok_or_else(|| DependencyError::new("secretsmanager", OP, "the secret has no value"))?;
        String::from_utf8(bytes.into_inner())
            .map(SecretString::from)
            .map_err(|_| {
                DependencyError::new(
                    "secretsmanager",
                    OP,
                    "the secret's binary value is not UTF-8",
                )
            })
    }
}
