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
            finding.path(),
            finding.line(),
            finding.column(),
            finding.kind(),
            value
        )?;
    }
    Ok(())
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
    if !report.problems.is_empty() {
        line.push_str(&format!(
            ", {} not searched",
            plural(report.problems.len() as u64, "path")
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
    fn sizes_read_as_people_say_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(2, "file"), "2 files");
    }
}
