//! Progress bars with rate and ETA on stderr (indicatif hides them when stderr is not a
//! terminal, so scripts and tests see only the summary line).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `unit` up to `total` (a spinner when the total is unknown).
pub fn bar(total: Option<u64>, unit: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    match total {
        Some(total) => {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}"
                ))
                .expect("a valid template"),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{elapsed_precise}} {{spinner}} {{pos}} {unit} ({{per_sec}}) {{msg}}"
                ))
                .expect("a valid template"),
            );
            bar
        }
    }
}
