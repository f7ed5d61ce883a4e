//! The results table of one run ([`render`]), each figure's ratio to the
//! reference it was paired with, checked against its target; and the
//! comparison of two runs' ratios ([`compare`]).
//!
//! Everything is computed from the samples in the run's file (see
//! [`crate::results`]), never from an earlier run: a figure the run did
//! not measure is shown as not run.

use crate::paired::Spread;
use crate::results::{Figure, Run};
use std::fmt::Write as _;

/// What a figure is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// No target: context for the others.
    None,
    /// Time per operation at most `max` times the reference's (the median
    /// per-pair ratio).
    AtMostTimes(f64),
    /// Throughput at least `min` times the reference's: the median per-pair
    /// speed-up, reference time / figure time.
    Scaling(f64),
    /// At least this many operations per second (single-threaded: per
    /// core), from the median time per operation.
    OpsPerSecond(f64),
    /// The median time per operation at most this many nanoseconds (and
    /// the 95th percentile within it too, for "well under").
    AtMostNs(f64),
    /// At least `min_throughput` times the reference's throughput (the
    /// median per-pair speed-up), adding at most `max_added_ns` to the
    /// median time per operation (median figure − median reference).
    Overhead {
        /// Throughput at least this fraction of the reference's.
        min_throughput: f64,
        /// At most this many nanoseconds added.
        max_added_ns: f64,
    },
}

/// A signed 1,000-token leak report is judged in at most this long: well
/// under a second (half of one), at the 95th percentile too.
pub const LEAK_REPORT_MAX_NS: f64 = 500_000_000.0;

/// An HTTP route behind keyward: at least this fraction of the throughput
/// of the same route without it.
pub const HTTP_THROUGHPUT_MIN: f64 = 0.95;
/// And at most this many nanoseconds added to the median request.
pub const HTTP_ADDED_MAX_NS: f64 = 5_000.0;

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The figure's id.
    pub id: &'static str,
    /// What it measures.
    pub label: &'static str,
    /// What its reference is, for the table (`—` if it has none).
    pub reference: &'static str,
    /// What it must meet.
    pub target: Target,
}

const fn row(
    id: &'static str,
    label: &'static str,
    reference: &'static str,
    target: Target,
) -> Row {
    Row {
        id,
        label,
        reference,
        target,
    }
}

/// Cache hits at most this many times the floor (100k and 1M keys).
pub const CACHE_HIT_MAX: f64 = 1.25;
/// Two threads at least this many times the throughput of one.
pub const SCALING_MIN: f64 = 1.6;
/// Garbage tokens rejected per second per core, at least.
pub const GARBAGE_MIN: f64 = 15e6;
/// Uncached SQLite verify at most this many times the raw lookup.
pub const SQLITE_MAX: f64 = 1.5;
/// Uncached Postgres verify at most this many times the bare SELECT.
pub const POSTGRES_MAX: f64 = 1.15;
/// A cache hit at most this many times prefixed-api-key's parse, `HashMap`
/// lookup and digest check (10k and 100k keys).
pub const PEER_CACHE_HIT_MAX: f64 = 0.8;
/// The memory store without a cache at most this many times the same.
pub const PEER_MEMORY_MAX: f64 = 1.2;
/// Uncached SQLite verify at most this many times modo-rs's on its libsql
/// file (10k and 100k keys).
pub const PEER_SQLITE_MAX: f64 = 0.5;
/// The largest memory per cached key allowed, in bytes.
pub const MEMORY_TARGET: f64 = 448.0;
/// Two runs agree when each ratio differs by at most this fraction.
pub const AGREEMENT: f64 = 0.10;

