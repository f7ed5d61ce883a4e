//! Why a command failed, and the exit code that says so.

use keyward::Error;
use keyward::config::ConfigError;

/// A failed command: one line for stderr and its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

/// Exit code: the operation was refused, or what it names does not exist.
pub(crate) const REFUSED: u8 = 1;
/// Exit code: the command could not be answered (usage, configuration,
/// store unreachable).
pub(crate) const UNANSWERED: u8 = 2;

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(message, UNANSWERED)
    }

    fn new(message: impl Into<String>, code: u8) -> Self {
        Self {
            message: one_line(&message.into()),
            code,
        }
    }
}

/// A failed call about one key: "not found" names the id it looked for.
pub(crate) fn about_key(id: &keyward::KeyId, error: Error) -> Failure {
    if matches!(error, Error::NotFound) {
        Failure::new(format!("no key with id {id}"), REFUSED)
    } else {
        error.into()
    }
}

/// The error and its sources, on one line: a driver's reason is worth
/// reading ("connection refused"), and none of them holds a secret.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            // The request itself asks for what cannot be: a usage error.
            Error::InvalidInput { .. }
            | Error::ExpiryNotAllowed { .. }
            | Error::OutsideCatalog { .. } => UNANSWERED,
            // Nothing is known: the store did not answer.
            Error::Backend { .. } => UNANSWERED,
            _ => REFUSED,
        };
        let mut message = chain(&error);
        let missing_table = message.contains("no such table")
            || (message.contains("relation") && message.contains("does not exist"));
        if matches!(error, Error::Backend { .. }) && missing_table {
            message.push_str(" (has `keyward migrate` run?)");
        }
        Self::new(message, code)
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        let mut message = error.to_string();
        // The file could not be read at all (its I/O error is the source).
        if std::error::Error::source(&error).is_some() {
            message.push_str(" (give --config PATH or set KEYWARD_CONFIG)");
        }
        Self::usage(message)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Self::usage(format!("cannot write the output: {error}"))
    }
}

impl From<serde_json::Error> for Failure {
    fn from(error: serde_json::Error) -> Self {
        Self::usage(format!("cannot write JSON: {error}"))
    }
}
