//! The local stack and the SAM template describe the same system: queue settings, table keys and
//! indexes, resource names, the event source mapping, and each function's environment variable
//! names. The template is read with cfn-lint's CloudFormation YAML loader from `./.venv`.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use clerk_sync::adapters::dynamodb::{event_log, users};
use clerk_sync::config::{ApiConfig, SyncConfig, WebhookConfig};
use deploy_check::Config as DeployCheckConfig;
use devkit::resources::{
    DLQ_RETENTION_SECONDS, MAX_RECEIVE_COUNT, Names, RETENTION_SECONDS, VISIBILITY_TIMEOUT_SECONDS,
};
use reconcile::ReconcileConfig;
use serde_json::{Value, json};

static TEMPLATE: LazyLock<Value> = LazyLock::new(|| {
    let root = devkit::workspace_root();
    let output = std::process::Command::new(root.join(".venv/bin/python"))
        .current_dir(&root)
        .args([
            "-c",
            "import json; from cfnlint.decode import cfn_yaml; \
             print(json.dumps(cfn_yaml.load('template.yaml'), default=str))",
        ])
        .output()
        .expect("the project's venv (scripts/bootstrap.sh) runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the template as JSON")
});

fn resource(name: &str) -> &'static Value {
    let r = &TEMPLATE["Resources"][name]["Properties"];
    assert!(!r.is_null(), "template has no {name}");
    r
}

