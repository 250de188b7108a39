//! Progress bars with rate and ETA on stderr (indicatif hides them when stderr is not a
//! terminal, so scripts and tests see only the summary line). Without the `cli` feature (the
//! scheduled reconcile Lambda) a bar is a no-op and indicatif is not linked.

#[cfg(feature = "cli")]
pub use indicatif::ProgressBar;

/// A bar counting `unit` up to `total` (a spinner when the total is unknown).
#[cfg(feature = "cli")]
pub fn bar(total: Option<u64>, unit: &str, show: bool) -> ProgressBar {
    use indicatif::ProgressStyle;
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

/// Without a terminal to draw on: counts nothing, shows nothing.
#[cfg(not(feature = "cli"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct ProgressBar;

#[cfg(not(feature = "cli"))]
impl ProgressBar {
    pub fn inc(&self, _: u64) {}
    pub fn set_message(&self, _: impl Into<std::borrow::Cow<'static, str>>) {}
    pub fn set_position(&self, _: u64) {}
    pub fn set_length(&self, _: u64) {}
    pub fn finish_and_clear(&self) {}
    pub fn println(&self, _: impl AsRef<str>) {}
}

#[cfg(not(feature = "cli"))]
pub fn bar(_total: Option<u64>, _unit: &str, _show: bool) -> ProgressBar {
    ProgressBar
}