/// Every row, in table order.
pub const ROWS: &[Row] = &[
    row(
        "verify_cached/1k",
        "Verify, cache hit (every key in CPU caches)",
        "floor",
        Target::None,
    ),
    row(
        "verify_cached/100k",
        "Verify, cache hit",
        "floor",
        Target::AtMostTimes(CACHE_HIT_MAX),
    ),
    row(
        "verify_cached/1M",
        "Verify, cache hit",
        "floor",
        Target::AtMostTimes(CACHE_HIT_MAX),
    ),
    row(
        "verify_memory/100k",
        "Verify, memory store, no cache",
        "floor",
        Target::None,
    ),
    row(
        "verify_memory/1M",
        "Verify, memory store, no cache",
        "floor",
        Target::None,
    ),
    row(
        "floor_threads/2",
        "Floor, 2 threads (wall time per check): what this machine's two cores give",
        "1 thread",
        Target::None,
    ),
    row(
        "verify_threads/2",
        "Verify, cache hit, 2 threads (wall time per verify)",
        "1 thread",
        Target::Scaling(SCALING_MIN),
    ),
    row(
        "verify_garbage/checksum",
        "Verify a garbage token (bad checksum)",
        "floor, 1k keys",
        Target::OpsPerSecond(GARBAGE_MIN),
    ),
    row(
        "sqlite/verify",
        "Verify, SQLite store, no cache",
        "raw rusqlite lookup",
        Target::AtMostTimes(SQLITE_MAX),
    ),
    row(
        "postgres/verify",
        "Verify, Postgres store, no cache",
        "bare prepared SELECT",
        Target::AtMostTimes(POSTGRES_MAX),
    ),
    row(
        "http/keyward",
        "HTTP: a route behind keyward (cache hit), per request over loopback",
        "the same route without authentication",
        Target::Overhead {
            min_throughput: HTTP_THROUGHPUT_MIN,
            max_added_ns: HTTP_ADDED_MAX_NS,
        },
    ),
    row(
        "leaks_1000/memory",
        "A signed GitHub report of 1,000 live tokens, judged and revoked, memory store",
        "—",
        Target::AtMostNs(LEAK_REPORT_MAX_NS),
    ),
    row(
        "leaks_1000/sqlite",
        "A signed GitHub report of 1,000 live tokens, judged and revoked, SQLite store",
        "—",
        Target::AtMostNs(LEAK_REPORT_MAX_NS),
    ),
    row(
        "leaks_1000/postgres",
        "A signed GitHub report of 1,000 live tokens, judged and revoked, Postgres store",
        "—",
        Target::AtMostNs(LEAK_REPORT_MAX_NS),
    ),
    row(
        "peer_prefixed/cached/10k",
        "Peer: verify, cache hit, against prefixed-api-key (its parse, a `HashMap` lookup, its digest check; no state, expiry or scope)",
        "prefixed-api-key",
        Target::AtMostTimes(PEER_CACHE_HIT_MAX),
    ),
    row(
        "peer_prefixed/cached/100k",
        "Peer: verify, cache hit, against prefixed-api-key",
        "prefixed-api-key",
        Target::AtMostTimes(PEER_CACHE_HIT_MAX),
    ),
    row(
        "peer_prefixed/memory/10k",
        "Peer: verify, memory store, no cache, against prefixed-api-key",
        "prefixed-api-key",
        Target::AtMostTimes(PEER_MEMORY_MAX),
    ),
    row(
        "peer_prefixed/memory/100k",
        "Peer: verify, memory store, no cache, against prefixed-api-key",
        "prefixed-api-key",
        Target::AtMostTimes(PEER_MEMORY_MAX),
    ),
    row(
        "peer_modo/sqlite/10k",
        "Peer: verify, SQLite file, no cache, against modo-rs on its libsql file (in a worker process)",
        "modo-rs",
        Target::AtMostTimes(PEER_SQLITE_MAX),
    ),
    row(
        "peer_modo/sqlite/100k",
        "Peer: verify, SQLite file, no cache, against modo-rs on its libsql file",
        "modo-rs",
        Target::AtMostTimes(PEER_SQLITE_MAX),
    ),
    row(
        "peer_argon/cached",
        "Peer: verify, cache hit, against api-keys-simplified's verify of one key (Argon2id by design)",
        "api-keys-simplified",
        Target::None,
    ),
    row("issue/memory", "Issue, memory store", "—", Target::None),
    row("issue/sqlite", "Issue, SQLite store", "—", Target::None),
    row("issue/postgres", "Issue, Postgres store", "—", Target::None),
    row(
        "list_50/memory",
        "List 50 keys of an owner, memory store",
        "—",
        Target::None,
    ),
    row(
        "list_50/sqlite",
        "List 50 keys of an owner, SQLite store",
        "—",
        Target::None,
    ),
    row(
        "list_50/postgres",
        "List 50 keys of an owner, Postgres store",
        "—",
        Target::None,
    ),
];

