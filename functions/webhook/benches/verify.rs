//! Verify-and-prepare of a ~4 KiB `user.updated` webhook: header parsing, Svix signature,
//! envelope parse and the allow-list check — everything the webhook does before `SendMessage`.

use std::hint::black_box;

use clerk_sync::adapters::svix::{WebhookKeys, verify_and_prepare};
use clerk_sync::domain::webhook::EventTypeFilter;
use criterion::{Criterion, criterion_group, criterion_main};
use devkit::signing::sign_now;
use secrecy::SecretString;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const RETIRING: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The `user.updated` fixture with public metadata grown until the body is ~4 KiB.
fn four_kib_user_updated() -> String {
    let mut event: serde_json::Value =
        serde_json::from_str(&devkit::fixture("user.updated")).unwrap();
    let mut i = 0;
    while serde_json::to_string_pretty(&event).unwrap().len() < 4096 {
        event["data"]["public_metadata"][format!("preference_{i}")] =
            format!("value-{i}-lorem-ipsum").into();
        i += 1;
    }
    serde_json::to_string_pretty(&event).unwrap()
}

fn bench(c: &mut Criterion) {
    let body = four_kib_user_updated();
    assert!(
        (4096..4400).contains(&body.len()),
        "body is {} bytes",
        body.len()
    );
    let headers = sign_now(SECRET, &body);
    let filter = EventTypeFilter::default();
    let one = WebhookKeys::parse(&SecretString::from(SECRET.to_owned())).unwrap();
    // During a rotation the matching secret may be the second one tried.
    let two = WebhookKeys::parse(&SecretString::from(format!("{RETIRING} {SECRET}"))).unwrap();

    let mut group = c.benchmark_group("webhook");
    for (name, keys) in [
        ("verify_and_prepare_4kib", &one),
        ("verify_and_prepare_4kib_second_of_two_secrets", &two),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let event =
                    verify_and_prepare(black_box(&headers), black_box(body.as_bytes()), keys)
                        .unwrap();
                assert!(filter.allows(&event.event_type));
                black_box(event)
            })
        });
    }
    // The reference: the bare svix crate verifying the same request (no header parsing of our
    // own, no envelope, no allow-list), measured in the same run.
    let bare = svix::webhooks::Webhook::new(SECRET).unwrap();
    group.bench_function("reference_bare_svix_verify_4kib", |b| {
        b.iter(|| {
            bare.verify(black_box(body.as_bytes()), black_box(&headers))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
