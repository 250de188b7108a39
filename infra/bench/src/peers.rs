//! The Node and Python peers: the inputs file they read (the plan and the inputs, as JSON), how
//! each script is started, and what it must print (`{"results": [Measurement, …]}` on stdout).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use devkit::bench_inputs::BenchInputs;
use serde::{Deserialize, Serialize};

use crate::measure::Plan;
use crate::report::Measurement;

/// The file every peer script is given: what to run, and on what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerInputs {
    pub plan: Plan,
    /// Unix seconds at which the token's time claims are judged (the scripts use their clock;
    /// the token is valid for an hour either way).
    pub now: i64,
    pub inputs: BenchInputs,
}

/// What a peer script prints.
#[derive(Debug, Deserialize)]
struct PeerOutput {
    results: Vec<Measurement>,
}

/// A peer script and the interpreter that runs it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: &'static str,
    pub program: PathBuf,
    pub script: PathBuf,
    /// What to do when the interpreter or its packages are missing.
    pub install_hint: &'static str,
}

impl Peer {
    /// `node infra/bench/peers/node/bench.mjs` (`BENCH_NODE` for another node).
    pub fn node(root: &Path) -> Self {
        Self {
            name: "node",
            program: std::env::var_os("BENCH_NODE")
                .map(PathBuf::from)
                .unwrap_or_else(|| "node".into()),
            script: root.join("infra/bench/peers/node/bench.mjs"),
            install_hint: "run scripts/bootstrap-bench.sh (make bench-peers does) to npm ci the pinned packages",
        }
    }

    /// `.venv-bench/bin/python infra/bench/peers/python/bench.py` (`BENCH_PYTHON` for another).
    pub fn python(root: &Path) -> Self {
        Self {
            name: "python",
            program: std::env::var_os("BENCH_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".venv-bench/bin/python")),
            script: root.join("infra/bench/peers/python/bench.py"),
            install_hint: "run scripts/bootstrap-bench.sh (make bench-peers does) to create .venv-bench",
        }
    }

    fn command(&self, inputs_file: &Path) -> Command {
        let mut command = Command::new(&self.program);
        command.args([OsString::from(&self.script), inputs_file.into()]);
        command
    }

    /// Runs the script on `inputs_file` and reads its measurements, checked against `plan`.
    pub fn run(&self, inputs_file: &Path, plan: &Plan) -> anyhow::Result<Vec<Measurement>> {
        let output = self.command(inputs_file).output().with_context(|| {
            format!(
                "starting {} ({}): {}",
                self.name,
                self.program.display(),
                self.install_hint
            )
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{} {} failed ({}); {}\n{}",
                self.name,
                self.script.display(),
                output.status,
                self.install_hint,
                tail.join("\n")
            );
        }
        parse_output(&String::from_utf8_lossy(&output.stdout), plan)
            .with_context(|| format!("reading what {} printed", self.script.display()))
    }
}

/// A peer's stdout: one JSON document whose every measurement has one time per planned round.
pub fn parse_output(stdout: &str, plan: &Plan) -> anyhow::Result<Vec<Measurement>> {
    let output: PeerOutput = serde_json::from_str(stdout.trim())?;
    ensure!(!output.results.is_empty(), "no measurements");
    for m in &output.results {
        ensure!(
            m.rounds_us.len() == plan.rounds,
            "{}: {} rounds where {} were planned",
            m.name,
            m.rounds_us.len(),
            plan.rounds
        );
        ensure!(
            m.rounds_us.iter().all(|t| t.is_finite() && *t >= 0.0),
            "{}: a time that is not a finite non-negative number",
            m.name
        );
        ensure!(!m.baseline, "{}: only ours is a baseline", m.name);
    }
    Ok(output.results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Group;

    fn plan(rounds: usize) -> Plan {
        Plan {
            rounds,
            ..Plan::default()
        }
    }

    #[test]
    fn a_peers_output_is_read_into_measurements() {
        let out = r#"{"results": [{"group": "webhook", "name": "svix", "runtime": "node v20", "rounds_us": [1.5, 2.5]}]}"#;
        let got = parse_output(out, &plan(2)).unwrap();
        assert_eq!(got[0].group, Group::Webhook);
        assert_eq!(got[0].rounds_us, [1.5, 2.5]);
        assert!(!got[0].baseline);
    }

    #[test]
    fn a_peer_that_ran_another_number_of_rounds_is_refused() {
        let out = r#"{"results": [{"group": "token", "name": "jose", "runtime": "node", "rounds_us": [1.0]}]}"#;
        let error = parse_output(out, &plan(15)).unwrap_err();
        assert!(error.to_string().contains("1 rounds where 15"), "{error}");
    }

    #[test]
    fn a_peer_cannot_claim_to_be_the_baseline() {
        let out = r#"{"results": [{"group": "token", "name": "jose", "runtime": "node", "baseline": true, "rounds_us": [1.0]}]}"#;
        assert!(parse_output(out, &plan(1)).is_err());
    }

    #[test]
    fn a_peer_that_printed_nothing_is_an_error() {
        assert!(parse_output("", &plan(1)).is_err());
        assert!(parse_output(r#"{"results": []}"#, &plan(1)).is_err());
    }

    #[test]
    fn the_inputs_file_carries_the_plan_and_the_inputs() {
        let file = PeerInputs {
            plan: Plan::default(),
            now: 1,
            inputs: BenchInputs::generate(),
        };
        let json: serde_json::Value = serde_json::to_value(&file).unwrap();
        assert_eq!(json["plan"]["rounds"], 15);
        assert!(
            json["inputs"]["webhook"]["svix_signature"]
                .as_str()
                .unwrap()
                .starts_with("v1,")
        );
        assert!(
            json["inputs"]["token"]["public_pem"]
                .as_str()
                .unwrap()
                .contains("BEGIN PUBLIC KEY")
        );
    }

    #[test]
    fn a_missing_interpreter_is_reported_with_how_to_install_it() {
        let peer = Peer {
            program: "/nonexistent/node".into(),
            ..Peer::node(Path::new("/nonexistent"))
        };
        let error = peer
            .run(Path::new("/nonexistent/inputs.json"), &plan(1))
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("bootstrap-bench"),
            "{error:#}"
        );
    }
}
