//! `keyward scan`: find the deployment's tokens in files, trees and
//! standard input (the search is `keyward-scan`'s), report them masked,
//! and with `--revoke` report each as leaked, which revokes its key.

use crate::context::{self, Context};
use crate::failure::{Failure, REFUSED, UNANSWERED};
use crate::output::Output;
use keyward::leak::{LeakReport, LeakVerdict};
use keyward::limits::MAX_REVOKE_REASON_LEN;
use keyward::token::TokenFormat;
use keyward::{Actor, KeyId};
use keyward_scan::report::{Shown, json, sarif, text};
use keyward_scan::{Finding, ScanOptions, ScanReport, Scanner};
use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Files and directories to search; `-` reads standard input.
    /// Without any, the current directory.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Write SARIF 2.1.0 (for code-scanning services) instead of text.
    #[arg(long)]
    sarif: bool,
    /// Show each token whole, secret included (default: prefix, key id and `…`).
    #[arg(long)]
    show_token: bool,
    /// Search hidden files and directories too.
    #[arg(long)]
    hidden: bool,
    /// Search what `.gitignore`, `.ignore` and Git's excludes leave out too.
    #[arg(long)]
    no_ignore: bool,
    /// Threads searching files (default: one per core).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Revoke every token found that is still live, as the operator; the
    /// audit event says where it was found. Needs the configured store.
    #[arg(long)]
    revoke: bool,
}

/// The longest location named in a revoke's reason: the reason's cap less
/// room for "leak reported by <operator> in keyward scan at ".
const MAX_LOCATION_LEN: usize = MAX_REVOKE_REASON_LEN - 160;

/// What `--revoke` did with one key.
#[derive(Debug, serde::Serialize)]
struct Revocation {
    key_id: KeyId,
    kind: String,
    /// `revoked`, `already_revoked`, or `unknown` (no key of this
    /// deployment has this id and secret; nothing was changed).
    outcome: &'static str,
    /// Where the token was found, `path:line:column`.
    found_at: Vec<String>,
}

pub(crate) async fn run(config_path: &Path, json_output: bool, args: Args) -> Result<(), Failure> {
    if json_output && args.sarif {
        return Err(Failure::usage("--json and --sarif: choose one"));
    }
    let config = context::load(config_path)?;
    let format = TokenFormat::new(config.kinds().iter().cloned())
        .map_err(|e| Failure::usage(format!("{}: {e}", config_path.display())))?;
    let options = ScanOptions::new()
        .hidden(args.hidden)
        .ignore_files(!args.no_ignore)
        .threads(args.threads.map_or(0, usize::from))
        .progress(std::io::stderr().is_terminal());
    let scanner = Scanner::new(format, options)
        .map_err(|e| Failure::usage(format!("{}: {e}", config_path.display())))?;
    // Open the store first: a `--revoke` that cannot reach it fails before
    // a long scan, not after.
    let context = if args.revoke {
        Some(Context::open(config_path, Output::new(json_output)).await?)
    } else {
        None
    };
    let report = scanner.scan(&args.paths);
    let revocations = match &context {
        Some(context) => revoke_found(context, &report.findings).await?,
        None => Vec::new(),
    };
    let shown = if args.show_token {
        Shown::Token
    } else {
        Shown::Preview
    };
    write_report(
        &scanner,
        &report,
        shown,
        json_output,
        args.sarif,
        &revocations,
    )?;
    let mut stderr = std::io::stderr().lock();
    for problem in &report.problems {
        let path = if problem.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", text::printable(&problem.path))
        };
        writeln!(
            stderr,
            "keyward: {path}{}",
            text::printable(&problem.message)
        )?;
    }
    if !json_output && !args.sarif {
        for revocation in &revocations {
            writeln!(
                stderr,
                "keyward: {} {}_{}… (found at {})",
                revocation.outcome.replace('_', " "),
                revocation.kind,
                revocation.key_id,
                text::printable(&revocation.found_at.join(", "))
            )?;
        }
        writeln!(stderr, "{}", text::summary(&report))?;
    }
    if report.found_any() {
        // Already reported: exit 1 with no further line.
        Err(Failure {
            message: String::new(),
            code: REFUSED,
        })
    } else if report.incomplete() {
        Err(Failure {
            message: String::new(),
            code: UNANSWERED,
        })
    } else {
        Ok(())
    }
}

