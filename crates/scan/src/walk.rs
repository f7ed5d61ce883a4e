//! Walking paths as ripgrep does, searching each file on a pool of threads.

use crate::finder::Finder;
use crate::finding::Finding;
use crate::progress::Progress;
use crate::stream::{Outcome, StreamScanner};
use crate::{Problem, ScanOptions, ScanReport};
use ignore::{WalkBuilder, WalkState};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The path that means standard input.
pub(crate) const STDIN: &str = "-";

/// What the threads of one scan add up.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    files: AtomicU64,
    bytes: AtomicU64,
    binary: AtomicU64,
    found: AtomicU64,
    dropped: AtomicU64,
    problems_dropped: AtomicU64,
    findings: Mutex<Vec<Finding>>,
    problems: Mutex<Vec<Problem>>,
}

impl Tally {
    fn problem(&self, path: String, message: String) {
        if let Ok(mut problems) = self.problems.lock() {
            if problems.len() < crate::MAX_PROBLEMS {
                problems.push(Problem { path, message });
            } else {
                self.problems_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Searches one stream and counts what became of it.
    pub(crate) fn stream(
        &self,
        finder: &Finder,
        scanner: &mut StreamScanner,
        options: &ScanOptions,
        progress: &Progress,
        path: &str,
        reader: &mut dyn Read,
    ) {
        let mut mine = Vec::new();
        let mut reader = Counted { reader, progress };
        let outcome = scanner.scan(finder, &mut reader, path, &mut |finding| {
            mine.push(finding);
        });
        let bytes = match outcome {
            Ok(Outcome::Searched { bytes }) => {
                self.files.fetch_add(1, Ordering::Relaxed);
                bytes
            }
            Ok(Outcome::Binary { bytes }) => {
                self.binary.fetch_add(1, Ordering::Relaxed);
                bytes
            }
            Err(e) => {
                // What was found before the error is still reported.
                self.problem(path.to_owned(), e.to_string());
                0
            }
        };
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let found = self.found.fetch_add(mine.len() as u64, Ordering::Relaxed) + mine.len() as u64;
        if !mine.is_empty()
            && let Ok(mut findings) = self.findings.lock()
        {
            let room = options.max_findings.saturating_sub(findings.len());
            let dropped = mine.len().saturating_sub(room);
            mine.truncate(room);
            findings.append(&mut mine);
            self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        progress.file_done(found);
    }

    pub(crate) fn into_report(self) -> ScanReport {
        let mut findings = self.findings.into_inner().unwrap_or_default();
        findings.sort_by(|a, b| {
            (a.path.as_str(), a.line, a.column).cmp(&(b.path.as_str(), b.line, b.column))
        });
        let mut problems = self.problems.into_inner().unwrap_or_default();
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        ScanReport {
            findings,
            files_searched: self.files.into_inner(),
            bytes_searched: self.bytes.into_inner(),
            binary_files_skipped: self.binary.into_inner(),
            findings_dropped: self.dropped.into_inner(),
            problems,
            problems_dropped: self.problems_dropped.into_inner(),
        }
    }
}

/// A reader that tells the progress bar what it read.
struct Counted<'a> {
    reader: &'a mut dyn Read,
    progress: &'a Progress,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.progress.read(n as u64);
        Ok(n)
    }
}

/// How a walked path is shown: as given, without a leading `./`.
fn display(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    if shown.as_os_str().is_empty() {
        return path.display().to_string();
    }
    shown.display().to_string()
}

/// The path an error of the walk is about, if it says.
fn error_path(error: &ignore::Error) -> Option<String> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(display(path)),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(display(child)),
        ignore::Error::Partial(errors) => errors.iter().find_map(error_path),
        _ => None,
    }
}

/// Walks `roots` (directories and files, never standard input) on the
/// options' threads.
pub(crate) fn walk(
    finder: &Finder,
    options: &ScanOptions,
    progress: &Progress,
    tally: &Tally,
    roots: &[PathBuf],
) {
    let Some((first, rest)) = roots.split_first() else {
        return;
    };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    builder
        .hidden(!options.hidden)
        .ignore(options.ignore_files)
        .git_ignore(options.ignore_files)
        .git_global(options.ignore_files)
        .git_exclude(options.ignore_files)
        .parents(options.ignore_files)
        .threads(options.threads);
    builder.build_parallel().run(|| {
        let mut scanner = StreamScanner::new(options.chunk_size);
        Box::new(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    tally.problem(error_path(&error).unwrap_or_default(), error.to_string());
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let path = display(entry.path());
            match std::fs::File::open(entry.path()) {
                Ok(mut file) => {
                    tally.stream(finder, &mut scanner, options, progress, &path, &mut file);
                }
                Err(e) => tally.problem(path, e.to_string()),
            }
            WalkState::Continue
        })
    });
}
