//! Writing a [`ScanReport`](crate::ScanReport) for people and for tools:
//! [`text`] (one line per finding), [`json`] (a documented, stable shape)
//! and [`sarif`] (SARIF 2.1.0, which code-scanning services ingest).
//!
//! Every writer shows the masked [`Finding::preview`](crate::Finding::preview)
//! unless it is given [`Shown::Token`]: the token itself is never written
//! by accident.

pub mod json;
pub mod sarif;
pub mod text;

/// What a report shows of each token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shown {
    /// Prefix, key id and `…` (the default): no secret.
    #[default]
    Preview,
    /// The whole token, secret included: only when the user asks for it
    /// explicitly (`keyward scan --show-token`).
    Token,
}