fn write_report(
    scanner: &Scanner,
    report: &ScanReport,
    shown: Shown,
    json_output: bool,
    sarif_output: bool,
    revocations: &[Revocation],
) -> Result<(), Failure> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    if sarif_output {
        sarif::write(report, scanner.format(), shown, &mut out)?;
    } else if json_output {
        let mut value = json::to_value(report, shown);
        if let Some(object) = value.as_object_mut()
            && !revocations.is_empty()
        {
            object.insert("revocations".to_owned(), serde_json::to_value(revocations)?);
        }
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        text::write(report, shown, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Reports, once per key, the tokens found as leaked
/// ([`keyward::Keyward::report_leak`], the one path code hosts' leak
/// reports take too): a token is checked whole (checksum, then its key by
/// id and the digest in constant time; a made-up token that only borrows a
/// real key id revokes nothing), and its key, unless already revoked, is
/// revoked as the operator, with where it was found in the audit event.
async fn revoke_found(context: &Context, findings: &[Finding]) -> Result<Vec<Revocation>, Failure> {
    let mut by_key: BTreeMap<(String, KeyId), Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        by_key
            .entry((finding.kind().to_owned(), finding.key_id().clone()))
            .or_default()
            .push(finding);
    }
    let reporter = match &context.actor {
        Actor::Operator(name) => name.as_str().to_owned(),
        other => other.label(),
    };
    let format = context.keyward.format();
    let mut revocations = Vec::new();
    for ((kind, key_id), places) in by_key {
        let found_at: Vec<String> = places
            .iter()
            .map(|f| format!("{}:{}:{}", f.path(), f.line(), f.column()))
            .collect();
        let location = where_found(format, &found_at);
        // Every finding of the key: one of them may be the real token.
        let mut outcome = "unknown";
        for finding in &places {
            let report = LeakReport::new(finding.expose_token(), &reporter)
                .source("keyward scan")
                .url(&location);
            outcome = match context.keyward.report_leak(&report).await? {
                LeakVerdict::Confirmed(leak) if leak.newly_revoked => "revoked",
                LeakVerdict::Confirmed(_) => "already_revoked",
                _ => "unknown",
            };
            if outcome != "unknown" {
                break;
            }
        }
        revocations.push(Revocation {
            key_id,
            kind,
            outcome,
            found_at,
        });
    }
    Ok(revocations)
}

/// Where a key's token was found, for its revoke's audit reason: as many
/// places as fit in the reason (and how many more). A path is untrusted
/// text: control characters become `?`, and a path that itself spells a
/// token is left out (the reason would store the token).
fn where_found(format: &TokenFormat, found_at: &[String]) -> String {
    let mut reason = String::new();
    let mut named = 0usize;
    for place in found_at {
        let place: String = place
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if format.contains_token(&place) {
            continue;
        }
        let more = found_at.len() - named;
        // Room for this place and a "and N more" after it, within what the
        // reason leaves for the location.
        let tail = format!(" and {more} more").len();
        if reason.len() + 2 + place.len() + tail > MAX_LOCATION_LEN {
            break;
        }
        if named > 0 {
            reason.push_str(", ");
        }
        reason.push_str(&place);
        named += 1;
    }
    if named == 0 {
        return format!("{} places", found_at.len());
    }
    if named < found_at.len() {
        reason.push_str(&format!(" and {} more", found_at.len() - named));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward::TokenKind;

    fn format() -> TokenFormat {
        TokenFormat::new([TokenKind::new("mt").unwrap()]).unwrap()
    }

    #[test]
    fn the_reason_names_where_the_token_was_found_and_fits_the_cap() {
        let places = vec!["src/a.rs:1:2".to_owned(), "b c.txt:3:4".to_owned()];
        assert_eq!(where_found(&format(), &places), "src/a.rs:1:2, b c.txt:3:4");
        let many: Vec<String> = (0..500).map(|i| format!("dir/file{i}.txt:1:1")).collect();
        let reason = where_found(&format(), &many);
        assert!(reason.len() <= MAX_LOCATION_LEN, "{}", reason.len());
        assert!(reason.starts_with("dir/file0.txt:1:1, "));
        assert!(reason.ends_with(" more"), "{reason}");
    }

    #[test]
    fn control_characters_and_token_spelling_paths_stay_out_of_the_reason() {
        let token = "mt_AbCdEf1234xxxxxxxxxxxxxxxxxxxxxxxxxxx47RLeo";
        let places = vec![
            format!("{token}.txt:1:1"),
            "evil\u{1b}[2J\nname:2:1".to_owned(),
        ];
        assert_eq!(
            where_found(&format(), &places),
            "evil?[2J?name:2:1 and 1 more"
        );
        let only_token = vec![format!("{token}:1:1")];
        assert_eq!(where_found(&format(), &only_token), "1 places");
    }
}
