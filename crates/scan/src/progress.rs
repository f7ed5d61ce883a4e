//! The progress bar: files and bytes per second, on standard error, only
//! when standard error is a terminal and only once a scan has run long
//! enough to be worth watching.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A scan shorter than this shows no bar: small trees finish before a bar
/// would be read.
const SHOW_AFTER: Duration = Duration::from_millis(500);

/// Counts files and bytes as a scan goes, and draws them when asked to and
/// standard error is a terminal.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    shown: AtomicBool,
    files: Arc<AtomicU64>,
    found: AtomicU64,
}

impl Progress {
    /// A bar if `wanted` and standard error is a terminal; nothing to draw
    /// otherwise (the counting is then a no-op).
    pub(crate) fn new(wanted: bool) -> Self {
        let files = Arc::new(AtomicU64::new(0));
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
            let counted = Arc::clone(&files);
            let style = ProgressStyle::with_template(
                "{spinner} {files} files ({files_per_sec}), {binary_bytes} ({binary_bytes_per_sec}), {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("files", {
                let counted = Arc::clone(&counted);
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", counted.load(Ordering::Relaxed));
                }
            })
            .with_key(
                "files_per_sec",
                move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let secs = state.elapsed().as_secs_f64().max(0.001);
                    let rate = counted.load(Ordering::Relaxed) as f64 / secs;
                    let _ = write!(w, "{rate:.0}/s");
                },
            );
            bar.set_style(style);
            bar.set_message("0 found");
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            shown: AtomicBool::new(false),
            files,
            found: AtomicU64::new(0),
        }
    }

    /// Whether a bar may be drawn at all.
    #[cfg(test)]
    pub(crate) fn is_enabled(&self) -> bool {
        self.bar.is_some()
    }

    /// `bytes` more were read (called for every read, so a single huge
    /// stream moves the bar too).
    pub(crate) fn read(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            self.show_when_due(bar);
        }
    }

    /// A file was searched (or skipped); `found` is the total of tokens
    /// found so far.
    pub(crate) fn file_done(&self, found: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        self.files.fetch_add(1, Ordering::Relaxed);
        self.show_when_due(bar);
        if self.found.swap(found, Ordering::Relaxed) != found {
            bar.set_message(format!("{found} found"));
        }
    }

    fn show_when_due(&self, bar: &ProgressBar) {
        if !self.shown.load(Ordering::Relaxed) && self.started.elapsed() >= SHOW_AFTER {
            self.shown.store(true, Ordering::Relaxed);
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    /// The scan is over: the bar is cleared from the terminal.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bar_is_drawn_without_a_terminal_even_when_asked_for() {
        // Tests run with standard error captured, not on a terminal.
        if std::io::stderr().is_terminal() {
            return;
        }
        let progress = Progress::new(true);
        assert!(!progress.is_enabled());
        progress.read(100);
        progress.file_done(1);
        progress.finish();
        assert!(!Progress::new(false).is_enabled());
    }
}
