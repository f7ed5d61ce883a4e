//! Paired, interleaved measurement: a figure and its reference timed in
//! alternating batches of one sampling loop, and the statistics of the
//! per-pair ratios.
//!
//! A comparison of a figure F with its reference R goes:
//!
//! 1. **Calibrate**: each side's batch size is doubled from 1 until a batch
//!    takes at least [`Plan::batch`] (so fixed costs per batch, such as
//!    spawning threads, are amortized in the estimate).
//! 2. **Warm up**: R and F batches alternate for the plan's warm-up time,
//!    in two halves; after each, the batch size of each side is set from
//!    its median time per operation in that half, so that a batch of
//!    either side lasts about [`Plan::batch`].
//! 3. **Sample**: [`Plan::pairs`] pairs, each an R batch and an F batch back
//!    to back, R first in even pairs and F first in odd ones (so a steady
//!    drift, or whatever one side leaves behind for the next, favours
//!    neither). Each pair gives R's and F's time per operation and the
//!    ratio F / R.
//!
//! A [`Comparison`] takes its pairs a share at a time ([`Comparison::sample`]),
//! warming up again each time it resumes, so that a run can sample all its
//! comparisons in turn, round after round, and each sees the whole run's
//! load rather than the few seconds it would take on its own. A figure
//! without a reference goes the same way with batches instead of pairs.
//!
//! Load from elsewhere on the machine (another process on the other core,
//! its cache and memory traffic, frequency changes) that lasts longer than
//! a pair slows both of its batches alike, so it cancels in that pair's
//! ratio; load that hits only one batch of a pair makes that pair an
//! outlier, which the median ignores and the 5th–95th percentile range
//! shows.
//!
//! Both sides draw their keys from one seeded [`Walk`], in turn: every
//! batch takes the next keys of the same sequence, so the two sides touch
//! keys uniformly at random in the same way, never the same keys one after
//! the other (the second side would find them in CPU caches).

use crate::fixture::Walk;
use std::time::{Duration, Instant};

/// How long batches are, how long to warm up, how many pairs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The time one batch of either side should take.
    pub batch: Duration,
    /// How long to alternate batches before sampling.
    pub warmup: Duration,
    /// Pairs (or, for a figure without a reference, batches) sampled.
    pub pairs: usize,
}

impl Plan {
    /// In-memory figures: 0.5 ms batches (full: 3000 pairs; short: 200).
    /// Short batches, so that few pairs straddle a preemption on a busy
    /// machine.
    pub fn memory(short: bool) -> Self {
        Self {
            batch: Duration::from_micros(500),
            warmup: Duration::from_millis(if short { 50 } else { 300 }),
            pairs: if short { 200 } else { 3000 },
        }
    }

    /// Figures that spawn threads per batch: 5 ms batches, so spawning is
    /// a small part of each (full: 500 pairs; short: 50).
    pub fn threads(short: bool) -> Self {
        Self {
            batch: Duration::from_millis(5),
            warmup: Duration::from_millis(if short { 50 } else { 300 }),
            pairs: if short { 50 } else { 500 },
        }
    }

    /// Figures that reach a database: 3 ms batches (tens of statements;
    /// full: 800 pairs; short: 80).
    pub fn sql(short: bool) -> Self {
        Self {
            batch: Duration::from_millis(3),
            warmup: Duration::from_millis(if short { 100 } else { 400 }),
            pairs: if short { 80 } else { 800 },
        }
    }

    /// Issue and list, measured on their own: 5 ms batches (full: 200
    /// batches; short: 25).
    pub fn absolute(short: bool) -> Self {
        Self {
            batch: Duration::from_millis(5),
            warmup: Duration::from_millis(if short { 30 } else { 150 }),
            pairs: if short { 25 } else { 200 },
        }
    }
}

/// What a paired comparison collected: per pair, each side's time per
/// operation in nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedSamples {
    /// Operations per reference batch.
    pub reference_batch: u64,
    /// Operations per figure batch.
    pub figure_batch: u64,
    /// The reference's nanoseconds per operation, pair by pair.
    pub reference_ns: Vec<f64>,
    /// The figure's nanoseconds per operation, pair by pair.
    pub figure_ns: Vec<f64>,
}

