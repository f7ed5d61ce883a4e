//! What the commands print: aligned tables or JSON on stdout, notes on
//! stderr, colours only on a terminal and never with `NO_COLOR`.

use crate::failure::Failure;
use keyward::chrono::{DateTime, Utc};
use keyward::{KeyDetails, Status};
use std::io::{IsTerminal, Write};

/// Longest text a table cell shows (names can be 16 KiB).
const MAX_CELL: usize = 48;

/// How a cell is drawn on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
}

impl Style {
    fn code(self) -> Option<&'static str> {
        match self {
            Self::Plain => None,
            Self::Good => Some("32"),
            Self::Warn => Some("33"),
            Self::Bad => Some("31"),
            Self::Dim => Some("2"),
        }
    }

    pub(crate) fn of_status(status: Status) -> Self {
        match status {
            Status::Active => Self::Good,
            Status::Disabled => Self::Warn,
            Status::Revoked => Self::Bad,
            _ => Self::Dim,
        }
    }
}

/// One table cell.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Self::styled(text, Style::Plain)
    }

    pub(crate) fn styled(text: impl Into<String>, style: Style) -> Self {
        let text = printable(&text.into());
        let text = if text.chars().count() > MAX_CELL {
            let mut cut: String = text.chars().take(MAX_CELL - 1).collect();
            cut.push('…');
            cut
        } else {
            text
        };
        Self { text, style }
    }
}

/// `text` with every control character shown escaped (`\n`, `\u{1b}`), so
/// stored text (metadata values may hold any character but NUL) can never
/// move the cursor, recolour or retitle the operator's terminal.
fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Where output goes and how it looks.
#[derive(Debug)]
pub(crate) struct Output {
    json: bool,
    color: bool,
}

/// Whether to colour: stdout is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
fn wants_color(no_color: Option<std::ffi::OsString>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        let color = !json
            && wants_color(
                std::env::var_os("NO_COLOR"),
                std::io::stdout().is_terminal(),
            );
        Self { json, color }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// `value` as pretty JSON on stdout.
    pub(crate) fn json(&self, value: &impl serde::Serialize) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        Ok(())
    }

    /// One line on stdout.
    pub(crate) fn line(&self, text: &str) -> Result<(), Failure> {
        writeln!(std::io::stdout().lock(), "{text}")?;
        Ok(())
    }

    /// One line on stderr (warnings and notes, never data).
    pub(crate) fn note(&self, text: &str) -> Result<(), Failure> {
        writeln!(std::io::stderr().lock(), "{text}")?;
        Ok(())
    }

    /// An aligned table on stdout, with a header.
    pub(crate) fn table(&self, headers: &[&str], rows: &[Vec<Cell>]) -> Result<(), Failure> {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.text.chars().count());
            }
        }
        let mut out = std::io::stdout().lock();
        let header: Vec<Cell> = headers.iter().map(|h| Cell::new(*h)).collect();
        self.row(&mut out, &header, &widths, true)?;
        for row in rows {
            self.row(&mut out, row, &widths, false)?;
        }
        Ok(())
    }

    fn row(
        &self,
        out: &mut impl Write,
        cells: &[Cell],
        widths: &[usize],
        header: bool,
    ) -> Result<(), Failure> {
        let mut line = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = if i == last {
                0
            } else {
                width.saturating_sub(cell.text.chars().count()) + 2
            };
            let code = if header { Some("1") } else { cell.style.code() };
            match code.filter(|_| self.color) {
                Some(code) => line.push_str(&format!("\x1b[{code}m{}\x1b[0m", cell.text)),
                None => line.push_str(&cell.text),
            }
            line.push_str(&" ".repeat(pad));
        }
        writeln!(out, "{}", line.trim_end())?;
        Ok(())
    }

    /// `label: value` pairs, labels aligned, on stdout.
    pub(crate) fn fields(&self, pairs: &[(&str, Cell)]) -> Result<(), Failure> {
        let width = pairs.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut out = std::io::stdout().lock();
        for (label, value) in pairs {
            let text = match value.style.code().filter(|_| self.color) {
                Some(code) => format!("\x1b[{code}m{}\x1b[0m", value.text),
                None => value.text.clone(),
            };
            writeln!(out, "{label:>width$}  {text}")?;
        }
        Ok(())
    }
}

