//! The SARIF 2.1.0 report, which code-scanning services (GitHub code
//! scanning, GitLab, Azure DevOps, IDE viewers) ingest.
//!
//! One run, whose tool is `keyward` with one rule per configured kind
//! (`keyward/token/<prefix>`, level `error`), and one result per finding:
//! its `ruleId` and `ruleIndex`, `level`, a `message` with the masked
//! preview, and a location whose `physicalLocation` has the
//! `artifactLocation.uri` (the path as a relative URI reference, or a
//! `file://` URI for an absolute path, percent-encoded) and a `region`
//! with `startLine`, `startColumn`, `endLine` and `endColumn`. Columns are
//! in characters: the run says `"columnKind": "unicodeCodePoints"`. Each
//! result's `partialFingerprints` hold `keywardKey/v1`, `<prefix>:<key id>`,
//! so the same leaked key is one alert wherever it moves. The token itself
//! appears (as the region's `snippet`) only with [`Shown::Token`].

use super::Shown;
use crate::{Finding, ScanReport};
use keyward_core::token::TokenFormat;
use serde_json::{Value, json};
use std::io::{self, Write};

/// The schema the document declares.
pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The rule id of a kind's findings.
pub fn rule_id(prefix: &str) -> String {
    format!("keyward/token/{prefix}")
}

/// The SARIF document for `report`, whose findings are tokens of `format`.
pub fn to_value(report: &ScanReport, format: &TokenFormat, shown: Shown) -> Value {
    let rules: Vec<Value> = format
        .kinds()
        .iter()
        .map(|kind| {
            json!({
                "id": rule_id(kind.prefix()),
                "name": format!("LeakedKeywardToken_{}", kind.prefix()),
                "shortDescription": {
                    "text": format!("A keyward token of kind `{}` is exposed", kind.prefix())
                },
                "fullDescription": {
                    "text": format!(
                        "A `{}_` token whose checksum is valid: a real credential unless it was made up for a test.",
                        kind.prefix()
                    )
                },
                "help": {
                    "text": "Revoke the key (`keyward revoke KEY_ID`, or `keyward scan --revoke`), issue a replacement, and remove the token from the file and its history."
                },
                "defaultConfiguration": { "level": "error" },
                "properties": { "tags": ["security", "secret"] }
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| result(finding, format, shown))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "keyward",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results
        }]
    })
}

fn result(finding: &Finding, format: &TokenFormat, shown: Shown) -> Value {
    let rule_index = format
        .kinds()
        .iter()
        .position(|kind| kind.prefix() == finding.kind())
        .unwrap_or(0);
    let mut region = json!({
        "startLine": finding.line(),
        "startColumn": finding.char_column(),
        "endLine": finding.line(),
        "endColumn": finding.char_column() + finding.len() as u64,
    });
    if shown == Shown::Token
        && let Some(region) = region.as_object_mut()
    {
        region.insert(
            "snippet".to_owned(),
            json!({ "text": finding.expose_token() }),
        );
    }
    json!({
        "ruleId": rule_id(finding.kind()),
        "ruleIndex": rule_index,
        "level": "error",
        "message": {
            "text": format!(
                "A keyward token of kind `{}` ({}) is exposed here: revoke key {}.",
                finding.kind(),
                finding.preview(),
                finding.key_id()
            )
        },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri(finding.path()) },
                "region": region
            }
        }],
        "partialFingerprints": {
            "keywardKey/v1": format!("{}:{}", finding.kind(), finding.key_id())
        }
    })
}

/// `path` as a URI reference: relative paths stay relative, absolute ones
/// become `file://` URIs; bytes outside the unreserved set and `/` are
/// percent-encoded (a space is `%20`).
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for &byte in path.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Writes the SARIF document and a newline.
pub fn write(
    report: &ScanReport,
    format: &TokenFormat,
    shown: Shown,
    out: &mut dyn Write,
) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, format, shown))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("src/a b.rs"), "src/a%20b.rs");
        assert_eq!(uri("/tmp/x#1.txt"), "file:///tmp/x%231.txt");
        assert_eq!(uri("dir/é.txt"), "dir/%C3%A9.txt");
        assert_eq!(uri("-"), "-");
    }
}
