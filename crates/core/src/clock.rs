//! Injectable time.

use chrono::{DateTime, SubsecRound, Utc};
use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time. Production uses [`SystemClock`]; tests can
/// inject a manual clock (the `testkit` feature has one).
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// The current time in whole microseconds since the Unix epoch: what
    /// the verify path reads (a clock can answer it without building a
    /// calendar date).
    fn now_micros(&self) -> i64 {
        self.now().timestamp_micros()
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn now_micros(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
            Err(_) => self.now().timestamp_micros(),
        }
    }
}

/// Truncates to whole microseconds, the precision every adapter stores, so a
/// record reads back exactly as it was written.
pub(crate) fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}
