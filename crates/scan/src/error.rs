//! Why a scan could not start.

/// Why a [`Scanner`](crate::Scanner) could not be built. Problems met while
/// scanning (an unreadable file, a path that does not exist) do not stop
/// the scan: they are listed in [`ScanReport::problems`](crate::ScanReport::problems).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The format declares no token kinds, so nothing could ever be found.
    #[error("the token format declares no kinds: nothing to scan for")]
    NoKinds,
    /// The prefix search could not be built from the kinds' prefixes.
    #[error("cannot build the prefix search: {source}")]
    Prefixes {
        /// The search library's reason.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An option is out of its documented range.
    #[error("invalid scan option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is allowed.
        reason: String,
    },
}
