//! Shared pieces for SQL adapters: the table prefix and the status filter.

use crate::error::Error;
use crate::lifecycle::Status;
use std::fmt;

/// A validated SQL identifier prefix: `[a-z_][a-z0-9_]*`, at most 32 bytes,
/// or empty. Safe to splice into DDL and queries (it can never hold a quote,
/// space or keyword separator); every *value* is still a bound parameter.
///
/// ```
/// use keyward_core::store::sql::TablePrefix;
/// assert_eq!(TablePrefix::new("keyward_")?.table("keys"), "keyward_keys");
/// assert!(TablePrefix::new("x\"; DROP TABLE users; --").is_err());
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TablePrefix(String);

impl TablePrefix {
    /// Validates `prefix`.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let mut bytes = prefix.bytes();
        let valid = prefix.len() <= 32
            && bytes
                .next()
                .is_none_or(|b| b.is_ascii_lowercase() || b == b'_')
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(prefix.to_owned()))
        } else {
            Err(Error::invalid(
                "table prefix",
                "must match [a-z_][a-z0-9_]* and be at most 32 bytes",
            ))
        }
    }

    /// The prefixed table name.
    pub fn table(&self, name: &str) -> String {
        format!("{}{name}", self.0)
    }

    /// The prefix itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TablePrefix {
    /// `keyward_`.
    fn default() -> Self {
        Self("keyward_".to_owned())
    }
}

impl fmt::Display for TablePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SQL condition selecting keys in any of `statuses` at the time bound
/// to the placeholder `now` (`:now`, `$6` …), or `None` for no filter.
///
/// Columns: `state` (`'active' | 'disabled' | 'revoked'`) and `expires_at`.
/// Only fixed text and the given placeholder go into it; values are bound.
pub fn status_condition(statuses: &[Status], now: &str) -> Option<String> {
    if statuses.is_empty() {
        return None;
    }
    let live = format!("(expires_at IS NULL OR expires_at > {now})");
    let parts: Vec<String> = statuses
        .iter()
        .map(|status| match status {
            Status::Active => format!("(state = 'active' AND {live})"),
            Status::Disabled => format!("(state = 'disabled' AND {live})"),
            Status::Expired => format!("(state <> 'revoked' AND expires_at <= {now})"),
            Status::Revoked => "(state = 'revoked')".to_owned(),
        })
        .collect();
    Some(format!("({})", parts.join(" OR ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_pass() {
        for ok in ["", "keyward_", "_x", "app1_"] {
            assert!(TablePrefix::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1x",
            "Key",
            "a-b",
            "a b",
            "a;",
            "a\"",
            "a'",
            &"a".repeat(33),
            "é",
        ] {
            assert!(TablePrefix::new(bad).is_err(), "{bad}");
        }
    }
}
