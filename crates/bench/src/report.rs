//! The results table: criterion's estimates from one run, each figure as a
//! ratio to the floor measured in that same run, checked against its target.
//!
//! The benches record what the run was ([`RunLog`]: mode, machine, key
//! counts, setup times, skips) next to criterion's output; the `report`
//! binary reads both and renders the table ([`render`]). A figure whose
//! estimate is older than the run's start did not run and is shown as such,
//! never taken from an earlier run.

use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The file, in criterion's directory, that describes the latest run.
pub const RUN_FILE: &str = "keyward-run.json";

/// Where criterion writes: `$CRITERION_HOME`, else `<target dir>/criterion`.
pub fn criterion_dir(target_dir: &Path) -> PathBuf {
    match std::env::var_os("CRITERION_HOME") {
        Some(home) => PathBuf::from(home),
        None => target_dir.join("criterion"),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The CPU model, from `/proc/cpuinfo` where there is one.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// What the benches record about their run, written to [`RUN_FILE`] after
/// every change so an interrupted run still leaves a consistent file.
#[derive(Debug)]
pub struct RunLog {
    path: PathBuf,
    state: Mutex<Map<String, Value>>,
}

impl RunLog {
    /// Starts the log of a new run in `dir` (criterion's directory).
    pub fn start(dir: &Path, short: bool) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let state = json!({
            "mode": if short { "short" } else { "full" },
            "started_unix": unix_now(),
            "cpu": cpu_model(),
            "cores": cores,
            "keys": {},
            "setup_seconds": {},
            "notes": [],
        });
        let log = Self {
            path: dir.join(RUN_FILE),
            state: Mutex::new(match state {
                Value::Object(map) => map,
                _ => Map::new(),
            }),
        };
        std::fs::create_dir_all(dir).expect("criterion's directory");
        log.save(&log.state.lock().expect("run log"));
        log
    }

    fn save(&self, state: &Map<String, Value>) {
        let text = serde_json::to_string_pretty(state).expect("JSON");
        std::fs::write(&self.path, text).expect("write the run log");
    }

    fn update(&self, f: impl FnOnce(&mut Map<String, Value>)) {
        let mut state = self.state.lock().expect("run log");
        f(&mut state);
        self.save(&state);
    }

    /// How many keys the store called `store` holds.
    pub fn keys(&self, store: &str, keys: usize) {
        self.update(|s| {
            if let Some(Value::Object(m)) = s.get_mut("keys") {
                m.insert(store.to_owned(), json!(keys));
            }
        });
    }

    /// How long building `what` took.
    pub fn setup(&self, what: &str, seconds: f64) {
        self.update(|s| {
            if let Some(Value::Object(m)) = s.get_mut("setup_seconds") {
                m.insert(what.to_owned(), json!((seconds * 100.0).round() / 100.0));
            }
        });
    }

    /// A remark for the report (a skipped group, say).
    pub fn note(&self, note: &str) {
        self.update(|s| {
            if let Some(Value::Array(notes)) = s.get_mut("notes") {
                notes.push(json!(note));
            }
        });
    }

    /// Marks the run finished.
    pub fn finish(&self) {
        self.update(|s| {
            let started = s.get("started_unix").and_then(Value::as_f64).unwrap_or(0.0);
            s.insert("finished_unix".to_owned(), json!(unix_now()));
            s.insert(
                "wall_seconds".to_owned(),
                json!((unix_now() - started).round()),
            );
        });
    }
}

/// What a figure is checked against.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// No target: context for the others.
    None,
    /// At most this many times the floor.
    FloorRatio(f64),
    /// At most `max` times the figure `base` (by its id).
    AtMostTimes {
        /// The figure compared with.
        base: &'static str,
        /// The largest ratio allowed.
        max: f64,
        /// What `base` is, for the table.
        what: &'static str,
    },
    /// At least this many operations per second (per core: single-threaded).
    OpsPerSecond(f64),
    /// Throughput at least `min` times that of `single` (by its id).
    Scaling {
        /// The single-thread figure.
        single: &'static str,
        /// The least speed-up allowed.
        min: f64,
    },
}

