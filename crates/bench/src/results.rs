//! One run's results as JSON: what the run was (mode, machine, load, setup
//! times, skips) and, per figure, its samples and their summaries.
//!
//! The bench writes `<target>/keyward-bench/latest.json` after every figure
//! (so an interrupted run still leaves a consistent file), and a copy under
//! the name given with `--save`; the `report` binary reads them.

use crate::paired::{Comparison, PairedSamples, SingleSamples, Spread};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file every run writes, in [`results_dir`].
pub const LATEST: &str = "latest.json";

/// Where runs are written: `$KEYWARD_BENCH_DIR`, else
/// `<target dir>/keyward-bench`.
pub fn results_dir(target_dir: &Path) -> PathBuf {
    match std::env::var_os("KEYWARD_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir.join("keyward-bench"),
    }
}

/// A run's file from what a user typed: an existing path as it is, else
/// `NAME` (`.json` added if missing) in `dir`.
pub fn resolve(dir: &Path, name: &str) -> PathBuf {
    let given = PathBuf::from(name);
    if given.exists() || given.components().count() > 1 {
        return given;
    }
    let file = if name.ends_with(".json") {
        name.to_owned()
    } else {
        format!("{name}.json")
    };
    dir.join(file)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
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

/// The 1-, 5- and 15-minute load averages, from `/proc/loadavg`.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    (parts.len() == 3).then(|| parts.join(" "))
}

/// A median with its 5th–95th percentile range, as written to the file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The median.
    pub median: f64,
    /// The 5th percentile.
    pub p5: f64,
    /// The 95th percentile.
    pub p95: f64,
}

impl From<Spread> for Summary {
    fn from(s: Spread) -> Self {
        Self {
            median: s.median,
            p5: s.p5,
            p95: s.p95,
        }
    }
}

/// One figure of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Its id (`group/name`, as the filter sees it).
    pub id: String,
    /// Keys in the store it ran on.
    pub keys: Option<u64>,
    /// The id of the reference it was paired with, if any.
    pub reference: Option<String>,
    /// Operations per batch.
    pub batch: u64,
    /// Operations per reference batch.
    pub reference_batch: Option<u64>,
    /// Nanoseconds per operation: median and 5th–95th percentile of the
    /// batches.
    pub ns: Summary,
    /// The same for the reference.
    pub reference_ns: Option<Summary>,
    /// The per-pair ratios figure / reference: median and 5th–95th
    /// percentile.
    pub ratio: Option<Summary>,
    /// Nanoseconds per operation, batch by batch (pair by pair).
    pub samples_ns: Vec<f64>,
    /// The reference's, pair by pair.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_samples_ns: Vec<f64>,
}

impl Figure {
    /// A figure paired with `reference`.
    pub fn paired(id: &str, keys: Option<u64>, reference: &str, samples: &PairedSamples) -> Self {
        Self {
            id: id.to_owned(),
            keys,
            reference: Some(reference.to_owned()),
            batch: samples.figure_batch,
            reference_batch: Some(samples.reference_batch),
            ns: Spread::of(&samples.figure_ns).into(),
            reference_ns: Some(Spread::of(&samples.reference_ns).into()),
            ratio: Some(Spread::of(&samples.ratios()).into()),
            samples_ns: samples.figure_ns.clone(),
            reference_samples_ns: samples.reference_ns.clone(),
        }
    }

    /// A figure measured on its own.
    pub fn single(id: &str, keys: Option<u64>, samples: &SingleSamples) -> Self {
        Self {
            id: id.to_owned(),
            keys,
            reference: None,
            batch: samples.batch,
            reference_batch: None,
            ns: Spread::of(&samples.ns).into(),
            reference_ns: None,
            ratio: None,
            samples_ns: samples.ns.clone(),
            reference_samples_ns: Vec::new(),
        }
    }

    /// What `comparison` sampled so far (`None` before its first pair).
    pub fn of(comparison: &Comparison<'_>) -> Option<Self> {
        if comparison.pairs() == 0 {
            return None;
        }
        match (comparison.reference_id(), comparison.paired_samples()) {
            (Some(reference), Some(samples)) => Some(Self::paired(
                comparison.id(),
                comparison.keys(),
                reference,
                &samples,
            )),
            _ => comparison
                .single_samples()
                .map(|samples| Self::single(comparison.id(), comparison.keys(), &samples)),
        }
    }

