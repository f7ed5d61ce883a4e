//! What is wrong with a configuration file, and where.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration file that could not be read or does not describe a
/// valid deployment.
///
/// Its `Display` is one line: the file, the line and column, the field as
/// a dotted path, and what is wrong with what is allowed:
///
/// ```text
/// keyward.toml:7:11: kinds.mt.expiry.default: `1 year` is not one of the choices (allowed: 1 month, 3 months, 6 months)
/// ```
///
/// It never holds a secret: the pepper and a store URL from the
/// environment are never echoed.
#[derive(Debug)]
pub struct ConfigError {
    file: Option<PathBuf>,
    position: Option<(usize, usize)>,
    field: Option<String>,
    message: String,
    source: Option<std::io::Error>,
}

impl ConfigError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self {
            file: None,
            position: None,
            field: None,
            // One line, whatever the parser wrote.
            message: message.into().replace('\n', " "),
            source: None,
        }
    }

    pub(super) fn io(path: &Path, source: std::io::Error) -> Self {
        let mut error = Self::new(format!("cannot read the file: {source}"));
        error.file = Some(path.to_owned());
        error.source = Some(source);
        error
    }

    pub(super) fn at(mut self, text: &str, offset: usize) -> Self {
        self.position = Some(line_and_column(text, offset));
        self
    }

    pub(super) fn field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        if !field.is_empty() && field != "." {
            self.field = Some(field);
        }
        self
    }

    pub(super) fn in_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_owned());
        self
    }

    /// The file, when the configuration was read from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The line (from 1) where the problem is, when it has a place.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(line, _)| line)
    }

    /// The column (from 1, in characters) where the problem is.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|(_, column)| column)
    }

    /// The field, as a dotted path (`kinds.mt.expiry.default`).
    pub fn field_path(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong, and what is allowed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = String::new();
        if let Some(file) = &self.file {
            place.push_str(&file.display().to_string());
        }
        if let Some((line, column)) = self.position {
            if place.is_empty() {
                place.push_str("line ");
                place.push_str(&format!("{line}:{column}"));
            } else {
                place.push_str(&format!(":{line}:{column}"));
            }
        }
        if !place.is_empty() {
            write!(f, "{place}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 6), (2, 1));
        assert_eq!(line_and_column(text, 10), (2, 4), "é is one column");
        assert_eq!(line_and_column(text, 8), (2, 2), "inside é: its start");
        assert_eq!(line_and_column(text, 999), (3, 1));
    }
}
