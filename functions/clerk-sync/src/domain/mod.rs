//! IO-free domain: what a Clerk webhook is, how it is verified, what we queue, and which user
//! write wins.

pub mod user;
pub mod webhook;
