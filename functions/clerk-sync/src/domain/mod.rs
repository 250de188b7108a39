//! IO-free domain: what a Clerk webhook is, how it is verified, and what we queue.

pub mod webhook;
