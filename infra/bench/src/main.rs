//! `peers`: generates the shared inputs, measures ours and the svix crate here, runs the Node and
//! Python peers on the same inputs file, and prints one table (`--json FILE` for the figures).

use std::path::PathBuf;

use anyhow::Context;
use bench::measure::Plan;
use bench::peers::{Peer, PeerInputs};
use bench::report::{Report, rows, table};
use clap::Parser;
use devkit::bench_inputs::BenchInputs;

#[derive(Parser)]
#[command(about = "Our webhook and token verification against their Rust, Node and Python peers")]
struct Args {
    /// Timed rounds per implementation (min/median/max are over these).
    #[arg(long, env = "ROUNDS", default_value_t = Plan::default().rounds)]
    rounds: usize,
    /// Untimed rounds first (JIT warm-up).
    #[arg(long, default_value_t = Plan::default().warmup_rounds)]
    warmup_rounds: usize,
    /// Webhook verifications per round.
    #[arg(long, default_value_t = Plan::default().webhook_iterations)]
    webhook_iterations: usize,
    /// Token verifications per round.
    #[arg(long, default_value_t = Plan::default().token_iterations)]
    token_iterations: usize,
    /// Also write the figures (every round's time) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Leave out the Node peers.
    #[arg(long)]
    no_node: bool,
    /// Leave out the Python peers.
    #[arg(long)]
    no_python: bool,
    /// Run even though this binary was built without optimisations (its figures mean nothing).
    #[arg(long)]
    allow_debug: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "peers: WARNING: this is a debug build; ours would be measured unoptimised. \
             Run `make bench-peers` (cargo run --release -p bench --bin peers)."
        );
        anyhow::ensure!(
            args.allow_debug,
            "refusing to measure a debug build (--allow-debug to run anyway)"
        );
    }
    let plan = Plan {
        rounds: args.rounds.max(1),
        warmup_rounds: args.warmup_rounds,
        webhook_iterations: args.webhook_iterations.max(1),
        token_iterations: args.token_iterations.max(1),
    };
    let root = devkit::workspace_root();
    let now = devkit::signing::now();
    let inputs = BenchInputs::generate();
    let dir = root.join("target/bench-peers");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let inputs_file = dir.join("inputs.json");
    let file = PeerInputs {
        plan,
        now,
        inputs: inputs.clone(),
    };
    std::fs::write(&inputs_file, serde_json::to_string_pretty(&file)?)
        .with_context(|| format!("writing {}", inputs_file.display()))?;
    eprintln!(
        "peers: {} rounds (after {} warm-up) of {} webhook / {} token verifications each; inputs in {}",
        plan.rounds,
        plan.warmup_rounds,
        plan.webhook_iterations,
        plan.token_iterations,
        inputs_file.display()
    );

    eprintln!("peers: measuring ours and the svix crate");
    let mut measurements = bench::ours::measure(&inputs, &plan, now)?;
    let mut skipped = Vec::new();
    let peers = [
        (!args.no_node).then(|| Peer::node(&root)),
        (!args.no_python).then(|| Peer::python(&root)),
    ];
    for peer in peers.into_iter().flatten() {
        eprintln!("peers: running {} {}", peer.name, peer.script.display());
        match peer.run(&inputs_file, &plan) {
            Ok(results) => measurements.extend(results),
            Err(e) => {
                eprintln!("peers: WARNING: {} left out: {e:#}", peer.name);
                skipped.push(format!("{}: {e:#}", peer.name));
            }
        }
    }

    let rows = rows(&measurements);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} rounds of {} webhook / {} token verifications, {} cores; vs ours: >1 is slower than ours\n",
        plan.rounds, plan.webhook_iterations, plan.token_iterations, cores
    );
    print!("{}", table(&rows));
    for s in &skipped {
        println!("\nnot run: {}", s.lines().next().unwrap_or(s));
    }
    if let Some(path) = &args.json {
        let report = Report {
            measured_at: measured_at(),
            cores,
            plan,
            webhook_body_bytes: inputs.webhook.body.len(),
            results: rows,
            skipped,
        };
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("peers: figures written to {}", path.display());
    }
    Ok(())
}

/// Now, as RFC 3339 UTC.
fn measured_at() -> String {
    use time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0);
    now.ok()
        .and_then(|now| now.format(&Rfc3339).ok())
        .unwrap_or_else(|| devkit::signing::now().to_string())
}
