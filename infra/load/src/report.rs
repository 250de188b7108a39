//! A run's figures: webhook latency percentiles, throughput, time to converge, CPU by process,
//! and the oracle's verdict; printed as a table, or as JSON for BENCHMARKS.md.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::oracle::Verdict;
use crate::sender::{Answer, Sent};

/// The `p`-th percentile (0–100) of `samples`, nearest rank; zero when empty.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU seconds a process used during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub process: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub users: usize,
    pub events: usize,
    pub deliveries: usize,
    pub concurrency: usize,
    pub attempts: usize,
    /// Attempts by answer: `202`, `503`, `connection error`, …
    pub answers: Vec<(String, usize)>,
    pub webhook_p50_ms: f64,
    pub webhook_p99_ms: f64,
    pub webhook_max_ms: f64,
    /// From the first attempt to the last 2xx.
    pub send_seconds: f64,
    /// From the last 2xx until the oracle passed (or gave up).
    pub converge_seconds: f64,
    /// Deliveries per second from the first attempt until converged: the sustained rate.
    pub events_per_second: f64,
    pub cpu: Vec<Cpu>,
    /// Faults injected, by kind (fault runs only).
    pub faults: Vec<(String, u64)>,
    /// `SendMessage` calls the fault proxy saw answered OK (fault runs only): must equal the
    /// deliveries answered 2xx.
    pub sends_answered_ok: Option<u64>,
    pub verdict: String,
    pub converged: bool,
}

/// Milliseconds to 0.1 ms.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Seconds to 0.1 s.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

impl Report {
    pub fn new(
        model: &crate::model::Model,
        concurrency: usize,
        sent: &Sent,
        converge: Duration,
        verdict: &Verdict,
    ) -> Self {
        let total = sent.elapsed_to_last_accept + converge;
        Self {
            users: model.size.users,
            events: model.events().count(),
            deliveries: model.size.deliveries,
            concurrency,
            attempts: sent.attempts(),
            answers: sent
                .answers
                .iter()
                .map(|(a, n)| {
                    let name = match a {
                        Answer::Status(s) => s.to_string(),
                        Answer::ConnectionError => "connection error".to_owned(),
                    };
                    (name, *n)
                })
                .collect(),
            webhook_p50_ms: ms(percentile(&sent.latencies, 50.0)),
            webhook_p99_ms: ms(percentile(&sent.latencies, 99.0)),
            webhook_max_ms: ms(percentile(&sent.latencies, 100.0)),
            send_seconds: seconds(sent.elapsed_to_last_accept),
            converge_seconds: seconds(converge),
            events_per_second: (sent.accepted as f64 / total.as_secs_f64().max(1e-9) * 10.0)
                .round()
                / 10.0,
            cpu: Vec::new(),
            faults: Vec::new(),
            sends_answered_ok: None,
            verdict: verdict.to_string(),
            converged: verdict.converged(),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| figure | value |")?;
        writeln!(f, "|---|---|")?;
        writeln!(
            f,
            "| users / events / deliveries | {} / {} / {} |",
            self.users, self.events, self.deliveries
        )?;
        writeln!(f, "| concurrency | {} |", self.concurrency)?;
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(a, n)| format!("{a}: {n}"))
            .collect();
        writeln!(
            f,
            "| attempts | {} ({}) |",
            self.attempts,
            answers.join(", ")
        )?;
        writeln!(
            f,
            "| webhook latency p50 / p99 / max | {} / {} / {} ms |",
            self.webhook_p50_ms, self.webhook_p99_ms, self.webhook_max_ms
        )?;
        writeln!(f, "| first attempt → last 2xx | {} s |", self.send_seconds)?;
        writeln!(f, "| last 2xx → converged | {} s |", self.converge_seconds)?;
        writeln!(
            f,
            "| sustained (deliveries / first attempt → converged) | {} events/s |",
            self.events_per_second
        )?;
        for cpu in &self.cpu {
            writeln!(f, "| CPU {} | {:.1} s |", cpu.process, cpu.seconds)?;
        }
        for (kind, n) in &self.faults {
            writeln!(f, "| faults injected: {kind} | {n} |")?;
        }
        if let Some(sends) = self.sends_answered_ok {
            writeln!(f, "| SendMessage answered OK (at the proxy) | {sends} |")?;
        }
        writeln!(f, "| oracle | {} |", self.verdict)?;
        Ok(())
    }
}

/// CPU seconds (user + system) `pid` has used so far, from `/proc/<pid>/stat`; `None` if it is
/// gone or this is not Linux.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let seconds = cpu_seconds(std::process::id()).expect("linux /proc");
        assert!(seconds >= 0.0);
    }
}
