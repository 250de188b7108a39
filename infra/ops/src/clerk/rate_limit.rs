//! A client-side rate limit shared by every request of a run: requests are spaced evenly, and a
//! 429's `Retry-After` pauses all of them, not just the one that was refused.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// At most `per_second` requests a second (at least one a minute).
    pub fn per_second(per_second: f64) -> Self {
        let per_second = per_second.clamp(1.0 / 60.0, 10_000.0);
        Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's turn.
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().expect("not poisoned");
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// No request goes out for `pause` from now (Clerk said `Retry-After`).
    pub fn pause(&self, pause: Duration) {
        let mut next = self.next.lock().expect("not poisoned");
        *next = (*next).max(Instant::now() + pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_spaced_by_the_rate_and_a_pause_holds_them_all() {
        let limiter = RateLimiter::per_second(100.0);
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        let spaced = start.elapsed();
        assert!(spaced >= Duration::from_millis(50), "{spaced:?}");
        limiter.pause(Duration::from_millis(300));
        limiter.acquire().await;
        assert!(
            start.elapsed() >= spaced + Duration::from_millis(290),
            "{:?}",
            start.elapsed()
        );
    }
}