fn env_names(function: &str) -> BTreeSet<String> {
    resource(function)["Environment"]["Variables"]
        .as_object()
        .expect("the function has environment variables")
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn queues_match_the_local_ones_in_names_retention_visibility_and_redrive() {
    let queue = resource("EventsQueue");
    let dlq = resource("EventsDeadLetterQueue");
    let local = Names::local();
    assert_eq!(queue["QueueName"]["Fn::Sub"], "${AWS::StackName}-events");
    assert!(local.queue.ends_with("-events"));
    assert_eq!(dlq["QueueName"]["Fn::Sub"], "${AWS::StackName}-events-dlq");
    assert!(local.dead_letter_queue.ends_with("-events-dlq"));
    assert_eq!(queue["VisibilityTimeout"], VISIBILITY_TIMEOUT_SECONDS);
    assert_eq!(queue["MessageRetentionPeriod"], RETENTION_SECONDS);
    assert_eq!(dlq["MessageRetentionPeriod"], DLQ_RETENTION_SECONDS);
    for q in [queue, dlq] {
        assert_eq!(
            q["MaximumMessageSize"],
            clerk_sync::adapters::sqs::MAX_MESSAGE_BYTES
        );
    }
    assert_eq!(queue["RedrivePolicy"]["maxReceiveCount"], MAX_RECEIVE_COUNT);
    let sync_timeout = resource("SyncFunction")["Timeout"].as_u64().unwrap();
    assert!(u64::from(VISIBILITY_TIMEOUT_SECONDS) >= 6 * sync_timeout);
}

#[test]
fn tables_match_the_local_ones_in_keys_index_and_ttl() {
    let users_table = resource("UsersTable");
    assert_eq!(
        users_table["TableName"]["Fn::Sub"],
        "${AWS::StackName}-users"
    );
    assert!(Names::local().users_table.ends_with("-users"));
    assert_eq!(
        users_table["KeySchema"],
        json!([{"AttributeName": users::ID, "KeyType": "HASH"}])
    );
    let log = resource("EventLogTable");
    assert_eq!(log["TableName"]["Fn::Sub"], "${AWS::StackName}-event-log");
    assert!(Names::local().event_log_table.ends_with("-event-log"));
    assert_eq!(
        log["KeySchema"],
        json!([{"AttributeName": event_log::SVIX_ID, "KeyType": "HASH"}])
    );
    assert_eq!(
        log["GlobalSecondaryIndexes"],
        json!([{
            "IndexName": event_log::BY_USER_INDEX,
            "KeySchema": [
                {"AttributeName": event_log::USER_ID, "KeyType": "HASH"},
                {"AttributeName": event_log::RECEIVED_AT, "KeyType": "RANGE"}
            ],
            "Projection": {"ProjectionType": "ALL"}
        }])
    );
    let mut types: Vec<(String, String)> = log["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["AttributeName"].as_str().unwrap().to_owned(),
                d["AttributeType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            (event_log::RECEIVED_AT.to_owned(), "N".to_owned()),
            (event_log::SVIX_ID.to_owned(), "S".to_owned()),
            (event_log::USER_ID.to_owned(), "S".to_owned()),
        ]
    );
    assert_eq!(
        log["TimeToLiveSpecification"],
        json!({"AttributeName": event_log::EXPIRES_AT, "Enabled": true})
    );
}

#[test]
fn the_event_source_mapping_matches_the_local_poller() {
    let events = &resource("SyncFunction")["Events"];
    let sqs = events
        .as_object()
        .unwrap()
        .values()
        .find(|e| e["Type"] == "SQS")
        .expect("an SQS event");
    let local = devkit::poller::Mapping::new("url", "arn");
    assert_eq!(sqs["Properties"]["BatchSize"], local.batch_size);
    assert_eq!(
        sqs["Properties"]["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
}

#[test]
fn every_function_gets_exactly_the_variables_its_config_reads() {
    assert_eq!(
        env_names("WebhookFunction"),
        set(&[
            WebhookConfig::SECRET_ID,
            WebhookConfig::QUEUE_URL,
            WebhookConfig::SYNCED_EVENT_TYPES,
            WebhookConfig::REFRESH_INTERVAL,
            WebhookConfig::MAX_AGE,
        ])
    );
    assert_eq!(
        env_names("SyncFunction"),
        set(&[
            SyncConfig::USERS_TABLE,
            SyncConfig::EVENT_LOG_TABLE,
            SyncConfig::RETENTION_DAYS,
        ])
    );
    assert_eq!(
        env_names("ApiFunction"),
        set(&[
            ApiConfig::USERS_TABLE,
            ApiConfig::EVENT_LOG_TABLE,
            ApiConfig::RETENTION_DAYS,
            ApiConfig::QUEUE_URL,
            ApiConfig::JWT_KEY,
            ApiConfig::JWKS_URL,
            ApiConfig::ISSUER,
            ApiConfig::AUTHORIZED_PARTIES,
            ApiConfig::CLOCK_SKEW,
            ApiConfig::ADMIN_CLAIM,
            ApiConfig::REFUSE_PENDING_SESSIONS,
            ApiConfig::API_URL,
            ApiConfig::SECRET_KEY_ID,
            ApiConfig::LAZY_SYNC,
            ApiConfig::JWKS_MIN_REFRESH,
            ApiConfig::JWKS_MAX_AGE,
        ])
    );
    assert_eq!(
        env_names("ReconcileFunction"),
        set(&[
            ReconcileConfig::USERS_TABLE,
            ReconcileConfig::EVENT_LOG_TABLE,
            ReconcileConfig::RETENTION_DAYS,
            ReconcileConfig::API_URL,
            ReconcileConfig::SECRET_KEY_ID,
            ReconcileConfig::SAMPLE,
            ReconcileConfig::FIX,
        ])
    );
    assert_eq!(
        env_names("DeployCheckFunction"),
        set(&[
            DeployCheckConfig::WEBHOOK,
            DeployCheckConfig::SYNC,
            DeployCheckConfig::API,
        ])
    );
}

/// The pre-traffic hook is told each function's version this deploy published (SAM's
/// `!Ref <Function>.Version`, a version ARN, which `deploy_check::Target::parse` reads), and
/// every deployed function runs it. It has no local-stack twin: CodeDeploy exists only in AWS.
#[test]
fn the_deploy_check_hook_gets_the_new_version_of_each_function_it_checks() {
    let variables = &resource("DeployCheckFunction")["Environment"]["Variables"];
    for (name, function) in [
        (DeployCheckConfig::WEBHOOK, "WebhookFunction"),
        (DeployCheckConfig::SYNC, "SyncFunction"),
        (DeployCheckConfig::API, "ApiFunction"),
    ] {
        assert_eq!(
            variables[name],
            json!({"Ref": format!("{function}.Version")}),
            "{name}"
        );
        assert_eq!(
            resource(function)["DeploymentPreference"]["Hooks"]["PreTraffic"],
            json!({"Ref": "DeployCheckFunction"}),
            "{function}"
        );
    }
    let version = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:clerk-sync-dev-webhook:{}",
        7
    );
    let config = DeployCheckConfig::from_lookup(|_| Some(version.clone())).unwrap();
    assert!(config.targets.iter().all(|t| t.version == "7"));
}

fn local_resources() -> devkit::resources::Resources {
    devkit::resources::Resources {
        names: Names::unique("template"),
        queue_url: "q".into(),
        dead_letter_queue_url: "d".into(),
        webhook_secret_id: "w".into(),
        clerk_secret_key_id: "c".into(),
        dead_letter_queue_arn: "da".into(),
        queue_arn: "qa".into(),
    }
}

#[test]
fn the_local_stack_sets_only_variables_the_template_sets_too() {
    let resources = local_resources();
    for (function, local) in [
        ("WebhookFunction", resources.webhook_env()),
        ("SyncFunction", resources.sync_env()),
        ("ApiFunction", resources.api_env()),
    ] {
        let template = env_names(function);
        for name in local.keys() {
            assert!(template.contains(*name), "{function}: {name} is local-only");
        }
    }
}

#[test]
fn the_local_stacks_outputs_are_the_templates_so_the_smoke_test_reads_either() {
    let template: BTreeSet<String> = TEMPLATE["Outputs"]
        .as_object()
        .expect("the template has outputs")
        .keys()
        .cloned()
        .collect();
    let base = "http://127.0.0.1:3000";
    let local = local_stack::outputs(base, &local_resources(), "http://e");
    for (key, _) in &local {
        assert!(
            template.contains(*key) || *key == local_stack::LOCAL_ENDPOINT_OUTPUT,
            "{key} is a local-only output"
        );
    }
    // What the smoke test reads, and the webhook URL Clerk is given, mean the same on both.
    for key in ["EventLogTableName", "WebhookSecretArn"] {
        assert!(
            local.iter().any(|(k, _)| *k == key),
            "local stack lacks {key}"
        );
    }
    let api = "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}";
    for key in ["WebhookUrl", "ApiBaseUrl", "ApiHealthUrl"] {
        let (_, url) = local.iter().find(|(k, _)| *k == key).expect("a local URL");
        let path = url.strip_prefix(base).expect("on the local gateway");
        assert_eq!(
            TEMPLATE["Outputs"][key]["Value"]["Fn::Sub"],
            format!("{api}{path}"),
            "{key}"
        );
    }
}

#[test]
fn the_local_gateway_answers_cors_as_the_templates_http_api_does() {
    use local_stack::cors;
    let config = &resource("HttpApi")["CorsConfiguration"]["Fn::If"];
    assert_eq!(config[0], "HasAuthorizedParties");
    let on = &config[1];
    assert_eq!(
        on["AllowOrigins"],
        json!({"Fn::Split": [",", {"Ref": "ClerkAuthorizedParties"}]})
    );
    assert_eq!(on["AllowMethods"], json!(cors::ALLOW_METHODS));
    assert_eq!(on["AllowHeaders"], json!(cors::ALLOW_HEADERS));
    assert_eq!(on["ExposeHeaders"], json!(cors::EXPOSE_HEADERS));
    assert_eq!(on["MaxAge"], json!(cors::MAX_AGE_SECONDS));
    assert!(on.get("AllowCredentials").is_none());
    // The same parameter feeds the api's azp check, so CORS and tokens agree on the frontends.
    assert_eq!(
        resource("ApiFunction")["Environment"]["Variables"]["CLERK_AUTHORIZED_PARTIES"],
        json!({"Ref": "ClerkAuthorizedParties"})
    );
}

/// Every `ClerkSync` (EMF) metric an alarm or the dashboard reads, with the dimensions it reads
/// it by: `(name, dimensions)`. Alarms name them as `Namespace`/`MetricName`/`Dimensions`; the
/// dashboard as `["ClerkSync", name, dimension, value, …]` rows and `SEARCH('{ClerkSync,…}
/// MetricName="…"')` expressions.
fn emf_metrics_read() -> Vec<(String, Vec<String>)> {
    fn walk(value: &Value, out: &mut Vec<(String, Vec<String>)>) {
        match value {
            Value::Object(map) => {
                if map.get("Namespace") == Some(&json!("ClerkSync")) {
                    let name = map["MetricName"]
                        .as_str()
                        .expect("a metric name")
                        .to_owned();
                    let dimensions = (map.get("Dimensions").and_then(Value::as_array))
                        .into_iter()
                        .flatten()
                        .map(|d| d["Name"].as_str().expect("a dimension name").to_owned())
                        .collect();
                    out.push((name, dimensions));
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&TEMPLATE["Resources"], &mut out);
    let body = resource("Dashboard")["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("the dashboard body is one Fn::Sub string");
    for row in body.split("[\"ClerkSync\", ").skip(1) {
        // `"Name", "Dim", "value", "Dim", "value", {options}]`
        let fields: Vec<&str> = row
            .split(['{', ']'])
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .filter(|f| !f.is_empty())
            .collect();
        let dimensions = fields[1..]
            .iter()
            .step_by(2)
            .map(|d| d.to_string())
            .collect();
        out.push((fields[0].to_owned(), dimensions));
    }
    for search in body.split("SEARCH('{ClerkSync,").skip(1) {
        let (dimensions, rest) = search.split_once('}').expect("a SEARCH schema");
        let name = rest
            .split("MetricName=\\\"")
            .nth(1)
            .and_then(|r| r.split("\\\"").next())
            .expect("a SEARCH names its metric");
        out.push((
            name.to_owned(),
            dimensions.split(',').map(str::to_owned).collect(),
        ));
    }
    out
}

#[test]
fn every_emf_metric_the_alarms_and_dashboard_read_is_one_the_functions_emit() {
    use clerk_sync::telemetry::metrics::COLD_START;
    let emitted: BTreeSet<&str> = (webhook::measure::METRICS.iter())
        .chain(sync::measure::METRICS)
        .chain(api::measure::METRICS)
        .chain(reconcile::measure::METRICS)
        .copied()
        .chain([COLD_START])
        .collect();
    let dimensions = set(&[
        "Function", "Version", "Code", "Route", "Status", "Reason", "Outcome",
    ]);
    let read = emf_metrics_read();
    assert!(read.len() >= 15, "{read:?}");
    for (name, by) in &read {
        assert!(
            emitted.contains(name.as_str()),
            "{name} is read but never emitted"
        );
        assert!(
            by.first().map(String::as_str) == Some("Function") || by.is_empty(),
            "{name} by {by:?}"
        );
        for d in by {
            assert!(dimensions.contains(d), "{name} by unknown dimension {d}");
        }
    }
    // The canary's alarms read the per-version series.
    assert!(
        read.iter()
            .any(|(n, by)| n == "MessagesFailed" && by.contains(&"Version".to_owned())),
        "{read:?}"
    );
}
