//! The built `sync` binary as Lambda runs it: configured by nothing but its environment
//! variables (the template's names), polling a local Lambda Runtime API.

use aws_sdk_dynamodb::types::AttributeValue;
use devkit::runtime_api::{run_unserved, start_provisioned};

const BINARY: &str = env!("CARGO_BIN_EXE_sync");

#[tokio::test]
async fn the_binary_applies_an_sqs_batch_from_the_runtime_api_and_reports_no_failures() {
    let (sdk, resources, mut bootstrap) = start_provisioned("sync", BINARY, |r| r.sync_env())
        .await
        .expect("initialised");

    let body = devkit::fixture("user.created");
    let message = devkit::sqs_event::message("m-1", "msg_bin_1", &body, 1);
    let event = serde_json::to_value(devkit::sqs_event::event(vec![message])).unwrap();
    let response = bootstrap
        .invoke(event)
        .await
        .unwrap()
        .expect("no function error");

    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([]),
        "{response}"
    );
    let stored = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&resources.names.users_table)
        .key(
            "id",
            AttributeValue::S("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the user is stored");
    assert_eq!(
        stored["last_svix_id"],
        AttributeValue::S("msg_bin_1".into())
    );
}

#[test]
fn the_binary_without_its_users_table_stops_before_serving_and_names_the_variable() {
    let output = run_unserved(BINARY, &[("EVENT_LOG_TABLE", "log")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("USERS_TABLE"), "{stderr}");
}