impl PairedSamples {
    /// The per-pair ratios figure / reference.
    pub fn ratios(&self) -> Vec<f64> {
        pair_ratios(&self.reference_ns, &self.figure_ns)
    }
}

/// What a figure measured on its own collected.
#[derive(Debug, Clone, PartialEq)]
pub struct SingleSamples {
    /// Operations per batch.
    pub batch: u64,
    /// Nanoseconds per operation, batch by batch.
    pub ns: Vec<f64>,
}

/// How long `body` takes: the usual body of a side.
///
/// A side of a comparison is a closure `|walk, ops| -> Duration` that runs
/// `ops` operations, drawing keys from `walk`, and returns the time they
/// took (it may leave setup, such as a fresh store, out of that time).
#[inline]
pub fn time(body: impl FnOnce()) -> Duration {
    let start = Instant::now();
    body();
    start.elapsed()
}

fn per_op_ns(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_secs_f64() * 1e9 / ops.max(1) as f64
}

/// Doubles the batch size from 1 until a batch takes `at_least`; returns
/// that size.
fn calibrate(
    side: &mut impl FnMut(&mut Walk, u64) -> Duration,
    walk: &mut Walk,
    at_least: Duration,
) -> u64 {
    let mut ops = 1_u64;
    loop {
        let elapsed = side(walk, ops);
        if elapsed >= at_least || ops >= 1 << 32 {
            return ops;
        }
        ops *= 2;
    }
}

/// A side, behind a pointer (warm-up takes either one or two).
type DynSide<'a> = dyn FnMut(&mut Walk, u64) -> Duration + 'a;

/// Runs `sides` in turn, batches of `ops[i]` operations, for `warmup`
/// (at least three rounds), and returns each side's batch size for a batch
/// of `target`, from its median time per operation.
fn warm_up<const N: usize>(
    sides: &mut [&mut DynSide<'_>; N],
    walk: &mut Walk,
    ops: [u64; N],
    warmup: Duration,
    target: Duration,
) -> [u64; N] {
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 3 || start.elapsed() < warmup {
        for ((side, ops), times) in sides.iter_mut().zip(ops).zip(times.iter_mut()) {
            times.push(per_op_ns(side(walk, ops), ops));
        }
        rounds += 1;
    }
    std::array::from_fn(|i| {
        times
            .get(i)
            .map_or(1, |times| batch_size(target, median(times)))
    })
}

/// Operations per batch for a batch of `target` at `ns` per operation.
pub fn batch_size(target: Duration, ns: f64) -> u64 {
    if !(ns.is_finite() && ns > 0.0) {
        return 1;
    }
    let ops = (target.as_secs_f64() * 1e9 / ns).round();
    if ops < 1.0 {
        1
    } else if ops > 1e12 {
        1_000_000_000_000
    } else {
        ops as u64
    }
}

/// Samples `pairs` more pairs (rounds, for one side) of `sides` into `out`.
/// The first call calibrates and warms up; later ones warm up again (the
/// plan's warm-up time) with the batch sizes already set, since other
/// comparisons ran in between and left the CPU caches full of their own
/// data: long enough for a 100k-key walk to touch every key again.
fn sample_sides<const N: usize>(
    sides: &mut [&mut DynSide<'_>; N],
    walk: &mut Walk,
    plan: &Plan,
    ops: &mut Option<[u64; N]>,
    out: &mut [Vec<f64>; N],
    pairs: usize,
) {
    let current = match *ops {
        None => {
            // Batches of at least the target (fixed costs, such as spawning
            // threads, amortized), then two halves of warm-up, each
            // re-estimating the batch sizes from its median time per
            // operation.
            let mut first = [1; N];
            for (side, ops) in sides.iter_mut().zip(first.iter_mut()) {
                *ops = calibrate(side, walk, plan.batch);
            }
            let half = plan.warmup / 2;
            let first = warm_up(sides, walk, first, half, plan.batch);
            warm_up(sides, walk, first, half, plan.batch)
        }
        Some(current) => {
            warm_up(sides, walk, current, plan.warmup, plan.batch);
            current
        }
    };
    *ops = Some(current);
    for _ in 0..pairs {
        // R first in even pairs, F first in odd ones.
        let forward = out.first().is_none_or(|o| o.len() % 2 == 0);
        for i in 0..N {
            let side = if forward { i } else { N - 1 - i };
            if let (Some(run), Some(&ops), Some(out)) =
                (sides.get_mut(side), current.get(side), out.get_mut(side))
            {
                out.push(per_op_ns(run(walk, ops), ops));
            }
        }
    }
}

/// A figure, with or without a reference, sampled a number of pairs at a
/// time: a run takes a few pairs of every comparison in turn, round after
/// round, so each comparison sees the whole run's mix of load rather than
/// the few seconds it would take on its own.
pub struct Comparison<'a> {
    id: String,
    keys: Option<u64>,
    reference_id: Option<String>,
    plan: Plan,
    reference: Option<Box<DynSide<'a>>>,
    figure: Box<DynSide<'a>>,
    walk: Walk,
    paired_ops: Option<[u64; 2]>,
    single_ops: Option<[u64; 1]>,
    samples: [Vec<f64>; 2],
}

impl std::fmt::Debug for Comparison<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comparison")
            .field("id", &self.id)
            .field("reference", &self.reference_id)
            .field("pairs", &self.pairs())
            .finish_non_exhaustive()
    }
}

