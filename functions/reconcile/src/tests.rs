use std::sync::{Arc, Mutex};

use clerk_sync_ops::reconcile::{Drift, Fixed};

use super::*;

fn env(vars: &[(&str, &str)]) -> Result<ReconcileConfig, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ReconcileConfig::from(&Env::from_fn(move |name: &str| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }))
}

const BASE: &[(&str, &str)] = &[
    ("USERS_TABLE", "users"),
    ("EVENT_LOG_TABLE", "log"),
    ("CLERK_SECRET_KEY_ID", "arn:secret"),
];

fn config_with(extra: &[(&str, &str)]) -> ReconcileConfig {
    env(&[BASE, extra].concat()).unwrap()
}

fn schedule_event() -> Value {
    json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-12-02T03:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/stack-reconcile"],
        "detail": {}
    })
}

#[test]
fn without_budget_or_fix_variables_a_run_samples_500_users_and_only_reports() {
    let config = config_with(&[]);
    assert_eq!(config.sample, Some(500));
    assert!(!config.fix);
    assert_eq!(config.clerk_api_url, "https://api.clerk.com/v1");
    assert_eq!(config.store.event_log_retention_days, 30);
}

#[test]
fn the_budget_is_a_positive_number_or_all_and_anything_else_is_refused_by_name() {
    assert_eq!(config_with(&[("RECONCILE_SAMPLE", "25")]).sample, Some(25));
    assert_eq!(config_with(&[("RECONCILE_SAMPLE", "all")]).sample, None);
    for bad in ["0", "-3", "lots"] {
        let e = env(&[BASE, &[("RECONCILE_SAMPLE", bad)]].concat()).unwrap_err();
        assert!(e.to_string().contains("RECONCILE_SAMPLE"), "{e}");
    }
    let e = env(&[BASE, &[("RECONCILE_FIX", "yes please")]].concat()).unwrap_err();
    assert!(e.to_string().contains("RECONCILE_FIX"), "{e}");
    assert!(config_with(&[("RECONCILE_FIX", "true")]).fix);
}

#[test]
fn the_secret_key_id_and_the_tables_are_required() {
    for missing in ["USERS_TABLE", "EVENT_LOG_TABLE", "CLERK_SECRET_KEY_ID"] {
        let vars: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        let e = env(&vars).unwrap_err();
        assert!(e.to_string().contains(missing), "{e}");
    }
}

#[test]
fn a_schedule_event_runs_the_configured_budget_and_fix_without_progress_bars() {
    let config = config_with(&[("RECONCILE_SAMPLE", "40"), ("RECONCILE_FIX", "true")]);
    let o = options(&config, &schedule_event()).unwrap();
    assert_eq!((o.sample, o.fix, o.progress), (Some(40), true, false));
    let o = options(&config_with(&[]), &schedule_event()).unwrap();
    assert_eq!((o.sample, o.fix), (Some(500), false));
    // An empty manual invocation is a scheduled one.
    let o = options(&config_with(&[("RECONCILE_SAMPLE", "all")]), &json!({})).unwrap();
    assert_eq!((o.sample, o.fix), (None, false));
}

#[test]
fn a_manual_invocation_may_change_the_budget_and_turn_fix_off_but_never_on() {
    let fixing = config_with(&[("RECONCILE_FIX", "true")]);
    let o = options(&fixing, &json!({"sample": 7, "fix": false})).unwrap();
    assert_eq!((o.sample, o.fix), (Some(7), false));
    let o = options(&fixing, &json!({"detail": {"sample": "all"}})).unwrap();
    assert_eq!((o.sample, o.fix), (None, true));
    let reporting = config_with(&[]);
    let e = options(&reporting, &json!({"fix": true})).unwrap_err();
    assert!(e.contains("ReconcileFix"), "{e}");
    assert!(options(&reporting, &json!({"sample": 0})).is_err());
    assert!(options(&reporting, &json!({"fix": "true"})).is_err());
}

fn captured() -> (Metrics, Arc<Mutex<Vec<Value>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let metrics = Metrics::new(
        "stack-reconcile",
        "$LATEST",
        Arc::new(move |line: &str| {
            sink.lock()
                .unwrap()
                .push(serde_json::from_str(line).unwrap())
        }),
    );
    (metrics, lines)
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user_{i}")).collect()
}

#[test]
fn a_run_emits_one_document_counting_each_drift_class_and_the_repairs() {
    let (metrics, lines) = captured();
    let report = Report {
        clerk_users: 10,
        table_users: 11,
        sampled: None,
        drift: Drift {
            missing: ids(1),
            older: ids(2),
            absent_from_clerk: ids(3),
            tombstoned_but_in_clerk: ids(4),
        },
        fixed: Some(Fixed {
            written: 5,
            unchanged: 0,
            failed: 1,
        }),
        ..Report::default()
    };
    let mut document = metrics.document();
    measure::run(&mut document, &report);
    document.emit();
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 1);
    let doc = &lines[0];
    for (name, value) in [
        ("Checked", 13),
        ("DriftMissing", 1),
        ("DriftOlder", 2),
        ("DriftAbsentFromClerk", 3),
        ("DriftTombstoneInClerk", 4),
        ("DriftFound", 6),
        ("Repaired", 5),
        ("RepairFailed", 1),
    ] {
        assert_eq!(doc[name].as_f64(), Some(value as f64), "{name} in {doc}");
    }
    assert_eq!(doc["Function"], json!("stack-reconcile"));
    // No user id in the metrics.
    assert!(!doc.to_string().contains("user_0"), "{doc}");
}

#[test]
fn a_clean_sampled_report_only_run_counts_zeros_and_leaves_out_what_a_sample_cannot_see() {
    let (metrics, lines) = captured();
    let report = Report {
        clerk_users: 500,
        table_users: 9000,
        sampled: Some(500),
        ..Report::default()
    };
    let mut document = metrics.document();
    measure::run(&mut document, &report);
    document.emit();
    let doc = &lines.lock().unwrap()[0];
    assert_eq!(doc["Checked"].as_f64(), Some(500.0));
    assert_eq!(doc["DriftFound"].as_f64(), Some(0.0));
    assert_eq!(doc["DriftOlder"].as_f64(), Some(0.0));
    assert!(doc.get("DriftMissing").is_none(), "{doc}");
    assert!(doc.get("Repaired").is_none(), "{doc}");
    let answer = summary(&report);
    assert_eq!(answer["checked"], json!(500));
    assert_eq!(answer["missing"], Value::Null);
}