/// The row of figure `id`.
pub fn row_of(id: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.id == id)
}

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

/// A ratio for the table: three decimals, or `1/N` (two significant
/// digits) below a hundredth, where decimals would read as zero.
pub fn ratio_text(ratio: f64, decimals: usize) -> String {
    if !(ratio > 0.0 && ratio < 0.01) {
        return format!("{ratio:.decimals$}");
    }
    let inverse = 1.0 / ratio;
    let scale = 10_f64.powi(inverse.log10().floor() as i32 - 1);
    let rounded = ((inverse / scale).round() * scale) as u64;
    let digits = rounded.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("1/{grouped}")
}

fn verdict(met: bool, value: &str) -> String {
    if met {
        format!("yes ({value})")
    } else {
        format!("**no** ({value})")
    }
}

/// The per-pair speed-ups (reference time / figure time) of a figure.
fn speedups(figure: &Figure) -> Spread {
    Spread::of_map(&figure.ratios(), |r| 1.0 / r)
}

/// Operations per second, batch by batch.
fn rates(figure: &Figure) -> Spread {
    Spread::of_map(&figure.samples_ns, |ns| 1e9 / ns)
}

/// Whether the figure meets its target, and the value checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Met?
    pub met: bool,
    /// The value checked, with its spread, for the table.
    pub value: String,
}

/// Checks `figure` against `target`; `None` without a target, or when a
/// ratio target has no pairs to check.
pub fn check(target: Target, figure: &Figure) -> Option<Check> {
    match target {
        Target::None => None,
        Target::AtMostTimes(max) => {
            let ratio = Spread::of(&figure.ratios());
            (!ratio.median.is_nan()).then(|| Check {
                met: ratio.median <= max,
                value: format!("{}×", ratio_text(ratio.median, 3)),
            })
        }
        Target::Scaling(min) => {
            let up = speedups(figure);
            (!up.median.is_nan()).then(|| Check {
                met: up.median >= min,
                value: format!(
                    "{:.3}× throughput; p5–p95 {:.2}–{:.2}",
                    up.median, up.p5, up.p95
                ),
            })
        }
        Target::AtMostNs(max) => {
            let t = Spread::of(&figure.samples_ns);
            (!t.median.is_nan()).then(|| Check {
                met: t.median <= max && t.p95 <= max,
                value: format!(
                    "{}; p5–p95 {}–{}",
                    duration(t.median),
                    duration(t.p5),
                    duration(t.p95)
                ),
            })
        }
        Target::OpsPerSecond(min) => {
            let r = rates(figure);
            (!r.median.is_nan()).then(|| Check {
                met: r.median >= min,
                value: format!("{}; p5–p95 {}–{}", rate(r.median), rate(r.p5), rate(r.p95)),
            })
        }
        Target::Overhead {
            min_throughput,
            max_added_ns,
        } => {
            let up = speedups(figure);
            let reference = figure.reference_ns.as_ref()?;
            let added = figure.ns.median - reference.median;
            (!up.median.is_nan()).then(|| Check {
                met: up.median >= min_throughput && added <= max_added_ns,
                value: format!(
                    "{:.3}× throughput, {:+.1} µs a request",
                    up.median,
                    added / 1000.0
                ),
            })
        }
    }
}

fn target_text(target: Target, reference: &str) -> String {
    match target {
        Target::None => "—".to_owned(),
        Target::AtMostTimes(max) => format!("≤ {max}× {reference}"),
        Target::Scaling(min) => format!("≥ {min}× the throughput of 1 thread"),
        Target::OpsPerSecond(min) => format!("≥ {} per core", rate(min)),
        Target::AtMostNs(max) => format!("≤ {} (p95 too)", duration(max)),
        Target::Overhead {
            min_throughput,
            max_added_ns,
        } => format!(
            "≥ {min_throughput}× the throughput, ≤ {} µs added",
            max_added_ns / 1000.0
        ),
    }
}