impl<'a> Comparison<'a> {
    /// `figure` (id `id`) against `reference` (id `reference_id`), both
    /// drawing keys from one walk seeded with `seed`.
    pub fn paired(
        id: &str,
        keys: Option<usize>,
        reference_id: &str,
        plan: Plan,
        seed: u64,
        reference: impl FnMut(&mut Walk, u64) -> Duration + 'a,
        figure: impl FnMut(&mut Walk, u64) -> Duration + 'a,
    ) -> Self {
        Self {
            id: id.to_owned(),
            keys: keys.map(|k| k as u64),
            reference_id: Some(reference_id.to_owned()),
            plan,
            reference: Some(Box::new(reference)),
            figure: Box::new(figure),
            walk: Walk::new(seed),
            paired_ops: None,
            single_ops: None,
            samples: [Vec::new(), Vec::new()],
        }
    }

    /// A figure on its own.
    pub fn single(
        id: &str,
        keys: Option<usize>,
        plan: Plan,
        seed: u64,
        side: impl FnMut(&mut Walk, u64) -> Duration + 'a,
    ) -> Self {
        Self {
            id: id.to_owned(),
            keys: keys.map(|k| k as u64),
            reference_id: None,
            plan,
            reference: None,
            figure: Box::new(side),
            walk: Walk::new(seed),
            paired_ops: None,
            single_ops: None,
            samples: [Vec::new(), Vec::new()],
        }
    }

    /// The figure's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Keys in the store it runs on.
    pub fn keys(&self) -> Option<u64> {
        self.keys
    }

    /// The reference's id, if it has one.
    pub fn reference_id(&self) -> Option<&str> {
        self.reference_id.as_deref()
    }

    /// Its plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Pairs (or batches) sampled so far.
    pub fn pairs(&self) -> usize {
        self.samples.get(1).map_or(0, Vec::len)
    }

    /// Samples `pairs` more pairs (batches, without a reference). The first
    /// call calibrates and warms up; later ones warm up again, with the
    /// batch sizes already set, before sampling.
    pub fn sample(&mut self, pairs: usize) {
        let Self {
            plan,
            reference,
            figure,
            walk,
            paired_ops,
            single_ops,
            samples,
            ..
        } = self;
        match reference {
            Some(reference) => sample_sides(
                &mut [&mut **reference, &mut **figure],
                walk,
                plan,
                paired_ops,
                samples,
                pairs,
            ),
            None => {
                // The figure's samples are the second vector, as when paired.
                let [_, figure_ns] = samples;
                let mut out = [std::mem::take(figure_ns)];
                sample_sides(
                    &mut [&mut **figure],
                    walk,
                    plan,
                    single_ops,
                    &mut out,
                    pairs,
                );
                let [f] = out;
                *figure_ns = f;
            }
        }
    }

