//! The api function against DynamoDB and SQS in the local emulator, with a fake Clerk (JWKS and
//! Backend API) served by wiremock: every token attack, authorisation, lazy sync, health. One test
//! binary (each links the whole AWS SDK), one module per feature.

mod clerk_secret_key;
mod health;
mod lazy_sync;
mod openapi;
mod reads;
mod routes;
mod signing_keys;
mod support;
mod tokens;
