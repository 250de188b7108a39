//! Sending deliveries the way Svix does: signed at each attempt, a non-2xx answer or a connection
//! error retried under the same message id after a backoff, `concurrency` deliveries in flight.
//!
//! Svix's own schedule waits 5 s, 5 min, 30 min, … between attempts; a load run compresses it
//! (`Retry`) but keeps its rule: only a 2xx ends a delivery.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::deliveries::Delivery;

/// When to try a delivery again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// The wait after the first failed attempt; doubled after each further one.
    pub first: Duration,
    pub max: Duration,
    /// A delivery not accepted this long after its first attempt is given up (Svix would go on
    /// for days; a run must end).
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
            give_up_after: Duration::from_secs(300),
        }
    }
}

impl Retry {
    fn wait_after(&self, failed_attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_attempts.saturating_sub(1).min(16));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    Status(u16),
    /// No HTTP answer: refused, reset, timed out.
    ConnectionError,
}

/// What sending a run's deliveries saw.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// Every attempt's latency, whatever its answer.
    pub latencies: Vec<Duration>,
    /// Attempts by answer.
    pub answers: BTreeMap<Answer, usize>,
    /// Deliveries answered 2xx (each exactly once: a delivery stops at its 2xx).
    pub accepted: usize,
    /// Svix ids of deliveries given up without a 2xx.
    pub given_up: Vec<String>,
    /// From the first attempt to the last 2xx.
    pub elapsed_to_last_accept: Duration,
}

impl Sent {
    pub fn attempts(&self) -> usize {
        self.answers.values().sum()
    }

    /// Attempts answered other than 2xx (connection errors included).
    pub fn failed_attempts(&self) -> usize {
        self.answers
            .iter()
            .filter(|(a, _)| !matches!(a, Answer::Status(200..=299)))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Posts deliveries to a webhook URL.
#[derive(Clone)]
pub struct Sender {
    pub http: reqwest::Client,
    /// `…/webhooks/clerk`.
    pub url: String,
    /// The `whsec_…` secret to sign with.
    pub secret: String,
    pub concurrency: usize,
    pub retry: Retry,
}

struct Outcome {
    latencies: Vec<Duration>,
    answers: Vec<Answer>,
    accepted_at: Option<Instant>,
    svix_id: String,
}

impl Sender {
    /// A sender with a client that gives up an attempt after 30 s (API Gateway's own limit).
    pub fn new(url: String, secret: String, concurrency: usize) -> Self {
        devkit::install_crypto_provider();
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client builds"),
            url,
            secret,
            concurrency,
            retry: Retry::default(),
        }
    }

    /// Sends every delivery until it is accepted or given up.
    pub async fn send_all(&self, deliveries: Vec<Delivery>) -> Sent {
        let started = Instant::now();
        let outcomes: Vec<Outcome> = futures_util::stream::iter(deliveries)
            .map(|d| self.deliver(d))
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let mut sent = Sent::default();
        let mut last_accept = started;
        for outcome in outcomes {
            sent.latencies.extend(outcome.latencies);
            for answer in outcome.answers {
                *sent.answers.entry(answer).or_default() += 1;
            }
            match outcome.accepted_at {
                Some(at) => {
                    sent.accepted += 1;
                    last_accept = last_accept.max(at);
                }
                None => sent.given_up.push(outcome.svix_id),
            }
        }
        sent.elapsed_to_last_accept = last_accept - started;
        sent
    }

    async fn deliver(&self, delivery: Delivery) -> Outcome {
        let first = Instant::now();
        let mut outcome = Outcome {
            latencies: Vec::new(),
            answers: Vec::new(),
            accepted_at: None,
            svix_id: delivery.svix_id.clone(),
        };
        loop {
            let headers = devkit::signing::sign(
                &self.secret,
                &delivery.svix_id,
                devkit::signing::now(),
                &delivery.body,
            );
            let at = Instant::now();
            let answer = match self
                .http
                .post(&self.url)
                .headers(headers)
                .header("content-type", "application/json")
                .body(delivery.body.clone())
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read the answer in full, as Svix does, before the attempt counts as done.
                    let _ = response.bytes().await;
                    Answer::Status(status)
                }
                Err(_) => Answer::ConnectionError,
            };
            let done = Instant::now();
            outcome.latencies.push(done - at);
            outcome.answers.push(answer);
            if matches!(answer, Answer::Status(200..=299)) {
                outcome.accepted_at = Some(done);
                return outcome;
            }
            if first.elapsed() >= self.retry.give_up_after {
                return outcome;
            }
            let failed = outcome.answers.len() as u32;
            tokio::time::sleep(self.retry.wait_after(failed)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum() {
        let retry = Retry::default();
        let waits: Vec<_> = (1..=7).map(|n| retry.wait_after(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn connection_errors_and_non_2xx_answers_count_as_failed_attempts() {
        let mut sent = Sent::default();
        sent.answers.insert(Answer::Status(202), 5);
        sent.answers.insert(Answer::Status(503), 2);
        sent.answers.insert(Answer::ConnectionError, 1);
        assert_eq!(sent.attempts(), 8);
        assert_eq!(sent.failed_attempts(), 3);
    }
}