    /// What a paired comparison collected (`None` for a figure on its own).
    pub fn paired_samples(&self) -> Option<PairedSamples> {
        let [r_ops, f_ops] = self.paired_ops?;
        let [reference_ns, figure_ns] = &self.samples;
        Some(PairedSamples {
            reference_batch: r_ops,
            figure_batch: f_ops,
            reference_ns: reference_ns.clone(),
            figure_ns: figure_ns.clone(),
        })
    }

    /// What a figure on its own collected (`None` for a paired one).
    pub fn single_samples(&self) -> Option<SingleSamples> {
        let [ops] = self.single_ops?;
        Some(SingleSamples {
            batch: ops,
            ns: self.samples.get(1).cloned().unwrap_or_default(),
        })
    }
}

/// Measures figure against reference, interleaved (see the module docs),
/// all [`Plan::pairs`] pairs at once.
pub fn paired(
    plan: &Plan,
    seed: u64,
    reference: impl FnMut(&mut Walk, u64) -> Duration,
    figure: impl FnMut(&mut Walk, u64) -> Duration,
) -> PairedSamples {
    let mut comparison = Comparison::paired("", None, "", *plan, seed, reference, figure);
    comparison.sample(plan.pairs);
    comparison.paired_samples().unwrap_or(PairedSamples {
        reference_batch: 1,
        figure_batch: 1,
        reference_ns: Vec::new(),
        figure_ns: Vec::new(),
    })
}

// ---------------------------------------------------------------- statistics

/// The per-pair ratios `figure[i] / reference[i]` (pairs where the
/// reference is not positive are left out).
pub fn pair_ratios(reference: &[f64], figure: &[f64]) -> Vec<f64> {
    reference
        .iter()
        .zip(figure)
        .filter(|(r, _)| **r > 0.0)
        .map(|(r, f)| f / r)
        .collect()
}

/// The `p`-th percentile (0–100) of `values`, linearly interpolated between
/// the two nearest ranks (numpy's default); `NaN` for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    match (sorted.get(below), sorted.get(above)) {
        (Some(lo), Some(hi)) => lo + (hi - lo) * (rank - below as f64),
        _ => f64::NAN,
    }
}

/// The median of `values` (the 50th percentile).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// A median and the 5th–95th percentile range around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The 5th percentile.
    pub p5: f64,
    /// The 95th percentile.
    pub p95: f64,
}

impl Spread {
    /// The spread of `values`.
    pub fn of(values: &[f64]) -> Self {
        Self {
            median: median(values),
            p5: percentile(values, 5.0),
            p95: percentile(values, 95.0),
        }
    }

