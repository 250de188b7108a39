//! clerk-sync-ops against the local AWS emulator (real SDK calls) and the local Clerk.

mod backfill;
mod binary;
mod clerk;
mod inspect;
mod reconcile;
mod redrive;
mod support;
