//! Leak response's vocabulary: a token someone found in public (a code
//! host's secret scanning, an operator's scan), what its report came to,
//! and what the leak hook is told. `Keyward::report_leak` answers it;
//! receivers for GitHub and GitLab are in keyward-axum.

use crate::key::{KeyId, Owner};
use std::fmt;

/// A token reported as leaked: the token itself, who reported it, and
/// where it was found. `Debug` never shows the token.
#[derive(Clone, Copy)]
pub struct LeakReport<'a> {
    pub(crate) token: &'a str,
    pub(crate) reporter: &'a str,
    pub(crate) source: &'a str,
    pub(crate) url: Option<&'a str>,
}

impl<'a> LeakReport<'a> {
    /// `token`, reported by `reporter` (the operator the revoke is
    /// performed and audited as: `github` revokes as `operator:github`).
    pub fn new(token: &'a str, reporter: &'a str) -> Self {
        Self {
            token,
            reporter,
            source: "",
            url: None,
        }
    }

    /// What kind of place it was found in (GitHub's `source`: `content`,
    /// `commit`, `gist` …).
    pub fn source(mut self, source: &'a str) -> Self {
        self.source = source;
        self
    }

    /// Where it was found.
    pub fn url(mut self, url: &'a str) -> Self {
        self.url = Some(url);
        self
    }
}

impl fmt::Debug for LeakReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakReport")
            .field("token", &"[redacted]")
            .field("reporter", &self.reporter)
            .field("source", &self.source)
            .field("url", &self.url)
            .finish()
    }
}

/// What a leak report came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeakVerdict {
    /// The token is one this service issued, with the right secret: its key
    /// is revoked (by this report, or already before it).
    Confirmed(ConfirmedLeak),
    /// Not a token of this service: malformed, a wrong checksum, an unknown
    /// key id, another kind, or a secret that does not match. Nothing was
    /// changed; a malformed token or a wrong checksum never reached the
    /// store.
    FalsePositive,
}

impl LeakVerdict {
    /// Whether the token was one of ours.
    pub fn is_confirmed(&self) -> bool {
        matches!(self, Self::Confirmed(_))
    }
}

/// A confirmed leak, as the leak hook and the caller see it. Holds no
/// part of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfirmedLeak {
    /// The leaked key.
    pub key_id: KeyId,
    /// Its kind's prefix.
    pub kind: String,
    /// Its owner, to tell.
    pub owner: Owner,
    /// Its name.
    pub name: String,
    /// Whether this report revoked it (`false`: it was revoked already,
    /// for example by an earlier report of the same token).
    pub newly_revoked: bool,
    /// Who reported it.
    pub reporter: String,
    /// Where it was found, as reported (`None` when the report gave no
    /// URL, or one that itself holds a token).
    pub url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_never_shows_its_token() {
        let report = LeakReport::new("mt_secretsecret", "github").url("https://x");
        let shown = format!("{report:?}");
        assert!(!shown.contains("secretsecret"), "{shown}");
    }
}
