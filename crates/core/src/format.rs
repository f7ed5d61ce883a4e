//! The token grammar: `<prefix>_<key id><secret><checksum>`.
//!
//! See `docs/token-format.md` (included in the crate docs) for the full grammar.

use crate::error::Error;
use crate::key::KeyId;
use crate::kind::{CHECKSUM_LEN, TokenKind};
use crate::secret::{PlaintextToken, SecretSource};
use std::ops::Range;
use zeroize::Zeroizing;

/// The body alphabet, in digit order.
pub(crate) const BASE62: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Inputs longer than this are rejected before any other work.
pub const MAX_TOKEN_LEN: usize = 128;

/// Why a string is not a token of the format. Never contains the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is empty.
    #[error("empty token")]
    Empty,
    /// The input is longer than any token ([`MAX_TOKEN_LEN`]).
    #[error("token too long")]
    TooLong,
    /// No `_` separates a prefix from the body.
    #[error("missing prefix")]
    MissingPrefix,
    /// The prefix names no configured kind.
    #[error("unknown token kind")]
    UnknownKind,
    /// The body has the wrong length for its kind.
    #[error("bad length: expected {expected} characters after the prefix, found {found}")]
    BadLength {
        /// The kind's body length.
        expected: usize,
        /// The body length found.
        found: usize,
    },
    /// A byte outside `[A-Za-z0-9]` in the body.
    #[error("bad character at byte {position}")]
    BadCharacter {
        /// Byte offset in the token.
        position: usize,
    },
    /// The checksum does not match (a typo or a made-up token).
    #[error("bad checksum")]
    BadChecksum,
}

/// A structurally valid token, borrowed from the input.
#[derive(Clone, Copy)]
pub struct ParsedToken<'a> {
    kind: &'a TokenKind,
    kind_index: usize,
    key_id: &'a str,
    secret: &'a str,
}

impl<'a> ParsedToken<'a> {
    /// The token's kind.
    pub fn kind(&self) -> &'a TokenKind {
        self.kind
    }
    /// The public key id (safe to log).
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }
    pub(crate) fn secret(&self) -> &'a str {
        self.secret
    }
    /// The kind's position in the format.
    pub(crate) fn kind_index(&self) -> usize {
        self.kind_index
    }
}

impl std::fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken")
            .field("kind", &self.kind.prefix())
            .field("key_id", &self.key_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A token found by [`TokenFormat::scan`]: where it is and which key it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    /// The kind's prefix.
    pub kind: String,
    /// The key id, to look up and revoke the leaked key.
    pub key_id: KeyId,
    /// Byte range of the token in the scanned text.
    pub span: Range<usize>,
}

/// The set of token kinds a deployment issues.
#[derive(Debug, Clone, Default)]
pub struct TokenFormat {
    kinds: Vec<TokenKind>,
}

impl TokenFormat {
    /// A format of the given kinds; prefixes must be distinct.
    pub fn new(kinds: impl IntoIterator<Item = TokenKind>) -> Result<Self, Error> {
        let mut format = Self::default();
        for kind in kinds {
            format.add(kind)?;
        }
        Ok(format)
    }

    pub(crate) fn add(&mut self, kind: TokenKind) -> Result<(), Error> {
        if self.kind(kind.prefix()).is_some() {
            return Err(Error::invalid("kind", "two kinds share a prefix"));
        }
        self.kinds.push(kind);
        Ok(())
    }

    /// The configured kinds.
    pub fn kinds(&self) -> &[TokenKind] {
        &self.kinds
    }

    /// The position of the kind with this prefix.
    pub(crate) fn kind_index(&self, prefix: &str) -> Option<usize> {
        self.kinds.iter().position(|k| k.prefix() == prefix)
    }

    /// The kind with this prefix.
    pub fn kind(&self, prefix: &str) -> Option<&TokenKind> {
        self.kinds.iter().find(|k| k.prefix() == prefix)
    }

    /// Parses a token: length, prefix, body length, alphabet, then checksum,
    /// cheapest first. Touches no storage.
    ///
    /// Prefixes may nest (`sk` and `sk_live`), even with equal token
    /// lengths: every kind whose prefix, separator and length match is
    /// considered, and the one whose body is all base62 wins. At most one
    /// can: the longer prefix puts a `_` inside the shorter one's body.
    ///
    /// ```
    /// use keyward_core::{token::ParseError, token::TokenFormat, TokenKind};
    /// let format = TokenFormat::new([TokenKind::new("tak")?])?;
    /// assert_eq!(format.parse("tak_short").unwrap_err(), ParseError::BadLength { expected: 43, found: 5 });
    /// assert_eq!(format.parse("xyz_abc").unwrap_err(), ParseError::UnknownKind);
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse<'a>(&'a self, token: &'a str) -> Result<ParsedToken<'a>, ParseError> {
        match self.parse_well_formed(token) {
            Some(parsed) => parsed,
            None => self.classify(token),
        }
    }

