//! The human report: `path:line:column: kind preview`, one line per
//! finding, and a summary line for standard error.

use super::Shown;
use crate::ScanReport;
use std::io::{self, Write};

/// Writes one line per finding: `path:line:column: kind shown`, for
/// example `src/config.rs:12:17: mt mt_AbCdEf1234…`. The form of
/// compilers and ripgrep, so editors and terminals jump to the place.
pub fn write(report: &ScanReport, shown: Shown, out: &mut dyn Write) -> io::Result<()> {
    for finding in &report.findings {
        let value = match shown {
            Shown::Preview => finding.preview(),
            Shown::Token => finding.expose_token().to_owned(),
        };
        writeln!(
            out,
            "{}:{}:{}: {} {}",
            printable(finding.path()),
            finding.line(),
            finding.column(),
            finding.kind(),
            value
        )?;
    }
    Ok(())
}

/// `text` with control characters and bidirectional overrides escaped
/// (`\n`, `\u{1b}`, `\u{202e}`): a file name in a scanned tree is anyone's
/// text, and must not move the cursor, recolour or retitle the terminal,
/// or reorder what the line shows.
pub fn printable(text: &str) -> String {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One line saying what was found and searched, for example
/// `2 tokens found in 130 files (1.2 MiB searched, 1 binary file skipped)`.
pub fn summary(report: &ScanReport) -> String {
    let found = report.findings.len() as u64 + report.findings_dropped;
    let mut line = format!(
        "{} found in {} ({} searched",
        plural(found, "token"),
        plural(report.files_searched, "file"),
        bytes(report.bytes_searched)
    );
    if report.binary_files_skipped > 0 {
        line.push_str(&format!(
            ", {} skipped",
            plural(report.binary_files_skipped, "binary file")
        ));
    }
    if report.findings_dropped > 0 {
        line.push_str(&format!(
            ", {} past the limit not listed",
            report.findings_dropped
        ));
    }
    if report.incomplete() {
        line.push_str(&format!(
            ", {} not searched",
            plural(
                report.problems.len() as u64 + report.problems_dropped,
                "path"
            )
        ));
    }
    line.push(')');
    line
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = "KiB";
    for next in UNITS.iter().skip(1) {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_in_paths_are_escaped() {
        assert_eq!(printable("src/a.rs"), "src/a.rs");
        assert_eq!(printable("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\u{a}c");
        assert_eq!(printable("x\u{202e}txt.exe"), "x\\u{202e}txt.exe");
        assert_eq!(printable("été/日本"), "été/日本");
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(2, "file"), "2 files");
    }
}
