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
    /// `true` refuses tokens of pending sessions; honoured with the local Clerk too.
    pub refuse_pending_sessions: Option<String>,
    /// `LAZY_SYNC` as given. Unset with a Clerk of yours and no secret key, lazy sync is off: the
    /// api would call your Clerk's Backend API with a key it does not have.
    pub lazy_sync: Option<String>,
}

impl ClerkOptions {
    /// From `CLERK_JWT_KEY`, `CLERK_JWKS_URL`, `CLERK_ISSUER`, `CLERK_AUTHORIZED_PARTIES`,
    /// `CLERK_API_URL`, `CLERK_SECRET_KEY`, `CLERK_ADMIN_CLAIM`, `CLERK_REFUSE_PENDING_SESSIONS`
    /// and `LAZY_SYNC`.
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
            refuse_pending_sessions: var("CLERK_REFUSE_PENDING_SESSIONS"),
            lazy_sync: var("LAZY_SYNC"),
        }
    }

    pub fn is_local(&self) -> bool {
        self.jwt_key.is_none() && self.jwks_url.is_none()
    }

    /// Whether the api fetches users it has not synced from Clerk: as `LAZY_SYNC` says, else
    /// with the local Clerk or with a Clerk secret key given.
    pub fn lazy_sync(&self) -> bool {
        match &self.lazy_sync {
            Some(value) => !matches!(value.trim(), "false" | "off" | "0"),
            None => self.is_local() || self.secret_key.is_some(),
        }
    }
}

/// The api's environment: the resources, plus the given Clerk settings, or the local Clerk's.
pub(crate) fn api_env(
    resources: &Resources,
    clerk: &ClerkOptions,
    base_url: &str,
) -> BTreeMap<&'static str, String> {
    let mut env = resources.api_env();
    // A policy of ours, not a property of the Clerk instance, so the local Clerk's tokens obey it
    // too (as the admin claim does); unset, the api's own default (off) applies.
    if let Some(value) = &clerk.refuse_pending_sessions {
        env.insert(ApiConfig::REFUSE_PENDING_SESSIONS, value.clone());
    }
    env.insert(ApiConfig::LAZY_SYNC, clerk.lazy_sync().to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Resources {
        Resources {
            names: devkit::resources::Names::unique("api-env"),
            queue_url: "q".into(),
            dead_letter_queue_url: "d".into(),
            webhook_secret_id: "w".into(),
            clerk_secret_key_id: "c".into(),
            dead_letter_queue_arn: "da".into(),
            queue_arn: "qa".into(),
        }
    }

    fn own_clerk() -> ClerkOptions {
        ClerkOptions {
            jwks_url: Some("https://clerk.example.com/.well-known/jwks.json".into()),
            ..ClerkOptions::default()
        }
    }

    #[test]
    fn lazy_sync_is_off_with_your_clerk_and_no_secret_key_and_lazy_sync_passes_through() {
        let lazy = |clerk: &ClerkOptions| {
            api_env(&resources(), clerk, "http://127.0.0.1:1")[ApiConfig::LAZY_SYNC].clone()
        };
        assert_eq!(lazy(&ClerkOptions::default()), "true", "the local Clerk");
        assert_eq!(
            lazy(&own_clerk()),
            "false",
            "no key to call your Clerk with"
        );
        let keyed = ClerkOptions {
            secret_key: Some("sk_test_x".into()),
            ..own_clerk()
        };
        assert_eq!(lazy(&keyed), "true");
        for (given, expected) in [("false", "false"), ("true", "true")] {
            let told = ClerkOptions {
                lazy_sync: Some(given.into()),
                ..keyed.clone()
            };
            assert_eq!(lazy(&told), expected);
        }
    }

    #[test]
    fn refusing_pending_sessions_reaches_the_api_with_the_local_clerk_and_with_a_given_one() {
        for clerk in [
            ClerkOptions::default(),
            ClerkOptions {
                jwks_url: Some("https://clerk.example.com/.well-known/jwks.json".into()),
                ..ClerkOptions::default()
            },
        ] {
            let refusing = ClerkOptions {
                refuse_pending_sessions: Some("true".into()),
                ..clerk.clone()
            };
            let env = api_env(&resources(), &refusing, "http://127.0.0.1:1");
            assert_eq!(
                env.get(ApiConfig::REFUSE_PENDING_SESSIONS)
                    .map(String::as_str),
                Some("true"),
                "{clerk:?}"
            );
            let env = api_env(&resources(), &clerk, "http://127.0.0.1:1");
            assert!(
                !env.contains_key(ApiConfig::REFUSE_PENDING_SESSIONS),
                "unset is left to the api's default: {clerk:?}"
            );
        }
    }
}