    /// The common case without any scan: a configured kind's exact length,
    /// prefix and separator, and a body of base62 only. Then only the
    /// checksum can fail. Kinds whose prefix nests inside another's are
    /// all tried; a body holding `_` means the token is not of that kind.
    /// `None` sends the token to [`Self::classify`] for its precise error.
    fn parse_well_formed<'a>(
        &'a self,
        token: &'a str,
    ) -> Option<Result<ParsedToken<'a>, ParseError>> {
        let bytes = token.as_bytes();
        for (kind_index, kind) in self.kinds.iter().enumerate() {
            if bytes.len() != kind.token_len()
                || !bytes.starts_with(kind.prefix().as_bytes())
                || bytes.get(kind.prefix().len()) != Some(&b'_')
            {
                continue;
            }
            let Some(body) = token.get(kind.prefix().len() + 1..) else {
                continue;
            };
            if body.bytes().fold(true, |ok, b| ok & is_base62(b)) {
                return Some(Self::confirm(kind, kind_index, token, body));
            }
        }
        None
    }

    /// The checksum of a token whose kind, length and alphabet are right,
    /// then its parts.
    fn confirm<'a>(
        kind: &'a TokenKind,
        kind_index: usize,
        token: &'a str,
        body: &'a str,
    ) -> Result<ParsedToken<'a>, ParseError> {
        let (Some(signed), Some(checksum), Some(unsigned)) = (
            token.get(..token.len().saturating_sub(CHECKSUM_LEN)),
            token.get(token.len().saturating_sub(CHECKSUM_LEN)..),
            body.get(..body.len().saturating_sub(CHECKSUM_LEN)),
        ) else {
            return Err(ParseError::BadChecksum);
        };
        if !checksum_matches(crc32fast::hash(signed.as_bytes()), checksum.as_bytes()) {
            return Err(ParseError::BadChecksum);
        }
        let Some((key_id, secret)) = unsigned.split_at_checked(kind.key_id_len()) else {
            return Err(ParseError::BadChecksum);
        };
        Ok(ParsedToken {
            kind,
            kind_index,
            key_id,
            secret,
        })
    }

    /// The slow path, for what the fast path did not take: length, prefix,
    /// body length, alphabet, in that order, each with its own error.
    ///
    /// The kind is the one named by everything before the *last* `_`: a
    /// kind whose body is all base62 has no `_` after its separator, so no
    /// other configured kind could be the token's, however prefixes nest.
    fn classify<'a>(&'a self, token: &'a str) -> Result<ParsedToken<'a>, ParseError> {
        let bytes = token.as_bytes();
        if bytes.is_empty() {
            return Err(ParseError::Empty);
        }
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(ParseError::TooLong);
        }
        let Some(separator) = bytes.iter().rposition(|&b| b == b'_') else {
            return Err(ParseError::MissingPrefix);
        };
        let (prefix, body) = (&token[..separator], &token[separator + 1..]);
        let Some(kind_index) = self.kind_index(prefix) else {
            return Err(ParseError::UnknownKind);
        };
        let Some(kind) = self.kinds.get(kind_index) else {
            return Err(ParseError::UnknownKind);
        };
        if body.len() != kind.body_len() {
            return Err(ParseError::BadLength {
                expected: kind.body_len(),
                found: body.len(),
            });
        }
        match body.bytes().position(|b| !is_base62(b)) {
            Some(offset) => Err(ParseError::BadCharacter {
                position: separator + 1 + offset,
            }),
            // The fast path takes every well-formed token; this keeps the
            // slow path total rather than trusting that.
            None => Self::confirm(kind, kind_index, token, body),
        }
    }

    /// A regular expression that matches every token of this format, for
    /// secret scanners. Matches are candidates: confirm them with
    /// [`TokenFormat::parse`] (or use [`TokenFormat::scan`], which does both).
    ///
    /// ```
    /// use keyward_core::{token::TokenFormat, TokenKind};
    /// let format = TokenFormat::new([TokenKind::new("mm_pat")?.with_lengths(4, 22)?])?;
    /// assert_eq!(format.regex(), r"\b(?:mm_pat_[0-9A-Za-z]{32})\b");
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn regex(&self) -> String {
        let alternatives: Vec<String> = self
            .kinds
            .iter()
            .map(|k| format!("{}_[0-9A-Za-z]{{{}}}", k.prefix(), k.body_len()))
            .collect();
        format!(r"\b(?:{})\b", alternatives.join("|"))
    }

    /// Finds the tokens of this format in arbitrary text, confirmed by checksum,
    /// so look-alikes (a wrong checksum, a longer word, an unknown prefix) are
    /// not reported.
    ///
    /// A token is a whole run of `[A-Za-z0-9_]`, as the regex's `\b` demands.
    pub fn scan(&self, text: &str) -> Vec<FoundToken> {
        let mut found = Vec::new();
        let bytes = text.as_bytes();
        let mut start = None;
        for i in 0..=bytes.len() {
            let word = bytes
                .get(i)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
            match (word, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    start = None;
                    if let Ok(parsed) = self.parse(&text[s..i]) {
                        found.push(FoundToken {
                            kind: parsed.kind().prefix().to_owned(),
                            key_id: KeyId::from_parsed(parsed.key_id()),
                            span: s..i,
                        });
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Whether `text` hides a token of this format anywhere: a deliberately
    /// loose search, for refusing text (a key's name, metadata) that would
    /// show a token to everyone who reads lists and audit events.
    ///
    /// Where [`TokenFormat::scan`] reports whole words only, this also finds
    /// a token glued to other text (`prod_<token>`, `<token>_old`,
    /// `<token>s`, `2<token>`), with invisible characters inside it (format
    /// and default-ignorable code points such as U+00AD, U+200B–U+200F,
    /// U+2060–U+2064, U+FEFF, variation selectors, tag characters, and C1
    /// controls are skipped), with its prefix in any letter case (`MT_…`),
    /// or in fullwidth forms (`ｍｔ＿…`, folded to ASCII). A candidate is a
    /// configured prefix, matched case-insensitively at any position,
    /// followed by `_` and a body of the kind's length in base62; it counts
    /// only if its checksum matches when computed with the canonical
    /// (lowercase) prefix, so ordinary text is not refused by accident.
    ///
    /// Runs in time linear in the length of `text` times the number of
    /// kinds, allocates nothing, and never panics.
    ///
    /// ```
    /// use keyward_core::{token::TokenFormat, TokenKind};
    /// let format = TokenFormat::new([TokenKind::new("mt")?])?;
    /// let token = "mt_AbCdEf1234xxxxxxxxxxxxxxxxxxxxxxxxxxx47RLeo";
    /// assert!(format.parse(token).is_ok());
    /// assert!(format.scan(&format!("prod_{token}")).is_empty()); // not a whole word
    /// assert!(format.contains_token(&format!("prod_{token}")));
    /// assert!(format.contains_token(&token.replacen("mt_", "MT_", 1)));
    /// assert!(format.contains_token(&token.replacen("_", "_\u{200B}", 1)));
    /// assert!(!format.contains_token("mt_ plus ordinary words"));
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_token(&self, text: &str) -> bool {
        let mut window = Window::default();
        for c in text.chars() {
            let Some(byte) = visible_byte(c) else {
                continue;
            };
            window.push(byte);
            if self
                .kinds
                .iter()
                .any(|kind| window.ends_with_token_of(kind))
            {
                return true;
            }
        }
        false
    }

    /// Generates a token of `kind`: random key id and secret from `rng`, then
    /// the checksum.
    ///
    /// Returns the token with its parts, so nothing parses it back.
    pub(crate) fn generate(kind: &TokenKind, rng: &dyn SecretSource) -> Result<NewToken, Error> {
        let mut body = Zeroizing::new(String::with_capacity(kind.key_id_len() + kind.secret_len()));
        push_base62(&mut body, kind.key_id_len() + kind.secret_len(), rng)?;
        let key_id: String = body.chars().take(kind.key_id_len()).collect();
        let mut secret = Zeroizing::new(String::with_capacity(kind.secret_len()));
        secret.extend(body.chars().skip(kind.key_id_len()));
        let mut token = Zeroizing::new(String::with_capacity(kind.token_len()));
        token.push_str(kind.prefix());
        token.push('_');
        token.push_str(&body);
        let checksum = encode_checksum(crc32fast::hash(token.as_bytes()));
        checksum.iter().for_each(|&b| token.push(char::from(b)));
        Ok(NewToken {
            token: PlaintextToken::new(token),
            key_id: KeyId::from_parsed(&key_id),
            secret,
        })
    }
}

/// A token [`TokenFormat::generate`] just made, with its key id and where
/// its secret is.
pub(crate) struct NewToken {
    pub(crate) token: PlaintextToken,
    pub(crate) key_id: KeyId,
    /// The secret: what is hashed at rest.
    pub(crate) secret: Zeroizing<String>,
}

/// The last [`WINDOW`] visible bytes [`TokenFormat::contains_token`] has
/// read, and how many base62 bytes end it.
struct Window {
    bytes: [u8; WINDOW],
    /// Bytes pushed so far.
    pushed: usize,
    /// How many of the newest bytes are base62.
    run: usize,
}

/// At least the longest token (a 16-byte prefix, `_`, 24 + 55 + 6 body
/// bytes), and a power of two.
const WINDOW: usize = 128;
const _: () = assert!(WINDOW >= MAX_TOKEN_LEN && WINDOW.is_power_of_two());

impl Default for Window {
    fn default() -> Self {
        Self {
            bytes: [0; WINDOW],
            pushed: 0,
            run: 0,
        }
    }
}

impl Window {
    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.pushed % WINDOW) {
            *slot = byte;
        }
        self.pushed = self.pushed.wrapping_add(1);
        self.run = if is_base62(byte) {
            self.run.saturating_add(1)
        } else {
            0
        };
    }

    /// The byte `back` places before the newest (0: the newest), if the
    /// window still holds it.
    fn back(&self, back: usize) -> Option<u8> {
        if back >= self.pushed.min(WINDOW) {
            return None;
        }
        let at = self.pushed.wrapping_sub(1).wrapping_sub(back) % WINDOW;
        self.bytes.get(at).copied()
    }

    /// Whether the newest bytes are `<prefix>_<body>` of `kind` (the prefix
    /// in any letter case) with a checksum that matches the canonical
    /// prefix. Cheap unless the separator and prefix are there.
    fn ends_with_token_of(&self, kind: &TokenKind) -> bool {
        let body_len = kind.body_len();
        let prefix = kind.prefix().as_bytes();
        if self.run < body_len || self.back(body_len) != Some(b'_') {
            return false;
        }
        let prefix_matches = prefix.iter().rev().enumerate().all(|(i, &expected)| {
            self.back(body_len + 1 + i)
                .is_some_and(|b| b.to_ascii_lowercase() == expected)
        });
        if !prefix_matches {
            return false;
        }
        // The body, oldest byte first (at most 85 bytes).
        let mut body = [0u8; WINDOW];
        for (i, slot) in body.iter_mut().take(body_len).enumerate() {
            match self.back(body_len - 1 - i) {
                Some(b) => *slot = b,
                None => return false,
            }
        }
        let Some((unsigned, checksum)) = body
            .get(..body_len)
            .and_then(|body| body.split_at_checked(body_len.saturating_sub(CHECKSUM_LEN)))
        else {
            return false;
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(prefix);
        crc.update(b"_");
        crc.update(unsigned);
        checksum_matches(crc.finalize(), checksum)
    }
}

/// What [`TokenFormat::contains_token`] reads for `c`: `None` for a
/// character that shows nothing (skipped, so it cannot hide a token), the
/// ASCII byte for ASCII and for fullwidth ASCII forms (U+FF01–U+FF5E), and a
/// space for anything else (no token holds it).
fn visible_byte(c: char) -> Option<u8> {
    if is_invisible(c) {
        return None;
    }
    let folded = match u32::from(c) {
        code @ 0xFF01..=0xFF5E => code - 0xFEE0,
        code => code,
    };
    Some(
        u8::try_from(folded)
            .ok()
            .filter(u8::is_ascii)
            .unwrap_or(b' '),
    )
}

/// Characters that render as nothing: Unicode's format characters (Cf) and
/// default-ignorable code points, DEL and the C1 controls.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{7F}'..='\u{9F}'
            | '\u{AD}'
            | '\u{34F}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{890}'..='\u{891}'
            | '\u{8E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The masked preview shown in lists: the prefix and the first four key id
/// characters (`tak_bUiB…`). The key id is public, so nothing secret shows.
pub(crate) fn preview(kind: &TokenKind, key_id: &KeyId) -> String {
    let shown: String = key_id.as_str().chars().take(4).collect();
    format!("{}_{}…", kind.prefix(), shown)
}

/// Appends `n` uniform base62 characters, drawing bytes from `rng` and
/// rejecting values ≥ 248 (= 4 × 62) so every character is equally likely.
fn push_base62(out: &mut String, n: usize, rng: &dyn SecretSource) -> Result<(), Error> {
    let mut buf = Zeroizing::new([0u8; 64]);
    let mut written = 0;
    while written < n {
        rng.fill(&mut buf[..])?;
        for &b in buf.iter() {
            if written == n {
                break;
            }
            if b < 248 {
                out.push(base62_digit(u32::from(b)));
                written += 1;
            }
        }
    }
    Ok(())
}

/// The base62 digit for `value % 62`.
#[allow(clippy::indexing_slicing, reason = "value % 62 < 62 = BASE62.len()")]
pub(crate) fn base62_digit(value: u32) -> char {
    char::from(BASE62[(value % 62) as usize])
}

/// Each byte's base62 value, or 62 for a byte outside the alphabet.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an out-of-range index fails the build"
)]
const DIGIT_VALUE: [u8; 256] = {
    let mut table = [62u8; 256];
    let mut value = 0;
    while value < 62 {
        table[BASE62[value] as usize] = value as u8;
        value += 1;
    }
    table
};

