//! Clerk's Backend API as the operations need it: the user list (paged by cursor), the count,
//! one user by id; paced by a client-side [`RateLimiter`], with 429s and 5xx retried.

mod client;
mod rate_limit;

pub use client::{API_VERSION, ClerkClient, ClerkFailure, MAX_PAGE, Page, Retry, Unparsed};
pub use rate_limit::RateLimiter;
