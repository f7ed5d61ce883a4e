//! keyward's benchmarks: the fixtures the criterion benches share
//! ([`fixture`]), and the report that turns a run's results into the table
//! of `docs/performance.md` ([`report`]).
//!
//! ```sh
//! cargo bench -p keyward-bench                         # full run
//! KEYWARD_BENCH_SHORT=1 cargo bench -p keyward-bench   # short run, under two minutes
//! cargo run -p keyward-bench --release --bin report    # the table, from the run above
//! ```
//!
//! Postgres figures need `DATABASE_URL` (each run uses a fresh schema and
//! drops it afterwards); without it they are skipped with a notice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing,
    reason = "benchmark harness: a failed setup should stop the run loudly, and its output is the point"
)]

pub mod fixture;
pub mod report;