/// One row of the table: a criterion benchmark id (`group/function`).
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Criterion's id: the path under criterion's directory.
    pub id: &'static str,
    /// What it measures.
    pub label: &'static str,
    /// Which store's key count applies (a key of the run log's `keys`).
    pub keys: &'static str,
    /// The floor it is a ratio to.
    pub floor: &'static str,
    /// What it must meet.
    pub target: Target,
}

/// The floor at 1k keys: everything in CPU caches.
pub const FLOOR_1K: &str = "floor/1k";
/// The floor at 100k keys.
pub const FLOOR_100K: &str = "floor/100k";
/// The floor at 1M keys.
pub const FLOOR_1M: &str = "floor/1M";

const fn row(
    id: &'static str,
    label: &'static str,
    keys: &'static str,
    floor: &'static str,
    target: Target,
) -> Row {
    Row {
        id,
        label,
        keys,
        floor,
        target,
    }
}

/// Every row, in table order.
pub const ROWS: &[Row] = &[
    row(
        FLOOR_1K,
        "Floor: SHA-256 of the token + `HashMap` lookup",
        "memory_1k",
        FLOOR_1K,
        Target::None,
    ),
    row(
        "verify_cached/1k",
        "Verify, cache hit (every key in CPU caches)",
        "memory_1k",
        FLOOR_1K,
        Target::None,
    ),
    row(
        FLOOR_100K,
        "Floor: SHA-256 of the token + `HashMap` lookup",
        "memory_100k",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "verify_cached/100k",
        "Verify, cache hit",
        "memory_100k",
        FLOOR_100K,
        Target::FloorRatio(2.0),
    ),
    row(
        "verify_memory/100k",
        "Verify, memory store, no cache",
        "memory_100k",
        FLOOR_100K,
        Target::None,
    ),
    row(
        FLOOR_1M,
        "Floor: SHA-256 of the token + `HashMap` lookup",
        "memory_1M",
        FLOOR_1M,
        Target::None,
    ),
    row(
        "verify_cached/1M",
        "Verify, cache hit",
        "memory_1M",
        FLOOR_1M,
        Target::FloorRatio(2.0),
    ),
    row(
        "verify_memory/1M",
        "Verify, memory store, no cache",
        "memory_1M",
        FLOOR_1M,
        Target::None,
    ),
    row(
        "verify_threads/1",
        "Verify, cache hit, 1 thread (wall time per verify)",
        "memory_100k",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "verify_threads/2",
        "Verify, cache hit, 2 threads (wall time per verify)",
        "memory_100k",
        FLOOR_100K,
        Target::Scaling {
            single: "verify_threads/1",
            min: 1.6,
        },
    ),
    row(
        "verify_garbage/checksum",
        "Verify a garbage token (bad checksum)",
        "memory_100k",
        FLOOR_100K,
        Target::OpsPerSecond(10e6),
    ),
    row(
        "sqlite/raw_lookup",
        "SQLite: raw prepared point lookup (rusqlite)",
        "sqlite",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "sqlite/verify",
        "Verify, SQLite store, no cache",
        "sqlite",
        FLOOR_100K,
        Target::AtMostTimes {
            base: "sqlite/raw_lookup",
            max: 3.0,
            what: "raw lookup",
        },
    ),
    row(
        "postgres/raw_select",
        "Postgres: bare prepared point SELECT (same pool)",
        "postgres",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "postgres/verify",
        "Verify, Postgres store, no cache",
        "postgres",
        FLOOR_100K,
        Target::AtMostTimes {
            base: "postgres/raw_select",
            max: 1.3,
            what: "bare SELECT",
        },
    ),
    row(
        "issue/memory",
        "Issue, memory store",
        "issue_memory",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "issue/sqlite",
        "Issue, SQLite store",
        "sqlite",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "issue/postgres",
        "Issue, Postgres store",
        "postgres",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "list_50/memory",
        "List 50 keys of an owner, memory store",
        "list_memory",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "list_50/sqlite",
        "List 50 keys of an owner, SQLite store",
        "sqlite",
        FLOOR_100K,
        Target::None,
    ),
    row(
        "list_50/postgres",
        "List 50 keys of an owner, Postgres store",
        "postgres",
        FLOOR_100K,
        Target::None,
    ),
];

