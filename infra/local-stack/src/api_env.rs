//! The api function's environment on the local stack: the resources, plus Clerk settings given
//! by the caller or filled in for the local Clerk.

use std::collections::BTreeMap;

use clerk_sync::config::ApiConfig;
use devkit::resources::Resources;

use crate::clerk;

/// The api's Clerk settings, with the variable names a deployment uses. When neither
/// `jwt_key` nor `jwks_url` is set, the stack runs its local Clerk and fills in the rest.
#[derive(Debug, Clone, Default)]
pub struct ClerkOptions {
    pub jwt_key: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub authorized_parties: Option<String>,
    pub api_url: Option<String>,
    pub secret_key: Option<String>,
    pub admin_claim: Option<String>,
}

impl ClerkOptions {
    /// From `CLERK_JWT_KEY`, `CLERK_JWKS_URL`, `CLERK_ISSUER`, `CLERK_AUTHORIZED_PARTIES`,
    /// `CLERK_API_URL`, `CLERK_SECRET_KEY` and `CLERK_ADMIN_CLAIM`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            jwt_key: var("CLERK_JWT_KEY"),
            jwks_url: var("CLERK_JWKS_URL"),
            issuer: var("CLERK_ISSUER"),
            authorized_parties: var("CLERK_AUTHORIZED_PARTIES"),
            api_url: var("CLERK_API_URL"),
            secret_key: var("CLERK_SECRET_KEY"),
            admin_claim: var("CLERK_ADMIN_CLAIM"),
        }
    }

    pub fn is_local(&self) -> bool {
        self.jwt_key.is_none() && self.jwks_url.is_none()
    }
}

/// The api's environment: the resources, plus the given Clerk settings, or the local Clerk's.
pub(crate) fn api_env(
    resources: &Resources,
    clerk: &ClerkOptions,
    base_url: &str,
) -> BTreeMap<&'static str, String> {
    let mut env = resources.api_env();
    if clerk.is_local() {
        env.insert(
            ApiConfig::JWKS_URL,
            format!("{base_url}{}", clerk::JWKS_PATH),
        );
        env.insert(ApiConfig::ISSUER, devkit::tokens::LOCAL_ISSUER.to_owned());
        env.insert(
            ApiConfig::AUTHORIZED_PARTIES,
            devkit::tokens::LOCAL_AZP.to_owned(),
        );
        env.insert(
            ApiConfig::API_URL,
            format!("{base_url}{}", clerk::API_PREFIX),
        );
        env.insert(
            ApiConfig::ADMIN_CLAIM,
            clerk
                .admin_claim
                .clone()
                .unwrap_or_else(|| "metadata.role=admin".to_owned()),
        );
        return env;
    }
    let given = [
        (ApiConfig::JWT_KEY, &clerk.jwt_key),
        (ApiConfig::JWKS_URL, &clerk.jwks_url),
        (ApiConfig::ISSUER, &clerk.issuer),
        (ApiConfig::AUTHORIZED_PARTIES, &clerk.authorized_parties),
        (ApiConfig::API_URL, &clerk.api_url),
        (ApiConfig::ADMIN_CLAIM, &clerk.admin_claim),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            env.insert(name, value.clone());
        }
    }
    env
}
