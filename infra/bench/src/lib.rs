//! `make bench-peers`: our webhook verify-and-prepare and our session-token verification measured
//! against their peers (the bare svix crate, Node's svix, @clerk/backend and jose, Python's svix
//! and PyJWT) in one run, on the same inputs, and reported as one table.

pub mod measure;
pub mod ours;
pub mod peers;
pub mod report;
