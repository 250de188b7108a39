//! CodeDeploy's pre-traffic hook: invokes the new version of each function with a self-check
//! event, judges the answers, and reports `Succeeded` or `Failed` for the lifecycle hook.
//!
//! The judging (which event each function gets, what a healthy answer is: [`check`]) is plain
//! Rust with no AWS calls; [`Hook`] carries it out through the real Lambda and CodeDeploy clients.

pub mod check;
pub mod config;
mod hook;

pub use check::{Check, INVALID_SIGNATURE, Invocation, WEBHOOK_ROUTE, verdict};
pub use config::{Config, ConfigError, HookEvent, Target};
pub use hook::{Hook, ReportFailed};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:clerk-sync-dev-webhook";

    fn http_answer(status: i64, body: &str) -> Invocation {
        Invocation {
            function_error: None,
            payload:
                json!({"statusCode": status, "headers": {}, "body": body, "isBase64Encoded": false})
                    .to_string()
                    .into_bytes(),
        }
    }

    #[test]
    fn a_version_arn_splits_into_the_function_and_its_version_number() {
        let target = Target::parse(Check::Webhook, "V", &format!("{ARN}:17")).unwrap();
        assert_eq!(target.function, ARN);
        assert_eq!(target.version, "17");
    }

    #[test]
    fn an_alias_latest_or_unqualified_arn_is_not_a_version() {
        for arn in [
            ARN.to_owned(),
            format!("{ARN}:live"),
            format!("{ARN}:$LATEST"),
            format!("{ARN}:"),
            "clerk-sync-dev-webhook:3".to_owned(),
        ] {
            assert!(
                matches!(
                    Target::parse(Check::Webhook, "V", &arn),
                    Err(ConfigError::NotAVersion { .. })
                ),
                "{arn}"
            );
        }
    }

    #[test]
    fn the_config_names_the_missing_variable() {
        let err = Config::from_lookup(|name| (name != Config::SYNC).then(|| format!("{ARN}:1")))
            .unwrap_err();
        assert_eq!(err.to_string(), "SYNC_FUNCTION_VERSION is not set");
        let config = Config::from_lookup(|_| Some(format!("{ARN}:2"))).unwrap();
        let checks: Vec<Check> = config.targets.iter().map(|t| t.check).collect();
        assert_eq!(checks, [Check::Webhook, Check::Sync, Check::Api]);
    }

    #[test]
    fn the_hooks_event_is_what_codedeploy_sends() {
        let event: HookEvent = serde_json::from_value(json!({
            "DeploymentId": "d-ABCDEF123",
            "LifecycleEventHookExecutionId": "eyJlbmNyeXB0ZWREYXRhIjoi"
        }))
        .unwrap();
        assert_eq!(event.deployment_id, "d-ABCDEF123");
        assert_eq!(
            event.lifecycle_event_hook_execution_id,
            "eyJlbmNyeXB0ZWREYXRhIjoi"
        );
    }

    #[test]
    fn the_webhook_passes_only_by_refusing_the_forgery_as_an_invalid_signature() {
        let refused = r#"{"error":{"code":"invalid_signature","message":"signature mismatch"}}"#;
        assert_eq!(Check::Webhook.judge(&http_answer(401, refused)), Ok(()));
        let queued = http_answer(202, r#"{"status":"queued","id":"msg_deploycheck1"}"#);
        assert!(Check::Webhook.judge(&queued).unwrap_err().contains("202"));
        let stale = r#"{"error":{"code":"timestamp_out_of_tolerance","message":"old"}}"#;
        assert!(Check::Webhook.judge(&http_answer(401, stale)).is_err());
        let no_secret = r#"{"error":{"code":"secrets_unavailable","message":"x"}}"#;
        let why = Check::Webhook
            .judge(&http_answer(503, no_secret))
            .unwrap_err();
        assert!(why.contains("put-secret-value"), "{why}");
    }

    #[test]
    fn a_function_error_fails_any_check() {
        let crashed = Invocation {
            function_error: Some("Unhandled".to_owned()),
            payload: br#"{"errorType":"Runtime.ExitError"}"#.to_vec(),
        };
        for check in [Check::Webhook, Check::Sync, Check::Api] {
            assert!(check.judge(&crashed).unwrap_err().contains("Unhandled"));
        }
    }

    #[test]
    fn the_sync_passes_an_empty_batch_with_no_item_failures() {
        let answer = |body: &str| Invocation {
            function_error: None,
            payload: body.as_bytes().to_vec(),
        };
        assert_eq!(
            Check::Sync.judge(&answer(r#"{"batchItemFailures":[]}"#)),
            Ok(())
        );
        assert!(
            Check::Sync
                .judge(&answer(r#"{"batchItemFailures":[{"itemIdentifier":"x"}]}"#))
                .is_err()
        );
        assert!(Check::Sync.judge(&answer("null")).is_err());
        assert_eq!(Check::Sync.event(0), json!({"Records": []}));
    }

    #[test]
    fn the_api_passes_on_a_healthy_health_check_only() {
        assert_eq!(
            Check::Api.judge(&http_answer(200, r#"{"status":"ok"}"#)),
            Ok(())
        );
        let why = Check::Api
            .judge(&http_answer(503, r#"{"status":"degraded"}"#))
            .unwrap_err();
        assert!(why.contains("503") && why.contains("degraded"), "{why}");
        assert!(Check::Api.judge(&http_answer(404, "")).is_err());
    }

    #[test]
    fn the_verdict_fails_when_any_check_fails_and_names_it() {
        assert_eq!(
            verdict(&[(Check::Webhook, Ok(())), (Check::Api, Ok(()))]),
            Ok(())
        );
        assert_eq!(
            verdict(&[
                (Check::Webhook, Ok(())),
                (Check::Sync, Err("boom".to_owned())),
            ]),
            Err(vec!["sync: boom".to_owned()])
        );
    }
}