/// Memory per cached key, as the `report` binary measures it.
#[derive(Debug, Clone, Copy)]
pub struct MemoryFigure {
    /// Keys cached.
    pub keys: usize,
    /// Bytes still allocated per key after verifying each once (cache entry,
    /// snapshot, usage queue).
    pub per_key: f64,
    /// The same after the usage flush emptied the queue.
    pub per_key_flushed: f64,
    /// Allocations still live per key (each costs the allocator's own
    /// header and rounding on top of the bytes counted).
    pub allocations_per_key: f64,
}

/// The largest memory per cached key allowed.
pub const MEMORY_TARGET: f64 = 512.0;

/// One run's results: the run log and the estimates written since it started.
#[derive(Debug)]
pub struct Results {
    run: Map<String, Value>,
    dir: PathBuf,
}

impl Results {
    /// Reads the run log in criterion's directory `dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join(RUN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "no run log at {} ({e}): run `cargo bench -p keyward-bench` first",
                path.display()
            )
        })?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(run)) => Ok(Self {
                run,
                dir: dir.to_owned(),
            }),
            _ => Err(format!("{} is not a run log", path.display())),
        }
    }

    fn started(&self) -> f64 {
        self.run
            .get("started_unix")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    }

    /// Nanoseconds per operation of benchmark `id` in this run (criterion's
    /// median), or `None` if it did not run since the run started.
    pub fn ns(&self, id: &str) -> Option<f64> {
        let path = self.dir.join(id).join("new").join("estimates.json");
        let written = std::fs::metadata(&path).ok()?.modified().ok()?;
        let written = written.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
        if written < self.started() {
            return None;
        }
        let estimates: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        estimates
            .get("median")?
            .get("point_estimate")?
            .as_f64()
            .filter(|ns| *ns > 0.0)
    }

    fn str(&self, key: &str) -> String {
        match self.run.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "?".to_owned(),
        }
    }

    fn keys(&self, store: &str) -> Option<u64> {
        self.run.get("keys")?.get(store)?.as_u64()
    }
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn duration(ns: f64) -> String {
    match ns {
        ns if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        ns if ns >= 1e4 => format!("{:.1} µs", ns / 1e3),
        ns if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        ns => format!("{ns:.0} ns"),
    }
}

fn rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1e6 => format!("{:.1} M/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1} k/s", r / 1e3),
        r => format!("{r:.0} /s"),
    }
}

fn verdict(met: bool, value: &str) -> String {
    if met {
        format!("yes ({value})")
    } else {
        format!("**NO** ({value})")
    }
}

/// The target and whether it is met, as two table cells.
fn check(results: &Results, row: &Row, ns: f64) -> (String, String) {
    match row.target {
        Target::None => ("—".to_owned(), "—".to_owned()),
        Target::FloorRatio(max) => match results.ns(row.floor) {
            Some(floor) => {
                let ratio = ns / floor;
                (
                    format!("≤ {max}× floor"),
                    verdict(ratio <= max, &format!("{ratio:.2}×")),
                )
            }
            None => (format!("≤ {max}× floor"), "floor not run".to_owned()),
        },
        Target::AtMostTimes { base, max, what } => match results.ns(base) {
            Some(base) => {
                let ratio = ns / base;
                (
                    format!("≤ {max}× {what}"),
                    verdict(ratio <= max, &format!("{ratio:.2}×")),
                )
            }
            None => (format!("≤ {max}× {what}"), format!("{what} not run")),
        },
        Target::OpsPerSecond(min) => {
            let per_second = 1e9 / ns;
            (
                format!("≥ {} per core", rate(min)),
                verdict(per_second >= min, &rate(per_second)),
            )
        }
        Target::Scaling { single, min } => match results.ns(single) {
            Some(one) => {
                let speedup = one / ns;
                (
                    format!("≥ {min}× 1-thread throughput"),
                    verdict(speedup >= min, &format!("{speedup:.2}×")),
                )
            }
            None => (
                format!("≥ {min}× 1-thread throughput"),
                "1 thread not run".to_owned(),
            ),
        },
    }
}