fn run_line(run: &Run) -> String {
    let wall = run.wall_seconds.map_or_else(
        || "unfinished".to_owned(),
        |s| format!("{s:.0} s including setup"),
    );
    let load = match (&run.load_start, &run.load_end) {
        (Some(start), Some(end)) => {
            format!("; load average {start} at the start, {end} at the end")
        }
        (Some(start), None) => format!("; load average {start} at the start"),
        _ => String::new(),
    };
    let filter = run
        .filter
        .as_ref()
        .map_or_else(String::new, |f| format!(", filter `{f}`"));
    format!(
        "Run: {} mode{filter} ({wall}), {} cores ({}){load}.",
        run.mode, run.cores, run.cpu
    )
}

/// The markdown: what the run was, then the table.
pub fn render(run: &Run, memory: Option<MemoryFigure>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} Times are medians over batches, per operation. Each ratio is figure / reference, \
         computed pair by pair from batches of the two measured alternately in one loop: \
         the median of those per-pair ratios, and the 5th to 95th percentile of them.",
        run_line(run)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Figure | Keys | Time per op | Reference: time per op | Ratio | Ratio p5–p95 | Target | Met? |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    );
    for row in ROWS {
        let Some(figure) = run.figure(row.id) else {
            let _ = writeln!(
                out,
                "| {} | — | not run | — | — | — | {} | — |",
                row.label,
                target_text(row.target, row.reference)
            );
            continue;
        };
        let keys = figure.keys.map_or_else(|| "—".to_owned(), count);
        let reference = match &figure.reference_ns {
            Some(ns) => format!("{}: {}", row.reference, duration(ns.median)),
            None => "—".to_owned(),
        };
        let ratios = figure.ratios();
        let (ratio, spread) = if ratios.is_empty() {
            ("—".to_owned(), "—".to_owned())
        } else {
            let r = Spread::of(&ratios);
            (
                ratio_text(r.median, 3),
                format!("{}–{}", ratio_text(r.p5, 2), ratio_text(r.p95, 2)),
            )
        };
        let met =
            check(row.target, figure).map_or_else(|| "—".to_owned(), |c| verdict(c.met, &c.value));
        let _ = writeln!(
            out,
            "| {} | {keys} | {} | {reference} | {ratio} | {spread} | {} | {met} |",
            row.label,
            duration(Spread::of(&figure.samples_ns).median),
            target_text(row.target, row.reference),
        );
    }
    if let Some(memory) = memory {
        let met = memory.per_key <= MEMORY_TARGET;
        let _ = writeln!(
            out,
            "| Memory per cached key ({:.1} allocations; {:.0} B after the usage flush) | {} | {:.0} B | — | — | — | ≤ {MEMORY_TARGET:.0} B | {} |",
            memory.allocations_per_key,
            memory.per_key_flushed,
            count(memory.keys as u64),
            memory.per_key,
            verdict(met, &format!("{:.0} B", memory.per_key))
        );
    }
    let mut extras = Vec::new();
    let batches: Vec<String> = run
        .figures
        .iter()
        .map(|f| match f.reference_batch {
            Some(r) => format!(
                "{} {} pairs of {r} + {} ops",
                f.id,
                f.samples_ns.len(),
                f.batch
            ),
            None => format!("{} {} batches of {} ops", f.id, f.samples_ns.len(), f.batch),
        })
        .collect();
    if !batches.is_empty() {
        extras.push(format!("Samples: {}.", batches.join("; ")));
    }
    if !run.setup_seconds.is_empty() {
        let parts: Vec<String> = run
            .setup_seconds
            .iter()
            .map(|(k, v)| format!("{k} {v} s"))
            .collect();
        extras.push(format!("Setup: {}.", parts.join(", ")));
    }
    extras.extend(run.notes.iter().cloned());
    for extra in extras {
        let _ = writeln!(out);
        let _ = writeln!(out, "{extra}");
    }
    out.trim_end().to_owned() + "\n"
}

