//! Token verification: header, RS256 signature (aws-lc-rs) and claims of a Clerk-shaped session
//! token, with the key already in hand (PEM, or a warm JWKS cache). The token comes from
//! `devkit::bench_inputs`, as in `make bench-peers`.

use std::hint::black_box;

use clerk_sync::domain::auth::{BearerToken, VerificationKeys, verify};
use criterion::{Criterion, criterion_group, criterion_main};
use devkit::bench_inputs::TokenInput;

fn bench(c: &mut Criterion) {
    let input = TokenInput::minted_now();
    let pinned = VerificationKeys::from_pem(&input.public_pem).unwrap();
    let jwks = VerificationKeys::from_jwks(input.jwks.to_string().as_bytes()).unwrap();
    let policy = input.policy();
    let authorization = input.authorization();
    let now = devkit::signing::now();

    let mut group = c.benchmark_group("api");
    for (name, key_set) in [("verify_token_pem", &pinned), ("verify_token_jwks", &jwks)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let bearer =
                    BearerToken::from_authorization(Some(black_box(&authorization))).unwrap();
                let principal = verify(&bearer, key_set, &policy, now).unwrap();
                assert!(principal.is_admin);
                principal
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