/// A time as tables show it: `2026-12-03 17:02 UTC`, or `dash` when absent.
pub(crate) fn time(at: Option<DateTime<Utc>>, dash: &str) -> String {
    at.map_or_else(
        || dash.to_owned(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A permission set, roles or similar list as one cell.
pub(crate) fn joined<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let text = items.collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

/// The columns of a key list.
pub(crate) const KEY_HEADERS: [&str; 8] = [
    "ID",
    "KIND",
    "NAME",
    "STATUS",
    "PREVIEW",
    "CREATED",
    "LAST USED",
    "EXPIRES",
];

/// One key as a row of [`KEY_HEADERS`].
pub(crate) fn key_row(key: &KeyDetails, now: DateTime<Utc>) -> Vec<Cell> {
    vec![
        Cell::new(key.id.as_str()),
        Cell::new(key.kind.as_str()),
        Cell::new(key.name.as_str()),
        Cell::styled(key.status.to_string(), Style::of_status(key.status)),
        Cell::new(key.preview.as_str()),
        Cell::new(time(Some(key.created_at), "-")),
        Cell::new(key.last_used(now)),
        Cell::new(time(key.expires_at, "never")),
    ]
}

/// One key's details as `show` prints them (and `revoke`, `disable`, `enable`).
pub(crate) fn key_fields(
    output: &Output,
    key: &KeyDetails,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let metadata = key
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    output.fields(&[
        ("id", Cell::new(key.id.as_str())),
        ("kind", Cell::new(key.kind.as_str())),
        ("owner", Cell::new(key.owner.as_str())),
        ("name", Cell::new(key.name.as_str())),
        ("preview", Cell::new(key.preview.as_str())),
        (
            "status",
            Cell::styled(key.status.to_string(), Style::of_status(key.status)),
        ),
        ("scopes", Cell::new(joined(key.scopes.iter()))),
        (
            "roles",
            Cell::new(joined(key.roles.iter().map(|r| r.as_str()))),
        ),
        ("permissions", Cell::new(joined(key.permissions.iter()))),
        (
            "metadata",
            Cell::new(if metadata.is_empty() {
                "-".to_owned()
            } else {
                metadata
            }),
        ),
        ("created", Cell::new(time(Some(key.created_at), "-"))),
        ("created by", Cell::new(key.created_by.as_str())),
        ("expires", Cell::new(time(key.expires_at, "never"))),
        ("last used", Cell::new(key.last_used(now))),
        ("revoked", Cell::new(time(key.revoked_at, "-"))),
        (
            "rotated from",
            Cell::new(key.rotated_from.as_ref().map_or("-", |id| id.as_str())),
        ),
        (
            "rotated to",
            Cell::new(key.rotated_to.as_ref().map_or("-", |id| id.as_str())),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(wants_color(None, true));
        assert!(!wants_color(None, false));
        assert!(!wants_color(Some("1".into()), true));
        assert!(
            wants_color(Some("".into()), true),
            "an empty NO_COLOR is unset"
        );
    }

    #[test]
    fn stored_text_cannot_drive_the_terminal() {
        let cell = Cell::new("ok\u{1b}]0;pwned\u{7}\nline\u{9b}31m");
        assert!(!cell.text.chars().any(char::is_control), "{}", cell.text);
        assert_eq!(cell.text, "ok\\u{1b}]0;pwned\\u{7}\\nline\\u{9b}31m");
        assert_eq!(Cell::new("plain é").text, "plain é");
    }

    #[test]
    fn long_cells_are_cut() {
        let cell = Cell::new("é".repeat(100));
        assert_eq!(cell.text.chars().count(), MAX_CELL);
        assert!(cell.text.ends_with('…'));
    }
}