/// One quantity of two runs side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// The figure's id.
    pub id: String,
    /// What is compared: `ratio`, `speed-up`, `rate` or `time`.
    pub quantity: &'static str,
    /// The first run's value (median), with its 5th–95th percentiles.
    pub a: Spread,
    /// The second run's.
    pub b: Spread,
    /// |b − a| / a.
    pub difference: f64,
    /// Whether it counts towards the runs agreeing (ratios do; absolute
    /// times and rates are shown for context).
    pub checked: bool,
}

impl Agreement {
    /// A checked quantity whose runs differ by more than [`AGREEMENT`].
    pub fn flagged(&self) -> bool {
        self.checked && disagree(self.a.median, self.b.median, AGREEMENT)
    }
}

/// |b − a| / |a| (infinite when a is zero and b is not).
pub fn relative_difference(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (b - a).abs() / a.abs() }
}

/// Whether `a` and `b` differ by more than `tolerance` of `a` (values that
/// are not numbers disagree).
pub fn disagree(a: f64, b: f64, tolerance: f64) -> bool {
    let d = relative_difference(a, b);
    d.is_nan() || d > tolerance
}

/// Every figure both runs measured: each ratio (a speed-up for the
/// threads), checked; each rate target's rate and each unpaired figure's
/// time, shown only.
pub fn compare(a: &Run, b: &Run) -> Vec<Agreement> {
    let mut out = Vec::new();
    let mut ids: Vec<&str> = ROWS.iter().map(|r| r.id).collect();
    for figure in &a.figures {
        if !ids.contains(&figure.id.as_str()) {
            ids.push(&figure.id);
        }
    }
    for id in ids {
        let (Some(fa), Some(fb)) = (a.figure(id), b.figure(id)) else {
            continue;
        };
        let target = row_of(id).map_or(Target::None, |r| r.target);
        let mut push = |quantity, sa: Spread, sb: Spread, checked| {
            out.push(Agreement {
                id: id.to_owned(),
                quantity,
                a: sa,
                b: sb,
                difference: relative_difference(sa.median, sb.median),
                checked,
            });
        };
        let paired = !fa.ratios().is_empty() && !fb.ratios().is_empty();
        match (target, paired) {
            (Target::Scaling(_), true) => push("speed-up", speedups(fa), speedups(fb), true),
            (_, true) => push(
                "ratio",
                Spread::of(&fa.ratios()),
                Spread::of(&fb.ratios()),
                true,
            ),
            (_, false) => push(
                "time",
                Spread::of(&fa.samples_ns),
                Spread::of(&fb.samples_ns),
                false,
            ),
        }
        if let Target::OpsPerSecond(_) = target {
            push("rate", rates(fa), rates(fb), false);
        }
    }
    out
}

fn value(quantity: &str, v: f64) -> String {
    match quantity {
        "time" => duration(v),
        "rate" => rate(v),
        // A ratio too small for decimals reads as a fraction (1/N).
        _ => ratio_text(v, 2),
    }
}

/// The comparison as text: one line per quantity, flagged lines marked.
pub fn render_compare(a_name: &str, b_name: &str, lines: &[Agreement]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<9} {:>24} {:>24} {:>7}",
        "figure", "quantity", a_name, b_name, "diff"
    );
    for line in lines {
        let cell = |s: &Spread| {
            format!(
                "{} ({}–{})",
                value(line.quantity, s.median),
                value(line.quantity, s.p5),
                value(line.quantity, s.p95)
            )
        };
        let mark = if line.flagged() {
            "  > 10 %: DISAGREE"
        } else if line.checked {
            ""
        } else {
            "  (context, not checked)"
        };
        let _ = writeln!(
            out,
            "{:<26} {:<9} {:>24} {:>24} {:>6.1}%{mark}",
            line.id,
            line.quantity,
            cell(&line.a),
            cell(&line.b),
            line.difference * 100.0
        );
    }
    let checked = lines.iter().filter(|l| l.checked).count();
    let flagged = lines.iter().filter(|l| l.flagged()).count();
    let _ = writeln!(
        out,
        "{checked} ratios compared, {flagged} differ by more than {:.0} %.",
        AGREEMENT * 100.0
    );
    out
}