fn digit_value(byte: u8) -> u8 {
    DIGIT_VALUE.get(usize::from(byte)).copied().unwrap_or(62)
}

fn is_base62(byte: u8) -> bool {
    digit_value(byte) < 62
}

/// Whether six base62 digits spell `crc`: decoded by multiply-add, which
/// is cheaper than encoding `crc` (six divisions). The encoding has fixed
/// width and 62^6 > 2^32, so each value has exactly one spelling.
fn checksum_matches(crc: u32, digits: &[u8]) -> bool {
    let mut value = 0u64;
    for &byte in digits {
        let digit = digit_value(byte);
        if digit >= 62 {
            return false;
        }
        value = value * 62 + u64::from(digit);
    }
    digits.len() == CHECKSUM_LEN && value == u64::from(crc)
}

/// CRC32 as six base62 digits, most significant first (62^6 > 2^32).
fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = base62_digit(crc) as u8;
        crc /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::OsRandom;
    use proptest::prelude::*;

    fn format() -> TokenFormat {
        TokenFormat::new([
            TokenKind::new("tak").unwrap(),
            TokenKind::new("mm_pat")
                .unwrap()
                .with_lengths(4, 22)
                .unwrap(),
            TokenKind::new("pat").unwrap(),
        ])
        .unwrap()
    }

    fn token(format: &TokenFormat, prefix: &str) -> String {
        let kind = format.kind(prefix).unwrap();
        TokenFormat::generate(kind, &OsRandom)
            .unwrap()
            .token
            .expose_secret()
            .to_owned()
    }

    #[test]
    fn generated_tokens_parse_back() {
        let f = format();
        for prefix in ["tak", "mm_pat", "pat"] {
            let t = token(&f, prefix);
            let parsed = f.parse(&t).unwrap();
            assert_eq!(parsed.kind().prefix(), prefix);
            assert_eq!(t.len(), parsed.kind().token_len());
            assert!(t.starts_with(&format!("{prefix}_{}", parsed.key_id())));
        }
        assert_eq!(token(&f, "mm_pat").len(), "mm_pat_".len() + 32);
    }

    #[test]
    fn each_defect_has_its_own_error() {
        let f = format();
        let t = token(&f, "tak");
        assert_eq!(f.parse("").unwrap_err(), ParseError::Empty);
        assert_eq!(f.parse(&"a".repeat(129)).unwrap_err(), ParseError::TooLong);
        assert_eq!(
            f.parse("nounderscore").unwrap_err(),
            ParseError::MissingPrefix
        );
        assert_eq!(
            f.parse(&t.replacen("tak", "tok", 1)).unwrap_err(),
            ParseError::UnknownKind
        );
        assert_eq!(
            f.parse(&t[..t.len() - 1]).unwrap_err(),
            ParseError::BadLength {
                expected: 43,
                found: 42
            }
        );
        let mut bad_char = t.clone();
        bad_char.replace_range(10..11, "-");
        assert_eq!(
            f.parse(&bad_char).unwrap_err(),
            ParseError::BadCharacter { position: 10 }
        );
        let mut typo = t.into_bytes();
        typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(f.parse(&typo).unwrap_err(), ParseError::BadChecksum);
    }

    #[test]
    fn a_multibyte_character_is_a_bad_character_not_a_panic() {
        let f = format();
        let t = token(&f, "tak");
        let body = "é".repeat(21) + "a";
        assert_eq!(body.len(), 43);
        assert!(matches!(
            f.parse(&format!("tak_{body}")),
            Err(ParseError::BadCharacter { .. })
        ));
        assert!(f.parse(&format!("{t}é")).is_err());
    }

    #[test]
    fn regex_matches_generated_tokens_and_scan_confirms_them() {
        let f = format();
        let re = regex::Regex::new(&f.regex()).unwrap();
        let good = token(&f, "mm_pat");
        let other = token(&f, "tak");
        let mut look_alike = other.clone().into_bytes();
        look_alike[5] = if look_alike[5] == b'Z' { b'Y' } else { b'Z' };
        let look_alike = String::from_utf8(look_alike).unwrap();
        let text = format!(
            "export TOKEN={good}\nold: {look_alike}; x{other}; \"{other}\" and xyz_{}",
            &other[4..]
        );
        assert!(re.is_match(&good));
        let found = f.scan(&text);
        let spans: Vec<&str> = found.iter().map(|t| &text[t.span.clone()]).collect();
        assert_eq!(spans, vec![good.as_str(), other.as_str()]);
        assert_eq!(found[0].kind, "mm_pat");
        assert_eq!(found[1].key_id.as_str(), f.parse(&other).unwrap().key_id());
        // Every regex match that scan confirms is a real token; the look-alike matched the regex but not scan.
        assert_eq!(re.find_iter(&text).count(), 3);
    }

    #[test]
    fn checksum_encoding_is_fixed_width() {
        assert_eq!(&encode_checksum(0), b"000000");
        assert_eq!(encode_checksum(u32::MAX).len(), 6);
    }

    /// `sk` (10 + 27) and `sk_live` (10 + 22): both tokens are 46 characters.
    fn nested() -> TokenFormat {
        TokenFormat::new([
            TokenKind::new("sk").unwrap(),
            TokenKind::new("sk_live")
                .unwrap()
                .with_lengths(10, 22)
                .unwrap(),
        ])
        .unwrap()
    }

    /// Parse, scan, the regex and `contains_token` all see `token` as a
    /// token of `prefix` in `format`.
    fn assert_found_everywhere(format: &TokenFormat, token: &str, prefix: &str) {
        let parsed = format.parse(token).unwrap();
        assert_eq!(parsed.kind().prefix(), prefix, "{token}");
        assert_eq!(parsed.kind_index(), format.kind_index(prefix).unwrap());
        let text = format!("key: {token}, done");
        let found = format.scan(&text);
        assert_eq!(found.len(), 1, "{text}");
        assert_eq!(&text[found[0].span.clone()], token);
        assert_eq!(found[0].kind, prefix);
        assert_eq!(found[0].key_id.as_str(), parsed.key_id());
        let re = regex::Regex::new(&format.regex()).unwrap();
        assert_eq!(re.find(&text).map(|m| m.as_str()), Some(token), "{text}");
        assert!(format.contains_token(&text));
        assert!(format.contains_token(token));
    }

    #[test]
    fn nested_prefixes_of_equal_token_length_each_parse_as_their_own_kind() {
        let f = nested();
        let short = token(&f, "sk");
        let long = token(&f, "sk_live");
        assert_eq!(short.len(), 46);
        assert_eq!(long.len(), 46);
        assert_found_everywhere(&f, &short, "sk");
        assert_found_everywhere(&f, &long, "sk_live");
        // Declared the other way round, the same.
        let reversed = TokenFormat::new(f.kinds().iter().rev().cloned()).unwrap();
        assert_found_everywhere(&reversed, &short, "sk");
        assert_found_everywhere(&reversed, &long, "sk_live");

        // Each defect of the longer kind still gets its own error.
        let mut typo = long.clone().into_bytes();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(f.parse(&typo).unwrap_err(), ParseError::BadChecksum);
        let mut bad_char = long.clone();
        bad_char.replace_range(20..21, "-");
        assert_eq!(
            f.parse(&bad_char).unwrap_err(),
            ParseError::BadCharacter { position: 20 }
        );
        assert_eq!(
            f.parse(&long[..45]).unwrap_err(),
            ParseError::BadLength {
                expected: 38,
                found: 37
            }
        );
    }

    #[test]
    fn nested_prefixes_issue_tokens_that_verify_end_to_end_in_the_slow_path_too() {
        // The slow path decides by the last `_`: a kind whose body is all
        // base62 is the only candidate, so it agrees with the fast path.
        let f = nested();
        for prefix in ["sk", "sk_live"] {
            let t = token(&f, prefix);
            let fast = f.parse_well_formed(&t).unwrap().unwrap();
            let slow = f.classify(&t).unwrap();
            assert_eq!(fast.kind().prefix(), prefix);
            assert_eq!(slow.kind().prefix(), prefix);
            assert_eq!(fast.key_id(), slow.key_id());
            assert_eq!(fast.secret(), slow.secret());
        }
    }

    /// Tokens of `format`'s kinds, from a fixed source so a failure repeats.
    fn tokens(format: &TokenFormat) -> Vec<String> {
        format
            .kinds()
            .iter()
            .map(|k| token(format, k.prefix()))
            .collect()
    }

    #[test]
    fn contains_token_finds_tokens_glued_to_other_text() {
        let f = format();
        for t in tokens(&f) {
            for text in [
                t.clone(),
                format!("prod_{t}"),
                format!("{t}_old"),
                format!("{t}s"),
                format!("2{t}"),
                format!("x{t}y"),
                format!("name: prod_{t}_old (copy)"),
                format!("{t}{t}"),
            ] {
                assert!(f.contains_token(&text), "{text}");
            }
            // What scan sees, contains_token sees too.
            assert!(!f.scan(&format!("see {t}.")).is_empty());
            assert!(f.contains_token(&format!("see {t}.")));
        }
    }

    #[test]
    fn contains_token_ignores_invisible_characters_inside_a_token() {
        let f = format();
        let invisible = [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{034F}',
            '\u{061C}',
            '\u{180E}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{E0100}',
            '\u{0085}',
            '\u{007F}',
        ];
        for t in tokens(&f) {
            for c in invisible {
                for at in [
                    1,
                    t.find('_').unwrap(),
                    t.find('_').unwrap() + 1,
                    20,
                    t.len() - 1,
                ] {
                    let mut hidden = t.clone();
                    hidden.insert(at, c);
                    assert!(f.scan(&hidden).is_empty(), "scan sees whole words only");
                    assert!(f.contains_token(&hidden), "U+{:04X} at {at}", u32::from(c));
                }
            }
            // Many at once, between every character.
            let spread: String = t
                .chars()
                .flat_map(|c| [c, '\u{200B}', '\u{FEFF}'])
                .collect();
            assert!(f.contains_token(&spread));
        }
    }

    #[test]
    fn contains_token_finds_a_prefix_in_any_case_and_fullwidth_forms() {
        let f = format();
        for t in tokens(&f) {
            let separator = t.rfind('_').unwrap();
            let (prefix, rest) = t.split_at(separator);
            assert!(f.contains_token(&format!("{}{rest}", prefix.to_uppercase())));
            let mixed: String = prefix
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            assert!(f.contains_token(&format!("key {mixed}{rest}")));
            // Fullwidth: U+FF01..=U+FF5E mirror ASCII 0x21..=0x7E.
            let fullwidth: String = t
                .chars()
                .map(|c| char::from_u32(u32::from(c) + 0xFEE0).unwrap())
                .collect();
            assert!(f.contains_token(&fullwidth));
            // The body is case-sensitive: changing its case breaks the checksum.
            let upper_body = format!("{prefix}{}", rest.to_uppercase());
            if upper_body != t {
                assert!(!f.contains_token(&upper_body));
            }
        }
    }

    #[test]
    fn contains_token_refuses_nothing_without_a_valid_checksum() {
        let f = format();
        let t = token(&f, "tak");
        let mut typo = t.clone().into_bytes();
        typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        for text in [
            "",
            "_",
            "tak_",
            "Production deploy key",
            "tak_0000000000000000000000000000000000000000000",
            typo.as_str(),
            &format!("prod_{typo}_old"),
            // A visible break inside the token is not ignored.
            &format!("{} {}", &t[..20], &t[20..]),
            &format!("{}-{}", &t[..20], &t[20..]),
            &format!("{}é{}", &t[..20], &t[20..]),
            // An unconfigured prefix with a checksum of its own.
            &format!("tok{}", &t[3..]),
        ] {
            assert!(!f.contains_token(text), "{text}");
        }
        assert!(!TokenFormat::default().contains_token(&t));
    }

    #[test]
    fn contains_token_reads_the_largest_inputs_whole() {
        let f = format();
        let t = token(&f, "mm_pat");
        // A 16 KiB name with the token at the very end, after long runs of
        // token characters and separators that come close.
        let filler = "mm_pat_".repeat(1200) + &"A".repeat(8000);
        let text = format!("{}{t}", &filler[..16 * 1024 - t.len()]);
        assert_eq!(text.len(), 16 * 1024);
        assert!(f.contains_token(&text));
        assert!(!f.contains_token(&text[..text.len() - 1]));
        assert!(!f.contains_token(&"\u{200B}".repeat(5000)));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = format().parse(&s);
        }

        #[test]
        fn scan_never_panics_and_finds_only_valid_tokens(s in ".{0,300}") {
            let f = format();
            for found in f.scan(&s) {
                prop_assert!(f.parse(&s[found.span]).is_ok());
            }
        }

        #[test]
        fn contains_token_never_panics(s in any::<String>(), t in "\\PC{0,400}") {
            let f = format();
            let _ = f.contains_token(&s);
            let _ = f.contains_token(&t);
            // Anything scan finds, contains_token finds.
            if !f.scan(&t).is_empty() {
                prop_assert!(f.contains_token(&t));
            }
        }

        #[test]
        fn contains_token_finds_every_embedded_token(
            kind in 0usize..3,
            before in ".{0,40}",
            after in ".{0,40}",
            hidden in proptest::collection::vec(
                (any::<prop::sample::Index>(), prop::sample::select(vec![
                    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{2063}', '\u{FEFF}',
                    '\u{00AD}', '\u{180E}', '\u{202E}', '\u{FE0F}', '\u{E0020}',
                ])),
                0..6,
            ),
            upper in proptest::collection::vec(any::<bool>(), 6),
        ) {
            let f = format();
            let prefix = f.kinds()[kind].prefix().to_owned();
            let t = token(&f, &prefix);
            let mut disguised: Vec<char> = t
                .chars()
                .enumerate()
                .map(|(i, c)| if i < prefix.len() && upper[i % 6] { c.to_ascii_uppercase() } else { c })
                .collect();
            for (at, c) in hidden {
                let at = at.index(disguised.len() + 1);
                disguised.insert(at, c);
            }
            let disguised: String = disguised.into_iter().collect();
            let text = format!("{before}{disguised}{after}");
            prop_assert!(f.contains_token(&text), "{:?}", text);
        }

        #[test]
        fn nested_prefix_pairs_parse_as_their_own_kinds(
            outer in "[a-z][a-z0-9]{0,4}",
            inner in "[a-z][a-z0-9]{0,4}",
            nest in any::<bool>(),
            key_id_len in 4usize..=24,
            secret_len in 22usize..=45,
            longer_first in any::<bool>(),
        ) {
            // With `nest`, the second prefix extends the first; either way
            // the lengths make both tokens equally long where they can.
            let second = if nest { format!("{outer}_{inner}") } else { inner };
            prop_assume!(second != outer);
            let longer_by = second.len() as isize - outer.len() as isize;
            let first_secret = secret_len as isize + longer_by;
            prop_assume!((22..=55).contains(&first_secret));
            let first = TokenKind::new(&outer).unwrap()
                .with_lengths(key_id_len, first_secret as usize).unwrap();
            let second_kind = TokenKind::new(&second).unwrap()
                .with_lengths(key_id_len, secret_len).unwrap();
            prop_assert_eq!(first.token_len(), second_kind.token_len());
            let kinds = if longer_first { vec![second_kind, first] } else { vec![first, second_kind] };
            let f = TokenFormat::new(kinds).unwrap();
            for prefix in [outer.as_str(), second.as_str()] {
                let t = token(&f, prefix);
                let parsed = f.parse(&t);
                prop_assert!(parsed.is_ok(), "{} in {:?}: {:?}", t, prefix, parsed);
                prop_assert_eq!(parsed.unwrap().kind().prefix(), prefix);
                let found = f.scan(&format!("({t})"));
                prop_assert_eq!(found.len(), 1);
                prop_assert_eq!(found[0].kind.as_str(), prefix);
                let re = regex::Regex::new(&f.regex()).unwrap();
                prop_assert_eq!(re.find(&format!("({t})")).map(|m| m.as_str().to_owned()), Some(t.clone()));
                let glued = format!("x{t}x");
                prop_assert!(f.contains_token(&glued));
            }
        }

        #[test]
        fn any_single_substitution_is_detected(pos in 4usize..43, c in "[0-9A-Za-z]") {
            let f = format();
            let t = token(&f, "tak");
            let mut changed = t.clone();
            changed.replace_range(pos..pos + 1, &c);
            prop_assume!(changed != t);
            prop_assert!(f.parse(&changed).is_err());
        }
    }
}
