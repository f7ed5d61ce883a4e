//! The three reports, parsed back: text lines, the JSON shape, SARIF 2.1.0.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

mod common;

use common::{Rng, Text, token};
use keyward_scan::report::{Shown, json, sarif, text};
use keyward_scan::{ScanOptions, ScanReport, Scanner};
use serde_json::Value;

/// A stream with two tokens (the second after non-ASCII text) and the
/// tokens themselves.
fn report() -> (ScanReport, Vec<String>) {
    let mut rng = Rng::new(11);
    let (a, b) = (token(&mut rng, "mt"), token(&mut rng, "mm_pat"));
    let mut text = Text::new("-");
    text.push("first = ")
        .plant(&a)
        .push("\nnaïve → ")
        .plant(&b)
        .push("\n");
    let scanner = Scanner::new(common::format(), ScanOptions::new()).unwrap();
    let report = scanner.scan_reader("dir with space/conf.txt", text.text.as_bytes());
    assert_eq!(report.findings.len(), 2);
    assert_eq!(report.bytes_searched, text.text.len() as u64);
    (report, vec![a, b])
}

fn secret_part(token: &str) -> &str {
    &token[token.len() - 20..]
}

fn render(write: impl Fn(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn text_lines_are_path_line_column_kind_and_preview() {
    let (report, tokens) = report();
    let out = render(|out| {
        text::write(&report, Shown::Preview, out).unwrap();
    });
    let key_a = &tokens[0][3..13];
    let key_b = &tokens[1][7..11];
    assert_eq!(
        out,
        format!(
            "dir with space/conf.txt:1:9: mt mt_{key_a}…\n\
             dir with space/conf.txt:2:12: mm_pat mm_pat_{key_b}…\n"
        )
    );
    for token in &tokens {
        assert!(!out.contains(secret_part(token)));
    }
    let full = render(|out| {
        text::write(&report, Shown::Token, out).unwrap();
    });
    assert!(full.contains(&format!(":1:9: mt {}\n", tokens[0])));
    assert_eq!(
        text::summary(&report),
        "2 tokens found in 1 file (106 B searched)"
    );
}

#[test]
fn json_has_the_documented_shape_and_the_token_only_when_asked() {
    let (report, tokens) = report();
    let out = render(|out| {
        json::write(&report, Shown::Preview, out).unwrap();
    });
    let value: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "binary_files_skipped",
            "bytes_searched",
            "files_searched",
            "findings",
            "findings_dropped",
            "problems",
            "problems_dropped"
        ]
    );
    let second = &value["findings"][1];
    assert_eq!(second["path"], "dir with space/conf.txt");
    assert_eq!(second["line"], 2);
    assert_eq!(second["column"], 12, "bytes: ï and → take 2 and 3");
    assert_eq!(second["char_column"], 9);
    assert_eq!(second["kind"], "mm_pat");
    assert_eq!(second["key_id"], &tokens[1][7..11]);
    assert_eq!(second["preview"], format!("mm_pat_{}…", &tokens[1][7..11]));
    assert!(second.get("token").is_none());
    for token in &tokens {
        assert!(!out.contains(secret_part(token)));
    }

    let full: Value = serde_json::from_str(&render(|out| {
        json::write(&report, Shown::Token, out).unwrap();
    }))
    .unwrap();
    assert_eq!(full["findings"][0]["token"], tokens[0].as_str());
}

#[test]
fn sarif_is_a_2_1_0_log_with_rules_results_and_locations() {
    let (report, tokens) = report();
    let format = common::format();
    let out = render(|out| sarif::write(&report, &format, Shown::Preview, out).unwrap());
    let log: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(log["$schema"], sarif::SCHEMA);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "keyward");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        rule_ids,
        [
            "keyward/token/mt",
            "keyward/token/tak",
            "keyward/token/mm_pat",
            "keyward/token/sk",
            "keyward/token/sk_live"
        ]
    );
    assert_eq!(run["columnKind"], "unicodeCodePoints");

    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let second = &results[1];
    assert_eq!(second["ruleId"], "keyward/token/mm_pat");
    assert_eq!(
        rules[second["ruleIndex"].as_u64().unwrap() as usize]["id"],
        second["ruleId"]
    );
    assert_eq!(second["level"], "error");
    assert!(
        second["message"]["text"]
            .as_str()
            .unwrap()
            .contains(&tokens[1][7..11])
    );
    let location = &second["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "dir%20with%20space/conf.txt"
    );
    let region = &location["region"];
    assert_eq!(region["startLine"], 2);
    assert_eq!(region["startColumn"], 9, "characters, as columnKind says");
    assert_eq!(region["endColumn"], 9 + tokens[1].len() as u64);
    assert!(region.get("snippet").is_none());
    assert_eq!(
        second["partialFingerprints"]["keywardKey/v1"],
        format!("mm_pat:{}", &tokens[1][7..11])
    );
    for token in &tokens {
        assert!(!out.contains(secret_part(token)));
    }

    let full: Value = serde_json::from_str(&render(|out| {
        sarif::write(&report, &format, Shown::Token, out).unwrap();
    }))
    .unwrap();
    assert_eq!(
        full["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["snippet"]["text"],
        tokens[0].as_str()
    );
}
