//! Finds keyward tokens that leaked into files, trees and streams, as fast
//! as ripgrep searches them: the engine behind `keyward scan`.
//!
//! ```
//! use keyward_core::{token::TokenFormat, TokenKind};
//! use keyward_scan::{ScanOptions, Scanner};
//!
//! let format = TokenFormat::new([TokenKind::new("mt")?])?;
//! let scanner = Scanner::new(format, ScanOptions::new())?;
//! let leaked = "const KEY: &str = \"mt_AbCdEf1234xxxxxxxxxxxxxxxxxxxxxxxxxxx47RLeo\";\n";
//! let report = scanner.scan_reader("config.rs", leaked.as_bytes());
//! let finding = &report.findings[0];
//! assert_eq!((finding.path(), finding.line(), finding.column()), ("config.rs", 1, 20));
//! assert_eq!(finding.kind(), "mt");
//! assert_eq!(finding.preview(), "mt_AbCdEf1234…"); // never the secret
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it does
//!
//! - **Walks** directories as ripgrep does (the [`ignore`] crate, on a pool
//!   of threads): `.gitignore` (inside a Git repository), `.ignore`,
//!   `.git/info/exclude` and the global Git excludes are honoured, hidden
//!   files and directories are skipped, symbolic links are not followed.
//!   [`ScanOptions::ignore_files`] and [`ScanOptions::hidden`] turn those
//!   off. A file named explicitly is always searched; `-` is standard input.
//! - **Reads in bounded memory**: each stream in chunks of
//!   [`ScanOptions::chunk_size`] with an overlap of the longest token, so a
//!   token cut by a chunk boundary is found, and neither a huge file nor an
//!   endless pipe is ever held whole. See the `stream` module's notes for
//!   binary files (a NUL byte in the first block: skipped), UTF-16 (a
//!   byte-order mark: decoded, then searched), CRLF and UTF-8 marks.
//! - **Finds fast**: a SIMD substring search for the kinds' `<prefix>_`,
//!   then each candidate word confirmed by [`TokenFormat::parse`] (length,
//!   alphabet, checksum). The result is exactly [`TokenFormat::scan`]'s:
//!   whole words only, so a token glued inside a longer word, a wrong
//!   checksum or another prefix is not reported.
//! - **Reports** `path:line:column`, kind and a masked preview
//!   ([`Finding::preview`]), as text, JSON ([`report::json`], a documented
//!   stable shape) or SARIF 2.1.0 ([`report::sarif`]). The token itself is
//!   shown only when a report is asked to reveal it.
//!
//! Problems met on the way (a path that does not exist, a file that cannot
//! be read) never stop a scan: they are listed in [`ScanReport::problems`].

mod error;
mod finder;
mod finding;
mod progress;
pub mod report;
mod stream;
mod walk;

pub use error::ScanError;
pub use finding::Finding;
pub use stream::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

use finder::Finder;
use keyward_core::token::TokenFormat;
use progress::Progress;
use std::io::Read;
use std::path::{Path, PathBuf};
use stream::StreamScanner;
use walk::{STDIN, Tally};

/// The most findings a report holds by default; more are counted in
/// [`ScanReport::findings_dropped`] (a dump full of tokens must not take
/// unbounded memory).
pub const DEFAULT_MAX_FINDINGS: usize = 100_000;

/// The most problems a report lists; more are counted in
/// [`ScanReport::problems_dropped`].
pub const MAX_PROBLEMS: usize = 1000;

