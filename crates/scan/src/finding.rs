//! What a scan found, and where.

use keyward_core::KeyId;
use std::fmt;
use zeroize::Zeroizing;

/// A token found by a scan: where it is, its kind and key, and the token
/// itself, kept out of every `Debug` and shown only through
/// [`Finding::expose_token`].
#[derive(Clone)]
pub struct Finding {
    pub(crate) path: String,
    pub(crate) line: u64,
    pub(crate) column: u64,
    pub(crate) char_column: u64,
    pub(crate) kind: String,
    pub(crate) key_id: KeyId,
    pub(crate) token: Zeroizing<String>,
}

impl Finding {
    /// Where the token was found: the path as walked (a leading `./`
    /// removed), or `-` for standard input.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The line, counted from 1 (lines end at `\n`, so CRLF files count as
    /// editors do). In UTF-16 files, the line of the decoded text.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The column of the token's first character, counted from 1 in bytes
    /// of UTF-8 text (as ripgrep's `--column` and editors' byte columns):
    /// in UTF-16 files, in bytes of the text decoded to UTF-8.
    pub fn column(&self) -> u64 {
        self.column
    }

    /// The same column counted in Unicode scalar values (characters) from
    /// 1, as SARIF's `unicodeCodePoints` column kind: equal to
    /// [`Finding::column`] on a line of ASCII.
    pub fn char_column(&self) -> u64 {
        self.char_column
    }

    /// The token's kind (its prefix).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The key the token names (public, safe to show): what to look up and
    /// revoke.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The masked form shown in reports: prefix, key id and `…`
    /// (`mt_AbCdEf1234…`). The key id is public; no character of the secret
    /// or the checksum is in it.
    pub fn preview(&self) -> String {
        format!("{}_{}…", self.kind, self.key_id)
    }

    /// The length of the token in bytes (it is ASCII).
    pub fn len(&self) -> usize {
        self.token.len()
    }

    /// Always `false`: a token is never empty. (Here for `len`'s sake.)
    pub fn is_empty(&self) -> bool {
        self.token.is_empty()
    }

    /// The whole token, secret included: for a report the user explicitly
    /// asked to show it in, or to verify the token before revoking its key.
    pub fn expose_token(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finding")
            .field("path", &self.path)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("char_column", &self.char_column)
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .field("token", &"[redacted]")
            .finish()
    }
}
