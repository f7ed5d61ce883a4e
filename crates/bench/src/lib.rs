//! keyward's benchmarks: the fixtures the bench shares ([`fixture`]), the
//! paired, interleaved harness and its statistics ([`paired`]), a run's
//! results file ([`results`]), and the report that turns it into the table
//! of `docs/performance.md` and compares two runs ([`report`]); the peers
//! it is measured against ([`peers`]).
//!
//! ```sh
//! cargo bench -p keyward-bench                         # full run, a few minutes
//! KEYWARD_BENCH_SHORT=1 cargo bench -p keyward-bench   # short run, under a minute
//! cargo run -p keyward-bench --release --bin report    # the table, from the run above
//! cargo run -p keyward-bench --release --bin report -- --compare quiet busy
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
pub mod http;
pub mod leaks;
pub mod paired;
pub mod peers;
pub mod report;
pub mod results;
pub mod scan;