/// The markdown: what the run was, then the table.
pub fn render(results: &Results, memory: Option<MemoryFigure>) -> String {
    let mut out = String::new();
    let mode = results.str("mode");
    let cores = results.str("cores");
    let cpu = results.str("cpu");
    let wall = results
        .run
        .get("wall_seconds")
        .and_then(Value::as_f64)
        .map_or_else(
            || "unfinished".to_owned(),
            |s| format!("{s:.0} s including setup"),
        );
    let _ = writeln!(
        out,
        "Run: {mode} mode ({wall}), {cores} cores ({cpu}). Each time is criterion's median; \
         × floor is the ratio to the floor at the same key count, measured in the same run."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Figure | Keys in store | Time per op | × floor | Target | Met? |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | --- | --- |");
    for row in ROWS {
        let keys = results.keys(row.keys).map_or_else(|| "—".to_owned(), count);
        let Some(ns) = results.ns(row.id) else {
            let _ = writeln!(out, "| {} | {keys} | not run | — | — | — |", row.label);
            continue;
        };
        let ratio = results
            .ns(row.floor)
            .map_or_else(|| "—".to_owned(), |floor| format!("{:.2}", ns / floor));
        let (target, met) = check(results, row, ns);
        let _ = writeln!(
            out,
            "| {} | {keys} | {} | {ratio} | {target} | {met} |",
            row.label,
            duration(ns)
        );
    }
    if let Some(memory) = memory {
        let met = memory.per_key <= MEMORY_TARGET;
        let _ = writeln!(
            out,
            "| Memory per cached key ({:.1} allocations; {:.0} B after the usage flush) | {} | {:.0} B | — | ≤ {MEMORY_TARGET:.0} B | {} |",
            memory.allocations_per_key,
            memory.per_key_flushed,
            count(memory.keys as u64),
            memory.per_key,
            verdict(met, &format!("{:.0} B", memory.per_key))
        );
    }
    let mut extras = Vec::new();
    if let Some(Value::Object(setup)) = results.run.get("setup_seconds") {
        let parts: Vec<String> = setup.iter().map(|(k, v)| format!("{k} {v} s")).collect();
        if !parts.is_empty() {
            extras.push(format!("Setup: {}.", parts.join(", ")));
        }
    }
    if let Some(Value::Array(notes)) = results.run.get("notes") {
        extras.extend(notes.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if !extras.is_empty() {
        let _ = writeln!(out);
        for extra in extras {
            let _ = writeln!(out, "{extra}");
            let _ = writeln!(out);
        }
    }
    out.trim_end().to_owned() + "\n"
}

/// Replaces the text between `<!-- report:start -->` and
/// `<!-- report:end -->` in `doc` with `table`.
pub fn splice(doc: &str, table: &str) -> Result<String, String> {
    const START: &str = "<!-- report:start -->";
    const END: &str = "<!-- report:end -->";
    let (Some(start), Some(end)) = (doc.find(START), doc.find(END)) else {
        return Err(format!("the document has no {START} … {END} markers"));
    };
    if end < start {
        return Err("the report markers are out of order".to_owned());
    }
    Ok(format!(
        "{}{START}\n\n{}\n{}",
        &doc[..start],
        table.trim_end(),
        &doc[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_between_markers() {
        let doc = "intro\n<!-- report:start -->\nold\n<!-- report:end -->\nrest\n";
        let out = splice(doc, "| new |\n").unwrap();
        assert_eq!(
            out,
            "intro\n<!-- report:start -->\n\n| new |\n<!-- report:end -->\nrest\n"
        );
        assert_eq!(splice(&out, "| new |\n").unwrap(), out);
        assert!(splice("no markers", "x").is_err());
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(count(100_000), "100k");
        assert_eq!(count(1_000_000), "1M");
        assert_eq!(count(1_500), "1500");
        assert_eq!(duration(470.4), "470 ns");
        assert_eq!(duration(1_014.0), "1.01 µs");
        assert_eq!(duration(83_622.0), "83.6 µs");
        assert_eq!(rate(7.1e6), "7.1 M/s");
    }

    #[test]
    fn every_row_compares_with_a_figure_of_the_table() {
        let ids: Vec<&str> = ROWS.iter().map(|r| r.id).collect();
        for row in ROWS {
            assert!(ids.contains(&row.floor), "{}", row.id);
            match row.target {
                Target::AtMostTimes { base, .. } => assert!(ids.contains(&base)),
                Target::Scaling { single, .. } => assert!(ids.contains(&single)),
                _ => {}
            }
        }
    }
}
