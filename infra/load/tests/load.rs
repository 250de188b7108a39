//! The load test at a reduced size, inside `make test`: shuffled, partly duplicated deliveries
//! through the local stack converge on the model with nothing lost; and the oracle does catch a
//! lost or wrong record.

use aws_sdk_dynamodb::types::AttributeValue;
use load::Options;
use load::harness::{Harness, Setup};
use load::model::{Model, Size};
use load::oracle::Oracle;

/// Small enough for CI (a few seconds), big enough that users get several events each, in any
/// order, and some of them twice.
pub const REDUCED: Size = Size {
    users: 40,
    deliveries: 400,
    duplicate_percent: 10,
    delete_percent: 20,
    seed: 42,
};

fn size() -> Size {
    REDUCED.or_from_env()
}

fn options() -> Options {
    Options {
        size: size(),
        concurrency: 16,
        retry: Default::default(),
        converge_timeout: size().patience(),
    }
}

#[tokio::test]
async fn shuffled_and_duplicated_deliveries_converge_on_the_model_with_nothing_lost() {
    let harness = Harness::start(Setup::default()).await.unwrap();
    let target = &harness.target;
    let outcome = load::run(target, &options()).await.unwrap();
    println!("{}", outcome.report);
    assert!(outcome.verdict.converged(), "{}", outcome.verdict);
    assert_eq!(outcome.accepted, size().deliveries);
    assert_eq!(
        outcome.report.attempts,
        size().deliveries,
        "no fault, so every delivery is accepted at its first attempt"
    );
    harness.stop().await;
}

#[tokio::test]
async fn the_oracle_counts_a_record_removed_or_rolled_back_behind_the_pipelines_back() {
    let harness = Harness::start(Setup::default()).await.unwrap();
    let target = &harness.target;
    let outcome = load::run(target, &options()).await.unwrap();
    assert!(outcome.verdict.converged(), "{}", outcome.verdict);

    let model = Model::generate(size());
    let finals = model.finals();
    let mut live = finals
        .iter()
        .filter(|(_, f)| matches!(f, load::model::Final::Live { .. }))
        .map(|(id, _)| *id);
    let (removed, rolled_back) = (live.next().unwrap(), live.next().unwrap());
    let dynamodb = aws_sdk_dynamodb::Client::new(&target.sdk);
    let table = &target.tables.users_table;
    dynamodb
        .delete_item()
        .table_name(table)
        .key("id", AttributeValue::S(removed.to_owned()))
        .send()
        .await
        .unwrap();
    dynamodb
        .update_item()
        .table_name(table)
        .key("id", AttributeValue::S(rolled_back.to_owned()))
        .update_expression("SET first_name = :n")
        .expression_attribute_values(":n", AttributeValue::S("Tampered".into()))
        .send()
        .await
        .unwrap();

    let verdict = Oracle::new(&target.sdk, target.tables.clone())
        .judge(&model)
        .await
        .unwrap();
    assert!(!verdict.converged());
    assert_eq!(verdict.lost, [removed.to_owned()]);
    assert_eq!(verdict.wrong.len(), 1, "{verdict}");
    assert_eq!(verdict.wrong[0].0, rolled_back);
    harness.stop().await;
}
