//! Injectable time.

use chrono::{DateTime, SubsecRound, Utc};
use std::fmt::Debug;

/// A source of the current time. Production uses [`SystemClock`]; tests can
/// inject a manual clock (the `testkit` feature has one).
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Truncates to whole microseconds, the precision every adapter stores, so a
/// record reads back exactly as it was written.
pub(crate) fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}