/// The comparison as markdown, for `docs/performance.md`: what each run
/// was, then a table of every quantity.
pub fn render_compare_markdown(
    (a_name, a_run): (&str, &Run),
    (b_name, b_run): (&str, &Run),
    lines: &[Agreement],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "`{a_name}` — {}", run_line(a_run));
    let _ = writeln!(out);
    let _ = writeln!(out, "`{b_name}` — {}", run_line(b_run));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Figure | Quantity | `{a_name}`: median (p5–p95) | `{b_name}`: median (p5–p95) | Difference | Within {:.0} %? |",
        AGREEMENT * 100.0
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | --- |");
    for line in lines {
        let cell = |s: &Spread| {
            format!(
                "{} ({}–{})",
                value(line.quantity, s.median),
                value(line.quantity, s.p5),
                value(line.quantity, s.p95)
            )
        };
        let verdict = match (line.checked, line.flagged()) {
            (false, _) => "— (not a ratio)",
            (true, false) => "yes",
            (true, true) => "**no**",
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {:.1} % | {verdict} |",
            line.id,
            line.quantity,
            cell(&line.a),
            cell(&line.b),
            line.difference * 100.0
        );
    }
    let checked = lines.iter().filter(|l| l.checked).count();
    let flagged = lines.iter().filter(|l| l.flagged()).count();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{checked} ratios compared; {flagged} differ by more than {:.0} %.",
        AGREEMENT * 100.0
    );
    out
}

/// Replaces the text between `<!-- report:start -->` and
/// `<!-- report:end -->` in `doc` with `table`.
pub fn splice(doc: &str, table: &str) -> Result<String, String> {
    splice_marked(doc, "report", table)
}

/// Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`
/// in `doc` with `text`.
pub fn splice_marked(doc: &str, name: &str, text: &str) -> Result<String, String> {
    let start_marker = format!("<!-- {name}:start -->");
    let end_marker = format!("<!-- {name}:end -->");
    let (Some(start), Some(end)) = (doc.find(&start_marker), doc.find(&end_marker)) else {
        return Err(format!(
            "the document has no {start_marker} … {end_marker} markers"
        ));
    };
    if end < start {
        return Err(format!("the {name} markers are out of order"));
    }
    Ok(format!(
        "{}{start_marker}\n\n{}\n{}",
        &doc[..start],
        text.trim_end(),
        &doc[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paired::{PairedSamples, SingleSamples};

    fn paired(id: &str, reference: &[f64], figure: &[f64]) -> Figure {
        Figure::paired(
            id,
            Some(100_000),
            "reference",
            &PairedSamples {
                reference_batch: 1,
                figure_batch: 1,
                reference_ns: reference.to_vec(),
                figure_ns: figure.to_vec(),
            },
        )
    }

    fn run_of(figures: Vec<Figure>) -> Run {
        let mut run = Run::start(false, None);
        run.figures = figures;
        run
    }

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
        let doc = "<!-- compare:start -->\n<!-- compare:end -->\n";
        assert_eq!(
            splice_marked(doc, "compare", "| a |").unwrap(),
            "<!-- compare:start -->\n\n| a |\n<!-- compare:end -->\n"
        );
        assert!(splice_marked(doc, "report", "x").is_err());
    }

    #[test]
    fn small_ratios_read_as_fractions() {
        assert_eq!(ratio_text(1.2, 3), "1.200");
        assert_eq!(ratio_text(0.0123, 3), "0.012");
        assert_eq!(ratio_text(0.456, 2), "0.46");
        assert_eq!(ratio_text(1.0 / 41_234.0, 3), "1/41,000");
        assert_eq!(ratio_text(1.0 / 156.0, 2), "1/160");
        assert_eq!(ratio_text(1.0 / 2_345_678.0, 3), "1/2,300,000");
        assert_eq!(ratio_text(0.0, 3), "0.000");
        assert_eq!(ratio_text(f64::NAN, 3), "NaN");
        // A peer three orders of magnitude slower, in the table.
        let run = run_of(vec![Figure::paired(
            "peer_argon/cached",
            Some(100_000),
            "api_keys_simplified/argon2id",
            &PairedSamples {
                reference_batch: 1,
                figure_batch: 80_000,
                reference_ns: vec![45e6, 44e6, 46e6],
                figure_ns: vec![1_000.0, 1_100.0, 1_150.0],
            },
        )]);
        let table = render(&run, None);
        assert!(
            table.contains("| 100k | 1.10 µs | api-keys-simplified: 45.00 ms | 1/40,000 | 1/44,000–1/40,000 | — | — |"),
            "{table}"
        );
    }

    #[test]
    fn peer_rows_have_their_targets() {
        fn target(id: &str) -> Option<Target> {
            row_of(id).map(|r| r.target)
        }
        for keys in ["10k", "100k"] {
            assert_eq!(
                target(&format!("peer_prefixed/cached/{keys}")),
                Some(Target::AtMostTimes(PEER_CACHE_HIT_MAX))
            );
            assert_eq!(
                target(&format!("peer_prefixed/memory/{keys}")),
                Some(Target::AtMostTimes(PEER_MEMORY_MAX))
            );
            assert_eq!(
                target(&format!("peer_modo/sqlite/{keys}")),
                Some(Target::AtMostTimes(PEER_SQLITE_MAX))
            );
        }
        assert_eq!(target("peer_argon/cached"), Some(Target::None));
        // modo-rs at 12 µs, keyward at 7 µs: 0.58, not within 0.5.
        let modo = paired("peer_modo/sqlite/100k", &[12_000.0; 3], &[7_000.0; 3]);
        let checked = check(Target::AtMostTimes(PEER_SQLITE_MAX), &modo).unwrap();
        assert!(!checked.met);
        assert_eq!(checked.value, "0.583×");
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
    fn targets_are_checked_on_the_per_pair_ratios() {
        // Ratios 1.2, 1.2, 1.3: median 1.2, within 1.25.
        let hit = paired(
            "verify_cached/100k",
            &[100.0, 200.0, 100.0],
            &[120.0, 240.0, 130.0],
        );
        let checked = check(Target::AtMostTimes(CACHE_HIT_MAX), &hit).unwrap();
        assert!(checked.met);
        assert_eq!(checked.value, "1.200×");
        let slow = paired("verify_cached/1M", &[100.0, 100.0], &[130.0, 140.0]);
        assert!(
            !check(Target::AtMostTimes(CACHE_HIT_MAX), &slow)
                .unwrap()
                .met
        );
        // Two threads at half the wall time per verify: a speed-up of 2.
        let threads = paired(
            "verify_threads/2",
            &[100.0, 100.0, 100.0],
            &[50.0, 50.0, 70.0],
        );
        assert!(check(Target::Scaling(SCALING_MIN), &threads).unwrap().met);
        // 50 ns per garbage token: 20 M/s.
        let garbage = paired("verify_garbage/checksum", &[100.0; 3], &[50.0; 3]);
        let rate = check(Target::OpsPerSecond(GARBAGE_MIN), &garbage).unwrap();
        assert!(rate.met);
        assert!(rate.value.starts_with("20.0 M/s"), "{}", rate.value);
        assert_eq!(check(Target::None, &garbage), None);
        let unpaired = Figure::single(
            "issue/memory",
            None,
            &SingleSamples {
                batch: 1,
                ns: vec![1.0],
            },
        );
        assert_eq!(check(Target::AtMostTimes(1.5), &unpaired), None);
        // A time target holds at the median and at the 95th percentile.
        let report = |ns: Vec<f64>| {
            Figure::single("leaks_1000/sqlite", None, &SingleSamples { batch: 1, ns })
        };
        let quick = check(Target::AtMostNs(LEAK_REPORT_MAX_NS), &report(vec![3e8; 5])).unwrap();
        assert!(
            quick.met && quick.value.starts_with("300.00 ms"),
            "{}",
            quick.value
        );
        let tail = report(vec![3e8, 3e8, 3e8, 3e8, 3e8, 3e8, 3e8, 3e8, 3e8, 9e8]);
        assert!(
            !check(Target::AtMostNs(LEAK_REPORT_MAX_NS), &tail)
                .unwrap()
                .met
        );
    }

    #[test]
    fn relative_differences_and_the_ten_percent_flag() {
        assert_eq!(relative_difference(2.0, 2.0), 0.0);
        assert!((relative_difference(1.0, 1.1) - 0.1).abs() < 1e-12);
        assert!((relative_difference(1.0, 0.85) - 0.15).abs() < 1e-12);
        assert!(!disagree(1.0, 1.09, AGREEMENT));
        assert!(!disagree(1.0, 0.91, AGREEMENT));
        assert!(disagree(1.0, 1.11, AGREEMENT));
        assert!(disagree(1.0, 0.89, AGREEMENT));
        assert!(disagree(f64::NAN, 1.0, AGREEMENT));
        assert!(disagree(0.0, 1.0, AGREEMENT));
    }

    #[test]
    fn compare_flags_ratios_that_moved_more_than_ten_percent() {
        let quiet = run_of(vec![
            paired("verify_cached/100k", &[100.0; 3], &[120.0; 3]),
            paired("sqlite/verify", &[100.0; 3], &[140.0; 3]),
            paired("verify_threads/2", &[100.0; 3], &[50.0; 3]),
            Figure::single(
                "issue/memory",
                None,
                &SingleSamples {
                    batch: 1,
                    ns: vec![1000.0],
                },
            ),
        ]);
        let busy = run_of(vec![
            // Both sides slower, the ratio the same: agrees.
            paired("verify_cached/100k", &[150.0; 3], &[180.0; 3]),
            // 1.4 to 1.6: 14 % apart.
            paired("sqlite/verify", &[100.0; 3], &[160.0; 3]),
            paired("verify_threads/2", &[100.0; 3], &[52.0; 3]),
            // Twice the time, but a time is not a ratio: not flagged.
            Figure::single(
                "issue/memory",
                None,
                &SingleSamples {
                    batch: 1,
                    ns: vec![2000.0],
                },
            ),
        ]);
        let lines = compare(&quiet, &busy);
        let get = |id: &str| lines.iter().find(|l| l.id == id).unwrap();
        assert!(!get("verify_cached/100k").flagged());
        assert!(get("sqlite/verify").flagged());
        assert_eq!(get("verify_threads/2").quantity, "speed-up");
        assert!(!get("verify_threads/2").flagged());
        assert_eq!(get("issue/memory").quantity, "time");
        assert!(!get("issue/memory").checked);
        assert!(!get("issue/memory").flagged());
        let text = render_compare("quiet", "busy", &lines);
        assert!(text.contains("3 ratios compared, 1 differ by more than 10 %."));
        assert!(text.contains("DISAGREE"));
        let markdown = render_compare_markdown(("quiet", &quiet), ("busy", &busy), &lines);
        assert!(
            markdown.contains("| `sqlite/verify` | ratio | 1.40 (1.40–1.40) | 1.60 (1.60–1.60) | 14.3 % | **no** |"),
            "{markdown}"
        );
        assert!(markdown.contains("3 ratios compared; 1 differ by more than 10 %."));
    }

    #[test]
    fn the_table_shows_ratios_and_what_did_not_run() {
        let run = run_of(vec![paired(
            "verify_cached/100k",
            &[100.0, 100.0, 100.0],
            &[110.0, 120.0, 130.0],
        )]);
        let table = render(&run, None);
        assert!(
            table.contains(
                "| Verify, cache hit | 100k | 120 ns | floor: 100 ns | 1.200 | 1.11–1.29 | ≤ 1.25× floor | yes (1.200×) |"
            ),
            "{table}"
        );
        assert!(table.contains("| Verify, SQLite store, no cache | — | not run |"));
    }
}
