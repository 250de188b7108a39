//! Rounds of timed iterations, and their min/median/max: the one way every implementation here
//! is measured, in Rust and (the same plan, read from the inputs file) in the peer scripts.

use std::hint::black_box;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What is being verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// A signed ~4 KiB Svix delivery, verified and parsed.
    Webhook,
    /// A Clerk session token, RS256 signature and claims.
    Token,
}

impl Group {
    pub fn label(self) -> &'static str {
        match self {
            Group::Webhook => "webhook",
            Group::Token => "token",
        }
    }
}

/// How much to run: `rounds` timed rounds of `iterations` calls each, after `warmup_rounds`
/// untimed ones (V8's and CPython's caches, the CPU's frequency, our own branch predictors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub rounds: usize,
    pub warmup_rounds: usize,
    pub webhook_iterations: usize,
    pub token_iterations: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            rounds: 15,
            warmup_rounds: 3,
            webhook_iterations: 2000,
            token_iterations: 400,
        }
    }
}

impl Plan {
    pub fn iterations(&self, group: Group) -> usize {
        match group {
            Group::Webhook => self.webhook_iterations,
            Group::Token => self.token_iterations,
        }
    }
}

/// Runs `op` for the plan's warm-up rounds, then times `rounds` rounds of `iterations` calls and
/// returns each round's time per call, in microseconds.
pub fn per_op_micros<T>(plan: &Plan, iterations: usize, mut op: impl FnMut() -> T) -> Vec<f64> {
    let iterations = iterations.max(1);
    for _ in 0..plan.warmup_rounds * iterations {
        black_box(op());
    }
    (0..plan.rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(op());
            }
            start.elapsed().as_secs_f64() * 1e6 / iterations as f64
        })
        .collect()
}

/// The spread of per-call times over the rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no samples (or a NaN among them); the median of an even count is the mean of
    /// the middle two.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_sample() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 3.0, 5.0));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = Summary::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 3.0, 10.0));
    }

    #[test]
    fn no_samples_or_a_nan_have_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn a_measurement_has_one_time_per_round_after_the_warmup_rounds() {
        let plan = Plan {
            rounds: 4,
            warmup_rounds: 2,
            ..Plan::default()
        };
        let mut calls = 0;
        let times = per_op_micros(&plan, 10, || {
            calls += 1;
            std::hint::black_box((0..100).sum::<u64>())
        });
        assert_eq!(times.len(), 4);
        assert!(times.iter().all(|t| t.is_finite() && *t >= 0.0));
        assert_eq!(calls, (2 + 4) * 10);
    }

    #[test]
    fn each_group_takes_its_own_iteration_count() {
        let plan = Plan::default();
        assert_eq!(plan.iterations(Group::Webhook), plan.webhook_iterations);
        assert_eq!(plan.iterations(Group::Token), plan.token_iterations);
    }
}
