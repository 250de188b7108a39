//! `clerk-sync-ops`: the operations of a running stack (deployed, or `make local`): backfill from
//! Clerk's user list, reconcile the table with Clerk, redrive the dead-letter queue, inspect the
//! event log, resync single users. Every write goes through the sync function's own conditional
//! write ([`clerk_sync::ports::UserStore::apply`]), so the ordering rules are stated once.

pub mod aws;
pub mod backfill;
pub mod checkpoint;
pub mod clerk;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cpu;
pub mod exit;
pub mod inspect;
pub mod progress;
pub mod reconcile;
pub mod redrive;
pub mod resync;
#[cfg(feature = "cli")]
pub mod run;
pub mod target;
pub mod write;
