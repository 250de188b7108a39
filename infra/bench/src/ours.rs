//! The Rust side, measured in this process: ours (the webhook's and the api's code paths, as the
//! criterion benches run them) and the bare svix crate.

use clerk_sync::adapters::svix::{WebhookKeys, verify_and_prepare};
use clerk_sync::domain::auth::{BearerToken, VerificationKeys, verify};
use clerk_sync::domain::webhook::EventTypeFilter;
use devkit::bench_inputs::BenchInputs;
use secrecy::SecretString;

use crate::measure::{Group, Plan, per_op_micros};
use crate::report::Measurement;

/// What every Rust measurement's runtime column says.
pub const RUNTIME: &str = "Rust (this binary)";

/// A named operation that succeeds on the inputs; checked once before it is timed.
struct Case {
    group: Group,
    name: &'static str,
    baseline: bool,
    op: Box<dyn FnMut() -> bool>,
}

fn cases(inputs: &BenchInputs, now: i64) -> anyhow::Result<Vec<Case>> {
    let webhook = inputs.webhook.clone();
    let headers = webhook.headers();
    let keys = WebhookKeys::parse(&SecretString::from(webhook.secret.clone()))
        .map_err(|e| anyhow::anyhow!("the benchmark secret: {e}"))?;
    let filter = EventTypeFilter::default();
    let ours_webhook = {
        let (headers, body) = (headers.clone(), webhook.body.clone());
        move || {
            verify_and_prepare(&headers, body.as_bytes(), &keys)
                .is_ok_and(|event| filter.allows(&event.event_type))
        }
    };
    let bare = svix::webhooks::Webhook::new(&webhook.secret)?;
    let bare_svix = {
        let body = webhook.body.clone();
        move || {
            bare.verify(body.as_bytes(), &headers).is_ok()
                && serde_json::from_str::<serde_json::Value>(&body)
                    .is_ok_and(|event| event["type"] == "user.updated")
        }
    };

    let token = inputs.token.clone();
    let key = VerificationKeys::from_pem(&token.public_pem)
        .map_err(|e| anyhow::anyhow!("the benchmark key: {e}"))?;
    let policy = token.policy();
    let authorization = token.authorization();
    let ours_token = move || {
        BearerToken::from_authorization(Some(&authorization))
            .and_then(|bearer| verify(&bearer, &key, &policy, now))
            .is_ok_and(|principal| principal.is_admin)
    };

    Ok(vec![
        Case {
            group: Group::Webhook,
            name: "ours: verify_and_prepare + allow-list (webhook crate)",
            baseline: true,
            op: Box::new(ours_webhook),
        },
        Case {
            group: Group::Webhook,
            name: "svix crate: Webhook::verify + serde_json::Value",
            baseline: false,
            op: Box::new(bare_svix),
        },
        Case {
            group: Group::Token,
            name: "ours: BearerToken + verify, PEM key (api crate)",
            baseline: true,
            op: Box::new(ours_token),
        },
    ])
}

/// Checks every Rust case once on `inputs` at `now` (Unix seconds), then measures each.
pub fn measure(inputs: &BenchInputs, plan: &Plan, now: i64) -> anyhow::Result<Vec<Measurement>> {
    let mut cases = cases(inputs, now)?;
    for case in &mut cases {
        anyhow::ensure!(
            (case.op)(),
            "{} refused the benchmark input (a delivery older than 5 minutes?)",
            case.name
        );
    }
    Ok(cases
        .into_iter()
        .map(|mut case| Measurement {
            group: case.group,
            name: case.name.to_owned(),
            runtime: RUNTIME.to_owned(),
            baseline: case.baseline,
            rounds_us: per_op_micros(plan, plan.iterations(case.group), || (case.op)()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rust_case_accepts_fresh_inputs_and_yields_one_time_per_round() {
        let plan = Plan {
            rounds: 2,
            warmup_rounds: 0,
            webhook_iterations: 1,
            token_iterations: 1,
        };
        let measurements =
            measure(&BenchInputs::generate(), &plan, devkit::signing::now()).unwrap();
        assert_eq!(measurements.len(), 3);
        assert!(measurements.iter().all(|m| m.rounds_us.len() == 2));
        assert_eq!(measurements.iter().filter(|m| m.baseline).count(), 2);
    }

    #[test]
    fn a_delivery_past_the_tolerance_is_refused_before_anything_is_timed() {
        let mut inputs = BenchInputs::generate();
        inputs.webhook.svix_timestamp -= 3600;
        let stale = devkit::signing::sign(
            &inputs.webhook.secret,
            &inputs.webhook.svix_id,
            inputs.webhook.svix_timestamp,
            &inputs.webhook.body,
        );
        inputs.webhook.svix_signature = stale["svix-signature"].to_str().unwrap().to_owned();
        let error = measure(&inputs, &Plan::default(), devkit::signing::now()).unwrap_err();
        assert!(error.to_string().contains("refused"), "{error}");
    }
}
