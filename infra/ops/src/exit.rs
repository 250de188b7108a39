//! The exit codes scripts can rely on, stated once (and printed by `--help`).

/// Everything asked for was done (or, with `--dry-run`, would be).
pub const OK: i32 = 0;
/// It could not run: no target, AWS or Clerk unreachable or refusing, a bad checkpoint.
pub const ERROR: i32 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: i32 = 2;
/// It ran to the end, but some items failed (a write, a message move): the summary counts them
/// and a re-run retries them.
pub const PARTIAL: i32 = 3;
/// `reconcile` without `--fix` found drift.
pub const DRIFT: i32 = 4;
/// `inspect` or `resync` did not find what it was asked about.
pub const NOT_FOUND: i32 = 5;
/// Interrupted (Ctrl-C / SIGTERM); `backfill --resume` goes on from the saved checkpoint.
pub const INTERRUPTED: i32 = 130;

/// The table every `--help` prints (a macro, so each subcommand's help can `concat!` it).
#[macro_export]
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0    done (with --dry-run: nothing written, the summary says what would be)
  1    could not run (target, AWS or Clerk unreachable or refusing, bad checkpoint)
  2    usage error
  3    ran to the end but some items failed (counted in the summary; a re-run retries them)
  4    reconcile: drift found and not fixed (no --fix)
  5    inspect / resync: not found
  130  interrupted; the checkpoint is saved (backfill --resume continues)"
    };
}

/// The table `--help` prints.
pub const HELP: &str = exit_codes!();
