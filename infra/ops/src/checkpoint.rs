//! A backfill's checkpoint: the cursor after the last page whose writes all finished, and the
//! counts so far. Saved after every page (written to a temporary file, synced, renamed over the
//! old one), so a Ctrl-C or a crash loses at most the page in flight, which `--resume` redoes.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Counts of one backfill run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Users listed by Clerk.
    pub seen: u64,
    /// Users written (with `--dry-run`: that would be).
    pub applied: u64,
    /// Refused: the table holds something newer or a tombstone.
    pub stale: u64,
    /// Refused: the table already holds exactly this.
    pub duplicate: u64,
    /// Not written (a failed write, or a user that does not parse).
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Which users table it belongs to: a checkpoint is never resumed against another.
    pub users_table: String,
    /// The run's id; a resumed run keeps it, so its writer ids stay the same.
    pub run: String,
    /// `starting_after` for the next page; `None` before the first.
    pub cursor: Option<String>,
    pub pages: u64,
    pub counts: Counts,
    /// Ids of the users that failed (at most [`Checkpoint::MAX_FAILED_IDS`] kept).
    #[serde(default)]
    pub failed_ids: Vec<String>,
    /// The last page was written.
    pub done: bool,
}

impl Checkpoint {
    pub const MAX_FAILED_IDS: usize = 1000;

    pub fn new(users_table: &str, run: String) -> Self {
        Self {
            users_table: users_table.to_owned(),
            run,
            cursor: None,
            pages: 0,
            counts: Counts::default(),
            failed_ids: vec![],
            done: false,
        }
    }

    /// The checkpoint at `path`, if there is one.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("reading the checkpoint {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Replaces the checkpoint at `path` atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        let mut file =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_loads_back_and_a_missing_one_is_none() {
        let dir = std::env::temp_dir().join(format!("ops-ckpt-{}", fastrand::u64(..)));
        let path = dir.join("backfill.json");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let mut c = Checkpoint::new("users", "r1".into());
        c.cursor = Some("user_a".into());
        c.counts.applied = 3;
        c.save(&path).unwrap();
        c.pages = 2;
        c.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(c));
        assert!(!path.with_extension("tmp").exists());
        std::fs::write(&path, "{not json").unwrap();
        assert!(Checkpoint::load(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
