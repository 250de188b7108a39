//! Fuzzing on stable: a proptest strategy run for a case count or a time budget, whichever ends
//! first, with proptest's shrinking and persisted failure seeds.
//!
//! `cargo-fuzz` needs nightly; these targets are ordinary `#[test]`s, so `make test` runs each for
//! a few hundred cases and `make fuzz` for longer:
//! - `FUZZ_CASES` (or proptest's own `PROPTEST_CASES`): how many cases; unlimited when only a time
//!   budget is given.
//! - `FUZZ_SECONDS`: stop starting new batches of cases once this much time has passed.
//!
//! A failure is shrunk to a minimal input and its seed appended to `<target>.proptest-regressions`
//! next to the target's source (commit it: every later run replays it first).

use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseResult, TestError, TestRunner,
};

/// Most cases per batch: a time budget is checked between batches.
const BATCH: u32 = 512;

/// How long a target runs: cases and/or a deadline.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub cases: Option<u64>,
    pub time: Option<Duration>,
}

impl Budget {
    /// From `FUZZ_CASES` / `PROPTEST_CASES` and `FUZZ_SECONDS`; `default_cases` when neither
    /// bound is set.
    pub fn from_env(default_cases: u64) -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &str| {
            var(name).map(|v| {
                v.parse::<f64>()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
            })
        };
        let cases = number("FUZZ_CASES")
            .or_else(|| number("PROPTEST_CASES"))
            .map(|n| n as u64);
        let time = number("FUZZ_SECONDS").map(Duration::from_secs_f64);
        match (cases, time) {
            (None, None) => Self {
                cases: Some(default_cases),
                time: None,
            },
            _ => Self { cases, time },
        }
    }
}

/// What a finished target ran.
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    pub cases: u64,
    pub elapsed: Duration,
}

/// Runs `test` on values of `strategy` within the budget from the environment (see the module
/// docs). `source_file` is the caller's `file!()`, which names its regression file. Panics with the
/// minimal failing input on a failure, after persisting its seed.
pub fn run<S: Strategy>(
    source_file: &'static str,
    name: &'static str,
    default_cases: u64,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) -> Ran {
    run_within(
        source_file,
        name,
        Budget::from_env(default_cases),
        strategy,
        test,
    )
}

/// [`run`] with an explicit budget.
pub fn run_within<S: Strategy>(
    source_file: &'static str,
    name: &'static str,
    budget: Budget,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) -> Ran {
    batches(Some(source_file), name, budget, strategy, test)
}

/// Runs batches of cases until the budget is spent; persists failures when `source_file` is given.
fn batches<S: Strategy>(
    source_file: Option<&'static str>,
    name: &'static str,
    budget: Budget,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) -> Ran {
    let started = Instant::now();
    let deadline = budget.time.map(|t| started + t);
    let mut done: u64 = 0;
    loop {
        let remaining = budget.cases.map_or(u64::MAX, |c| c.saturating_sub(done));
        let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
        // The first batch always runs, so persisted seeds are replayed even on a zero budget.
        if done > 0 && (remaining == 0 || out_of_time) {
            break;
        }
        // Under a deadline, no batch is planned to end past it (at the pace so far).
        let affordable = match (deadline, done) {
            (Some(d), 1..) => {
                let per_case = started.elapsed().as_secs_f64() / done as f64;
                let left = d.saturating_duration_since(Instant::now()).as_secs_f64();
                (left / per_case.max(1e-9)) as u64
            }
            (Some(_), 0) => 16,
            (None, _) => u64::MAX,
        };
        let cases = remaining.min(affordable).clamp(1, u64::from(BATCH)) as u32;
        let config = Config {
            cases,
            source_file,
            test_name: Some(name),
            // `<target>.proptest-regressions` beside the target: the default (a parallel
            // `proptest-regressions/` tree) cannot place files under `tests/`.
            failure_persistence: source_file.map(|_| {
                Box::new(FileFailurePersistence::WithSource("proptest-regressions"))
                    as Box<dyn proptest::test_runner::FailurePersistence>
            }),
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, &test) {
            Ok(()) => done += u64::from(cases),
            Err(TestError::Fail(why, input)) => {
                panic!("{name}: failed after {done} cases: {why}\nminimal input: {input:#?}")
            }
            Err(TestError::Abort(why)) => panic!("{name}: aborted after {done} cases: {why}"),
        }
    }
    let ran = Ran {
        cases: done,
        elapsed: started.elapsed(),
    };
    // Shown with `--nocapture` (`make fuzz`): what the bound bought.
    println!(
        "fuzz {name}: {} cases in {:.2} s",
        ran.cases,
        ran.elapsed.as_secs_f64()
    );
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_budget_runs_exactly_that_many_cases() {
        let counted = std::sync::atomic::AtomicU64::new(0);
        let budget = Budget {
            cases: Some(1300),
            time: None,
        };
        let ran = run_within(file!(), "counting", budget, proptest::num::u8::ANY, |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        });
        assert_eq!(ran.cases, 1300);
        assert_eq!(counted.into_inner(), 1300);
    }

    #[test]
    fn a_time_budget_alone_stops_soon_after_the_deadline() {
        let budget = Budget {
            cases: None,
            time: Some(Duration::from_millis(200)),
        };
        let ran = run_within(file!(), "timed", budget, proptest::num::u8::ANY, |_| {
            std::thread::sleep(Duration::from_micros(50));
            Ok(())
        });
        assert!(ran.cases > 0, "{ran:?}");
        assert!(ran.elapsed >= Duration::from_millis(200), "{ran:?}");
        // Batches are planned to end by the deadline: the overshoot is a batch's tail at most.
        assert!(ran.elapsed < Duration::from_secs(2), "{ran:?}");
    }

    #[test]
    #[should_panic(expected = "minimal input: 10")]
    fn a_failure_panics_with_the_shrunk_input() {
        let budget = Budget {
            cases: Some(10_000),
            time: None,
        };
        // No source file: this deliberate failure must not leave a regression file behind.
        batches(None, "failing", budget, 0u32..1000, |n| {
            proptest::prop_assert!(n < 10);
            Ok(())
        });
    }
}