    /// The per-pair ratios figure / reference (empty if not paired).
    pub fn ratios(&self) -> Vec<f64> {
        crate::paired::pair_ratios(&self.reference_samples_ns, &self.samples_ns)
    }
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `full` or `short`.
    pub mode: String,
    /// The filter the run was given, if any.
    pub filter: Option<String>,
    /// When it started.
    pub started_unix: f64,
    /// When it finished (absent if interrupted).
    pub finished_unix: Option<f64>,
    /// Its wall time, setup included.
    pub wall_seconds: Option<f64>,
    /// The CPU model.
    pub cpu: String,
    /// Cores available.
    pub cores: usize,
    /// The load averages at the start.
    pub load_start: Option<String>,
    /// The load averages at the end.
    pub load_end: Option<String>,
    /// Seconds spent building each fixture.
    pub setup_seconds: BTreeMap<String, f64>,
    /// Remarks (a skipped group, say).
    pub notes: Vec<String>,
    /// The figures, in the order they ran.
    pub figures: Vec<Figure>,
}

impl Run {
    /// A run starting now.
    pub fn start(short: bool, filter: Option<String>) -> Self {
        Self {
            mode: if short { "short" } else { "full" }.to_owned(),
            filter,
            started_unix: unix_now(),
            finished_unix: None,
            wall_seconds: None,
            cpu: cpu_model(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            load_start: load_average(),
            load_end: None,
            setup_seconds: BTreeMap::new(),
            notes: Vec::new(),
            figures: Vec::new(),
        }
    }

    /// The figure `id`, if it ran.
    pub fn figure(&self, id: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.id == id)
    }

    /// Reads a run from `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "no results at {} ({e}): run `cargo bench -p keyward-bench` first",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a run ({e})", path.display()))
    }

    /// Writes the run to `path` (its directory created if need be).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A run being recorded: every change is written to each of its files.
#[derive(Debug)]
pub struct Recorder {
    run: Run,
    paths: Vec<PathBuf>,
}

impl Recorder {
    /// Starts recording `run` into `paths`.
    pub fn new(run: Run, paths: Vec<PathBuf>) -> Self {
        let recorder = Self { run, paths };
        recorder.save();
        recorder
    }

    fn save(&self) {
        for path in &self.paths {
            if let Err(e) = self.run.save(path) {
                panic!("cannot write the results: {e}");
            }
        }
    }

    /// The run so far.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// The files it is written to.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// How long building `what` took.
    pub fn setup(&mut self, what: &str, seconds: f64) {
        self.run
            .setup_seconds
            .insert(what.to_owned(), (seconds * 100.0).round() / 100.0);
        self.save();
    }

    /// A remark for the report.
    pub fn note(&mut self, note: &str) {
        self.run.notes.push(note.to_owned());
        self.save();
    }

    /// A figure measured.
    pub fn figure(&mut self, figure: Figure) {
        self.run.figures.retain(|f| f.id != figure.id);
        self.run.figures.push(figure);
        self.save();
    }

    /// Marks the run finished.
    pub fn finish(&mut self) {
        let now = unix_now();
        self.run.finished_unix = Some(now);
        self.run.wall_seconds = Some((now - self.run.started_unix).round());
        self.run.load_end = load_average();
        self.save();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_back_as_written() {
        let mut run = Run::start(true, Some("floor".to_owned()));
        // A time that survives the trip through decimal text exactly
        // (serde_json's default parser may round the last digit of one
        // read from the clock).
        run.started_unix = 1_796_000_000.5;
        let samples = PairedSamples {
            reference_batch: 4,
            figure_batch: 2,
            reference_ns: vec![100.0, 110.0, 90.0],
            figure_ns: vec![150.0, 165.0, 180.0],
        };
        run.figures.push(Figure::paired(
            "verify_cached/1k",
            Some(1000),
            "floor/1k",
            &samples,
        ));
        run.figures.push(Figure::single(
            "issue/memory",
            None,
            &SingleSamples {
                batch: 3,
                ns: vec![1.0, 2.0, 3.0],
            },
        ));
        let text = serde_json::to_string(&run).unwrap();
        let back: Run = serde_json::from_str(&text).unwrap();
        assert_eq!(back, run);
        let cached = back.figure("verify_cached/1k").unwrap();
        assert_eq!(cached.ratios(), vec![1.5, 1.5, 2.0]);
        assert_eq!(cached.ratio.unwrap().median, 1.5);
        assert_eq!(back.figure("issue/memory").unwrap().ns.median, 2.0);
        assert!(back.figure("issue/memory").unwrap().ratios().is_empty());
    }

    #[test]
    fn names_resolve_into_the_results_directory() {
        let dir = Path::new("/results");
        assert_eq!(resolve(dir, "quiet"), Path::new("/results/quiet.json"));
        assert_eq!(resolve(dir, "busy.json"), Path::new("/results/busy.json"));
        assert_eq!(
            resolve(dir, "some/where.json"),
            Path::new("some/where.json")
        );
    }
}
