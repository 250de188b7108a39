//! Token verification: header, RS256 signature (aws-lc-rs) and claims of a Clerk-shaped session
//! token, with the key already in hand (PEM, or a warm JWKS cache).

use std::hint::black_box;

use clerk_sync::domain::auth::{AdminClaim, BearerToken, TokenPolicy, VerificationKeys, verify};
use criterion::{Criterion, criterion_group, criterion_main};
use devkit::tokens::{DevKeys, LOCAL_AZP, LOCAL_ISSUER};

fn bench(c: &mut Criterion) {
    let keys = DevKeys::generate();
    let pinned = VerificationKeys::from_pem(&keys.public_pem).unwrap();
    let jwks = VerificationKeys::from_jwks(keys.jwks.to_string().as_bytes()).unwrap();
    let policy = TokenPolicy {
        issuer: Some(LOCAL_ISSUER.to_owned()),
        authorized_parties: Some(vec![LOCAL_AZP.to_owned()]),
        leeway_seconds: 5,
        admin: Some(AdminClaim::parse("o.rol=admin").unwrap()),
        refuse_pending_sessions: true,
    };
    let mut claims = keys.claims("user_35kQ7zvT0cWnHq1d2xXy9RbLmAa");
    claims["o"] =
        serde_json::json!({"id": "org_1", "slg": "acme", "rol": "admin", "per": "read,write"});
    claims["exp"] = (devkit::signing::now() + 3600).into();
    let token = keys.sign(&claims);
    let now = devkit::signing::now();

    let mut group = c.benchmark_group("api");
    for (name, key_set) in [("verify_token_pem", &pinned), ("verify_token_jwks", &jwks)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let bearer =
                    BearerToken::from_authorization(Some(black_box(&format!("Bearer {token}"))))
                        .unwrap();
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