    /// The spread of `f(value)` for each value, `f` applied to the values
    /// (not to this summary: a percentile of inverses is not exactly the
    /// inverse of a percentile once interpolated).
    pub fn of_map(values: &[f64], f: impl Fn(f64) -> f64) -> Self {
        let mapped: Vec<f64> = values.iter().map(|v| f(*v)).collect();
        Self::of(&mapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert!(close(median(&values), 3.0));
        assert!(close(percentile(&values, 0.0), 1.0));
        assert!(close(percentile(&values, 100.0), 5.0));
        assert!(close(percentile(&values, 25.0), 2.0));
        // Rank 0.05 × 4 = 0.2: a fifth of the way from 1 to 2.
        assert!(close(percentile(&values, 5.0), 1.2));
        assert!(close(percentile(&values, 95.0), 4.8));
        assert!(close(median(&[1.0, 2.0, 3.0, 10.0]), 2.5));
        assert!(close(median(&[7.0]), 7.0));
        assert!(median(&[]).is_nan());
        assert!(close(median(&[f64::NAN, 2.0, 4.0]), 3.0));
    }

    #[test]
    fn ratios_are_pair_by_pair() {
        let reference = [100.0, 200.0, 0.0, 50.0];
        let figure = [150.0, 220.0, 10.0, 100.0];
        assert_eq!(pair_ratios(&reference, &figure), vec![1.5, 1.1, 2.0]);
        let samples = PairedSamples {
            reference_batch: 10,
            figure_batch: 20,
            reference_ns: reference.to_vec(),
            figure_ns: figure.to_vec(),
        };
        assert_eq!(samples.ratios(), vec![1.5, 1.1, 2.0]);
        // The median of the ratios, not the ratio of the medians: a slow
        // pair (both sides slowed) does not move it.
        let spread = Spread::of(&samples.ratios());
        assert!(close(spread.median, 1.5));
    }

    #[test]
    fn a_spread_of_mapped_values() {
        let values: Vec<f64> = (1..=101).map(f64::from).collect();
        let spread = Spread::of(&values);
        assert!(close(spread.median, 51.0));
        assert!(close(spread.p5, 6.0));
        assert!(close(spread.p95, 96.0));
        let inverse = Spread::of_map(&values, |v| 1.0 / v);
        assert!(close(inverse.median, 1.0 / 51.0));
        assert!(close(inverse.p5, 1.0 / 96.0));
        assert!(close(inverse.p95, 1.0 / 6.0));
    }

    #[test]
    fn batches_last_the_target() {
        assert_eq!(batch_size(Duration::from_millis(1), 100.0), 10_000);
        assert_eq!(batch_size(Duration::from_millis(3), 70_000.0), 43);
        assert_eq!(batch_size(Duration::from_millis(1), 5e6), 1);
        assert_eq!(batch_size(Duration::from_millis(1), 0.0), 1);
        assert_eq!(batch_size(Duration::from_millis(1), f64::NAN), 1);
    }

    #[test]
    fn pairs_alternate_which_side_goes_first() {
        use std::cell::RefCell;
        let order = RefCell::new(Vec::new());
        let plan = Plan {
            batch: Duration::ZERO,
            warmup: Duration::ZERO,
            pairs: 4,
        };
        let samples = paired(
            &plan,
            1,
            |_, _| {
                order.borrow_mut().push('R');
                Duration::from_nanos(100)
            },
            |_, _| {
                order.borrow_mut().push('F');
                Duration::from_nanos(150)
            },
        );
        let order: String = order.into_inner().into_iter().collect();
        // Calibration (one batch each), twice three warm-up rounds, then
        // the pairs.
        assert_eq!(order, "RFRFRFRFRFRFRFRFFRRFFR");
        assert_eq!(samples.reference_ns.len(), 4);
        assert_eq!(samples.ratios(), vec![1.5; 4]);
    }

    #[test]
    fn comparisons_sample_in_rounds() {
        use std::cell::RefCell;
        let order = RefCell::new(String::new());
        let plan = Plan {
            batch: Duration::ZERO,
            warmup: Duration::ZERO,
            pairs: 0,
        };
        let mut comparison = Comparison::paired(
            "f",
            Some(10),
            "r",
            plan,
            1,
            |_, _| {
                order.borrow_mut().push('R');
                Duration::from_nanos(100)
            },
            |_, _| {
                order.borrow_mut().push('F');
                Duration::from_nanos(200)
            },
        );
        comparison.sample(3);
        assert_eq!(*order.borrow(), "RFRFRFRFRFRFRFRFFRRF");
        order.borrow_mut().clear();
        // A warm-up again (three rounds), then pairs 4 and 5 go on
        // alternating where the first call stopped.
        comparison.sample(2);
        assert_eq!(*order.borrow(), "RFRFRFFRRF");
        assert_eq!(comparison.pairs(), 5);
        let samples = comparison.paired_samples().unwrap();
        assert_eq!(samples.ratios(), vec![2.0; 5]);
        assert!(comparison.single_samples().is_none());

        let mut alone =
            Comparison::single("s", None, plan, 1, |_, ops| Duration::from_nanos(50 * ops));
        alone.sample(4);
        alone.sample(1);
        let samples = alone.single_samples().unwrap();
        assert_eq!(samples.ns, vec![50.0; 5]);
        assert!(alone.paired_samples().is_none());
    }
}