/// How a scan walks and reads. A builder: `ScanOptions::new().hidden(true)`.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    hidden: bool,
    ignore_files: bool,
    threads: usize,
    chunk_size: usize,
    max_findings: usize,
    progress: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ScanOptions {
    /// ripgrep's defaults: ignore files honoured, hidden files skipped, one
    /// thread per core, chunks of [`DEFAULT_CHUNK_SIZE`], no progress bar.
    pub fn new() -> Self {
        Self {
            hidden: false,
            ignore_files: true,
            threads: 0,
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_findings: DEFAULT_MAX_FINDINGS,
            progress: false,
        }
    }

    /// Search hidden files and directories too (names starting with `.`).
    pub fn hidden(mut self, yes: bool) -> Self {
        self.hidden = yes;
        self
    }

    /// Honour `.gitignore`, `.ignore`, `.git/info/exclude`, the global Git
    /// excludes and the same files in parent directories (the default), or
    /// search what they exclude too (`false`, as ripgrep's `--no-ignore`).
    pub fn ignore_files(mut self, yes: bool) -> Self {
        self.ignore_files = yes;
        self
    }

    /// Threads searching files; 0 (the default) picks from the cores.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Bytes read per round, [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`]; each
    /// searching thread holds about twice this.
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// The most findings kept (at least 1); those past it are counted, not
    /// kept.
    pub fn max_findings(mut self, findings: usize) -> Self {
        self.max_findings = findings;
        self
    }

    /// Draw a progress bar (files and bytes per second) on standard error
    /// once a scan has run for half a second. Never drawn when standard
    /// error is not a terminal, whatever this says.
    pub fn progress(mut self, yes: bool) -> Self {
        self.progress = yes;
        self
    }

    fn validate(&self) -> Result<(), ScanError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(ScanError::InvalidOption {
                option: "chunk_size",
                reason: format!("must be {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE} bytes"),
            });
        }
        if self.max_findings == 0 {
            return Err(ScanError::InvalidOption {
                option: "max_findings",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

/// A path that could not be searched, and why. The scan went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The path (empty when the walk did not say).
    pub path: String,
    /// What went wrong, from the operating system or the walk.
    pub message: String,
}

/// What a scan found and what it read.
#[derive(Debug)]
#[non_exhaustive]
pub struct ScanReport {
    /// Every token found, ordered by path, line and column.
    pub findings: Vec<Finding>,
    /// Files (and streams) searched to their end.
    pub files_searched: u64,
    /// Bytes read, binary files' first blocks included.
    pub bytes_searched: u64,
    /// Files skipped as binary (a NUL byte in the first block).
    pub binary_files_skipped: u64,
    /// Tokens found past [`ScanOptions::max_findings`], counted only.
    pub findings_dropped: u64,
    /// Paths that could not be searched (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems past [`MAX_PROBLEMS`], counted only.
    pub problems_dropped: u64,
}

impl ScanReport {
    /// Whether any token was found (kept or dropped): what a CI gate fails on.
    pub fn found_any(&self) -> bool {
        !self.findings.is_empty() || self.findings_dropped > 0
    }

    /// Whether some path could not be searched: then "nothing found" does
    /// not mean "clean".
    pub fn incomplete(&self) -> bool {
        !self.problems.is_empty() || self.problems_dropped > 0
    }
}

/// Searches paths and streams for the tokens of one [`TokenFormat`].
#[derive(Debug, Clone)]
pub struct Scanner {
    finder: Finder,
    options: ScanOptions,
}

impl Scanner {
    /// A scanner for the kinds of `format`. Fails if the format has no
    /// kinds or an option is out of range.
    pub fn new(format: TokenFormat, options: ScanOptions) -> Result<Self, ScanError> {
        options.validate()?;
        Ok(Self {
            finder: Finder::new(format)?,
            options,
        })
    }

    /// The format searched for.
    pub fn format(&self) -> &TokenFormat {
        self.finder.format()
    }

    /// The regular expression ripgrep and other secret scanners can use
    /// for the same tokens ([`TokenFormat::regex`]); their matches are
    /// candidates until their checksum is confirmed.
    pub fn regex(&self) -> String {
        self.format().regex()
    }

    /// Searches `paths`: directories are walked, files searched, `-` reads
    /// standard input. No paths means the current directory.
    pub fn scan<P: AsRef<Path>>(&self, paths: &[P]) -> ScanReport {
        let progress = Progress::new(self.options.progress);
        let tally = Tally::default();
        let mut roots: Vec<PathBuf> = Vec::new();
        let mut stdin = false;
        for path in paths {
            if path.as_ref().as_os_str() == STDIN {
                stdin = true;
            } else {
                roots.push(path.as_ref().to_path_buf());
            }
        }
        if roots.is_empty() && !stdin {
            roots.push(PathBuf::from("."));
        }
        if stdin {
            let mut scanner = StreamScanner::new(self.options.chunk_size);
            let mut input = std::io::stdin().lock();
            tally.stream(
                &self.finder,
                &mut scanner,
                &self.options,
                &progress,
                STDIN,
                &mut input,
            );
        }
        walk::walk(&self.finder, &self.options, &progress, &tally, &roots);
        progress.finish();
        tally.into_report()
    }

    /// Searches one stream, named `name` in the findings.
    pub fn scan_reader(&self, name: &str, mut reader: impl Read) -> ScanReport {
        let progress = Progress::new(false);
        let tally = Tally::default();
        let mut scanner = StreamScanner::new(self.options.chunk_size);
        tally.stream(
            &self.finder,
            &mut scanner,
            &self.options,
            &progress,
            name,
            &mut reader,
        );
        tally.into_report()
    }
}
