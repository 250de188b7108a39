//! The command line: subcommands, their flags, and `--help` with an example each.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit;
use crate::redrive::Method;
use crate::target::Selector;

#[derive(Debug, Parser)]
#[command(
    name = "clerk-sync-ops",
    version,
    about = "Operations on a Clerk user-sync stack: backfill, reconcile, redrive, inspect, resync",
    long_about = "Operations on a Clerk user-sync stack: backfill, reconcile, redrive, inspect, resync.\n\n\
        Works on the local stack `make local` is running (the default: .local/stack-outputs.json) or on a \
        deployed one (--env dev|staging|prod: its CloudFormation outputs, read with the SDK; the Clerk \
        secret key from the stack's own secret). CLERK_API_URL and CLERK_SECRET_KEY, when set, pick \
        another Clerk. Every write is the sync function's own conditional write: nothing newer is \
        overwritten, no deleted user comes back.",
    after_help = exit::HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// A deployed environment (samconfig.toml names its stack and region).
    #[arg(long, global = true, value_parser = ["dev", "staging", "prod"])]
    pub env: Option<String>,
    /// The stack's name, when it is not the one samconfig.toml gives the environment.
    #[arg(long, global = true, requires = "env")]
    pub stack: Option<String>,
    /// The samconfig file naming each environment's stack.
    #[arg(long, global = true, default_value = "samconfig.toml")]
    pub samconfig: PathBuf,
    /// The local stack's outputs file (its lambda.env sits next to it).
    #[arg(long, global = true, default_value = ".local/stack-outputs.json")]
    pub outputs: PathBuf,
    /// Clerk Backend API requests per second at most (production instances allow 100/s,
    /// development ones 10/s).
    #[arg(long, global = true, default_value_t = 5.0)]
    pub rate: f64,
}

impl TargetArgs {
    pub fn selector(&self) -> Selector {
        match &self.env {
            Some(env) => Selector::Env {
                env: env.clone(),
                stack: self.stack.clone(),
                samconfig: self.samconfig.clone(),
            },
            None => Selector::Local {
                outputs: self.outputs.clone(),
            },
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write every Clerk user into the users table (day one, or after an outage longer than
    /// Svix's retries).
    #[command(after_help = concat!(
        "Example:\n  clerk-sync-ops backfill --env prod\n  clerk-sync-ops backfill --env prod --resume   # after a Ctrl-C or a crash\n\n",
        "Pages through GET /v1/users (500 a page, starting_after cursor, oldest first), with the \
         count for the progress total. A 429's Retry-After pauses every request; a 5xx is retried \
         with backoff. The checkpoint (cursor and counts) is saved after every page. A re-run \
         writes nothing that is already there. Each write leaves an event-log record (source \
         backfill).\n\n",
        crate::exit_codes!()
    ))]
    Backfill(BackfillArgs),
    /// Compare the table with Clerk: missing, older, and absent-from-Clerk users.
    #[command(after_help = concat!("Example:\n  clerk-sync-ops reconcile --env prod            # report only\n  clerk-sync-ops reconcile --env prod --fix      # repair\n  clerk-sync-ops reconcile --env prod --sample 200\n\n\
        Users absent from Clerk are confirmed one by one (GET /v1/users/{id}) before they are \
        counted; --fix tombstones them. Tombstoned users Clerk still has are reported, never \
        resurrected. Exit code 4: drift found, nothing written.\n\n", crate::exit_codes!()))]
    Reconcile(ReconcileArgs),
    /// Move dead-letter messages back to the events queue (or --peek at them).
    #[command(after_help = concat!("Example:\n  clerk-sync-ops redrive --peek                  # what is there, and why\n  clerk-sync-ops redrive --env prod              # move everything back\n\n\
        StartMessageMoveTask where SQS has it; otherwise receive, send the copy, and delete the \
        dead letter only once the copy is accepted (a kill midway loses nothing; a duplicate is \
        harmless).\n\n", crate::exit_codes!()))]
    Redrive(RedriveArgs),
    /// One event by svix id, or one user's timeline (--user).
    #[command(after_help = concat!("Example:\n  clerk-sync-ops inspect msg_2a9Lk…\n  clerk-sync-ops inspect --user user_35kQ7zvT0cWnHq1d2xXy9RbLmAa\n\n\
        Personal fields (emails, names, metadata) are hidden unless --show-pii.\n\n", crate::exit_codes!()))]
    Inspect(InspectArgs),
    /// Fetch users by id from Clerk and apply them (for support tickets).
    #[command(after_help = concat!("Example:\n  clerk-sync-ops resync --env prod user_35kQ7zvT0cWnHq1d2xXy9RbLmAa\n\n\
        Same write as backfill; a user Clerk does not have is reported (exit code 5), not deleted.\n\n", crate::exit_codes!()))]
    Resync(ResyncArgs),
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Go on from the checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Read Clerk and the table, write nothing; say what would be written.
    #[arg(long)]
    pub dry_run: bool,
    /// The checkpoint file [default: .local/backfill-<users table>.json].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Writes in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Users per page (Clerk serves at most 500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub page_size: u16,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Repair what is found.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: say what would be repaired, write nothing.
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
    /// Check N random table users by id instead of listing all of Clerk (cannot see missing
    /// users).
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Ids printed per class.
    #[arg(long, default_value_t = 20)]
    pub show: usize,
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// List the dead letters (svix id, type, user, attempts, last reason), move nothing.
    #[arg(long)]
    pub peek: bool,
    /// Count what would be moved, move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many messages (moved by copy; with --peek: listed).
    #[arg(long)]
    pub max: Option<u64>,
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    pub method: Method,
    /// Seconds a message being copied stays hidden: killed midway, it is a dead letter again
    /// after this.
    #[arg(long, default_value_t = 60)]
    pub visibility_timeout: u64,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The event's svix id (or any event-log key: sqs:…, backfill:…, lazy-sync:…).
    #[arg(required_unless_present = "user", conflicts_with = "user")]
    pub svix_id: Option<String>,
    /// A user's timeline instead.
    #[arg(long, value_name = "USER_ID")]
    pub user: Option<String>,
    /// Show the stored profile (emails, names, metadata).
    #[arg(long)]
    pub show_pii: bool,
    /// Events shown in a timeline (the latest).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// Clerk user ids (user_…).
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Fetch and compare, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}
