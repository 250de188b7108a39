//! Verify-and-prepare of a ~4 KiB `user.updated` webhook: header parsing, Svix signature,
//! envelope parse and the allow-list check — everything the webhook does before `SendMessage`.
//! The delivery comes from `devkit::bench_inputs`, as in `make bench-peers`.

use std::hint::black_box;

use clerk_sync::adapters::svix::{WebhookKeys, verify_and_prepare};
use clerk_sync::domain::webhook::EventTypeFilter;
use criterion::{Criterion, criterion_group, criterion_main};
use devkit::bench_inputs::WebhookInput;
use secrecy::SecretString;

fn bench(c: &mut Criterion) {
    let input = WebhookInput::signed_now();
    let body = input.body.as_bytes();
    let headers = input.headers();
    let filter = EventTypeFilter::default();
    let one = WebhookKeys::parse(&SecretString::from(input.secret.clone())).unwrap();
    // During a rotation the matching secret may be the second one tried.
    let two = WebhookKeys::parse(&SecretString::from(format!(
        "{} {}",
        input.retiring_secret, input.secret
    )))
    .unwrap();

    let mut group = c.benchmark_group("webhook");
    for (name, keys) in [
        ("verify_and_prepare_4kib", &one),
        ("verify_and_prepare_4kib_second_of_two_secrets", &two),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let event = verify_and_prepare(black_box(&headers), black_box(body), keys).unwrap();
                assert!(filter.allows(&event.event_type));
                black_box(event)
            })
        });
    }
    // The reference: the bare svix crate verifying the same request (no header parsing of our
    // own, no envelope, no allow-list), measured in the same run.
    let bare = svix::webhooks::Webhook::new(&input.secret).unwrap();
    group.bench_function("reference_bare_svix_verify_4kib", |b| {
        b.iter(|| bare.verify(black_box(body), black_box(&headers)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
