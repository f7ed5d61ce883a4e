//! How long a key lives. A plain value below the error type (which names
//! it), so it imports nothing from the crate; its fallible arithmetic is in
//! the parent module.

use chrono::{DateTime, Utc};
use std::fmt;

/// How long a key lives: a calendar span from issue, a fixed date, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// That many days.
    Days(u32),
    /// That many calendar months (Jan 31 + 1 month = Feb 28/29).
    Months(u32),
    /// That many calendar years.
    Years(u32),
    /// Until a fixed time; allowed only by a policy with a maximum.
    Until(DateTime<Utc>),
    /// Never expires.
    Never,
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = |f: &mut fmt::Formatter<'_>, n: u32, one: &str| {
            write!(f, "{n} {one}{}", if n == 1 { "" } else { "s" })
        };
        match *self {
            Self::Days(n) => unit(f, n, "day"),
            Self::Months(n) => unit(f, n, "month"),
            Self::Years(n) => unit(f, n, "year"),
            Self::Until(at) => write!(f, "until {}", at.format("%Y-%m-%d %H:%M UTC")),
            Self::Never => f.write_str("never"),
        }
    }
}
