//! The JSON report, for scripts. Its shape is stable: fields may be added,
//! none is renamed or removed.
//!
//! ```json
//! {
//!   "findings": [
//!     {
//!       "path": "src/config.rs",
//!       "line": 12,
//!       "column": 17,
//!       "char_column": 17,
//!       "kind": "mt",
//!       "key_id": "AbCdEf1234",
//!       "preview": "mt_AbCdEf1234…"
//!     }
//!   ],
//!   "files_searched": 130,
//!   "bytes_searched": 1258291,
//!   "binary_files_skipped": 1,
//!   "findings_dropped": 0,
//!   "problems": [{ "path": "missing", "message": "No such file or directory (os error 2)" }],
//!   "problems_dropped": 0
//! }
//! ```
//!
//! At most [`DEFAULT_MAX_FINDINGS`](crate::DEFAULT_MAX_FINDINGS) findings (by default) and
//! [`MAX_PROBLEMS`](crate::MAX_PROBLEMS) problems are listed; the rest
//! are counted in `findings_dropped` and `problems_dropped`.
//! `line`, `column` and `char_column` count from 1; `column` is in bytes of
//! UTF-8 (ripgrep's), `char_column` in characters. A finding has a `token`
//! field, the whole token, only when written with [`Shown::Token`].

use super::Shown;
use crate::ScanReport;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct Report<'a> {
    findings: Vec<Finding<'a>>,
    files_searched: u64,
    bytes_searched: u64,
    binary_files_skipped: u64,
    findings_dropped: u64,
    problems: Vec<Problem<'a>>,
    problems_dropped: u64,
}

#[derive(Serialize)]
struct Finding<'a> {
    path: &'a str,
    line: u64,
    column: u64,
    char_column: u64,
    kind: &'a str,
    key_id: &'a str,
    preview: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

#[derive(Serialize)]
struct Problem<'a> {
    path: &'a str,
    message: &'a str,
}

/// The report as a JSON value of the shape above.
pub fn to_value(report: &ScanReport, shown: Shown) -> serde_json::Value {
    let report = Report {
        findings: report
            .findings
            .iter()
            .map(|f| Finding {
                path: f.path(),
                line: f.line(),
                column: f.column(),
                char_column: f.char_column(),
                kind: f.kind(),
                key_id: f.key_id().as_str(),
                preview: f.preview(),
                token: (shown == Shown::Token).then(|| f.expose_token()),
            })
            .collect(),
        files_searched: report.files_searched,
        bytes_searched: report.bytes_searched,
        binary_files_skipped: report.binary_files_skipped,
        findings_dropped: report.findings_dropped,
        problems: report
            .problems
            .iter()
            .map(|p| Problem {
                path: &p.path,
                message: &p.message,
            })
            .collect(),
        problems_dropped: report.problems_dropped,
    };
    serde_json::to_value(report).unwrap_or(serde_json::Value::Null)
}

/// Writes the report as one JSON document and a newline.
pub fn write(report: &ScanReport, shown: Shown, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, shown))?;
    writeln!(out)
}
