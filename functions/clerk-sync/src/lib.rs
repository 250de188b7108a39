//! Ports, AWS adapters, configuration and the HTTP edge shared by the webhook, sync and api
//! functions. The domain they speak is its own crate, re-exported here as [`domain`].

pub use clerk_sync_domain as domain;

pub mod adapters;
pub mod clock;
pub mod config;
pub mod edge;
pub mod ports;
pub mod secret_cache;
pub mod telemetry;
