//! Domain, ports and AWS adapters shared by the webhook, sync and api functions.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod edge;
pub mod ports;
pub mod secret_cache;
pub mod telemetry;
