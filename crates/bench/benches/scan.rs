//! The scan figure: `keyward scan` against `rg` with keyward's exported
//! regex, alternately on the same trees (a planted tree, and the cargo
//! registry's sources), paired run by run. See docs/performance.md.
//!
//! ```sh
//! cargo build --release -p keyward-cli
//! cargo bench -p keyward-bench --bench scan                      # prints the table
//! cargo bench -p keyward-bench --bench scan -- --write docs/performance.md
//! ```
//!
//! `KEYWARD_BIN` names another `keyward` binary; `KEYWARD_SCAN_TREE` adds
//! (instead of the registry) a tree of your own; `KEYWARD_BENCH_SHORT=1`
//! takes 3 rounds instead of 15.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing,
    reason = "benchmark harness: a failed setup should stop the run loudly, and its output is the point"
)]

use keyward_bench::scan::{self, TreeFigure};
use keyward_bench::{fixture, report, results};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo bench -p keyward-bench --bench scan [-- --write docs/performance.md]";

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_owned)
}

fn say(line: &str) {
    eprintln!("keyward-bench scan: {line}");
}

fn main() -> ExitCode {
    let mut write = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--write" => match args.next() {
                Some(path) => write = Some(PathBuf::from(path)),
                None => {
                    eprintln!("{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            // The verify bench's filter, passed to every bench target.
            _ => {}
        }
    }
    let binary = std::env::var_os("KEYWARD_BIN").map_or_else(
        || target_dir().join("release").join("keyward"),
        PathBuf::from,
    );
    if !binary.is_file() {
        say(&format!(
            "skipped: no keyward binary at {} (cargo build --release -p keyward-cli, or set KEYWARD_BIN)",
            binary.display()
        ));
        return ExitCode::SUCCESS;
    }
    if std::process::Command::new("rg")
        .arg("--version")
        .output()
        .is_err()
    {
        say("skipped: rg (ripgrep) is not installed");
        return ExitCode::SUCCESS;
    }
    let rounds = if fixture::short_mode() { 3 } else { 15 };
    let format = scan::format();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("keyward.toml");
    std::fs::write(&config, scan::KINDS_TOML).unwrap();
    let planted_root = work.path().join("planted");
    let expected = scan::plant(&planted_root);
    let mut trees: Vec<(PathBuf, TreeFigure)> = vec![(
        planted_root,
        TreeFigure::new("planted tree", Some(expected)),
    )];
    let real = std::env::var_os("KEYWARD_SCAN_TREE")
        .map(PathBuf::from)
        .or_else(scan::registry_sources);
    match real {
        Some(root) => {
            let name = format!("`{}`", root.display());
            trees.push((root, TreeFigure::new(&name, None)));
        }
        None => say("no cargo registry sources found: the planted tree only"),
    }
    let load_start = results::load_average().unwrap_or_default();
    let started = std::time::Instant::now();
    say(&format!(
        "{rounds} rounds (and one warm-up) over {} trees",
        trees.len()
    ));
    // A warm-up round (page cache, binaries), not recorded.
    for (root, figure) in &mut trees {
        let mut warm = TreeFigure::new(&figure.name, None);
        warm.round(0, &binary, &config, root, &format);
    }
    // Round after round, each tree in turn.
    for round in 0..rounds {
        for (root, figure) in &mut trees {
            figure.round(round, &binary, &config, root, &format);
        }
    }
    let load_end = results::load_average().unwrap_or_default();
    let header = format!(
        "Run: {rounds} rounds per tree ({:.0} s), {} cores ({}); load average {load_start} at the start, {load_end} at the end. Each round runs the three commands once per tree, in an order that turns round by round; times are medians of whole-process runs (start to exit, output read through a pipe); the throughput ratio is rg's time over keyward scan's, pair by pair (the same bytes), its median and 5th–95th percentile.",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, usize::from),
        results::cpu_model()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let figures: Vec<TreeFigure> = trees.into_iter().map(|(_, f)| f).collect();
    let table = scan::table(&figures, &header);
    println!("{table}");
    let samples = serde_json::json!(
        figures
            .iter()
            .map(|f| serde_json::json!({
                "tree": f.name,
                "keyward_s": f.keyward_s,
                "rg_s": f.rg_s,
                "rg_ascii_s": f.rg_ascii_s,
                "keyward_found": f.keyward_found.len(),
                "rg_found": f.rg_found.len(),
                "rg_candidates": f.rg_candidates,
            }))
            .collect::<Vec<_>>()
    );
    let dir = results::results_dir(&target_dir());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("scan.json"),
        serde_json::to_string_pretty(&samples).unwrap(),
    )
    .unwrap();
    for figure in &figures {
        if !figure.counts_hold() {
            let missing: Vec<_> = figure
                .expected
                .iter()
                .flatten()
                .filter(|p| !figure.keyward_found.contains(*p))
                .take(5)
                .collect();
            say(&format!(
                "{}: the counts differ (keyward scan {}, rg {}, rg ASCII {}); first planted but not found: {missing:?}",
                figure.name,
                figure.keyward_found.len(),
                figure.rg_found.len(),
                figure.rg_ascii_found.len()
            ));
        }
    }
    if let Some(path) = write {
        // `cargo bench` runs this from the package's directory: a relative
        // path is taken from the workspace root, where the docs are.
        let path = if path.is_relative() && !path.exists() {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(path)
        } else {
            path
        };
        let doc = std::fs::read_to_string(&path).unwrap();
        match report::splice_marked(&doc, "scan", &table) {
            Ok(doc) => std::fs::write(&path, doc).unwrap(),
            Err(e) => {
                say(&format!("{}: {e}", path.display()));
                return ExitCode::FAILURE;
            }
        }
        say(&format!("wrote the table into {}", path.display()));
    }
    if figures.iter().all(TreeFigure::counts_hold) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
