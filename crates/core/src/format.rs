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
    /// ```
    /// use keyward_core::{ParseError, TokenFormat, TokenKind};
    /// let format = TokenFormat::new([TokenKind::new("tak")?])?;
    /// assert_eq!(format.parse("tak_short").unwrap_err(), ParseError::BadLength { expected: 43, found: 5 });
    /// assert_eq!(format.parse("xyz_abc").unwrap_err(), ParseError::UnknownKind);
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse<'a>(&'a self, token: &'a str) -> Result<ParsedToken<'a>, ParseError> {
        match self.parse_well_formed(token) {
            Some(parsed) => parsed,
            None => Err(self.classify(token)),
        }
    }

    /// The common case without any scan: a configured kind's exact length,
    /// prefix and separator, and a body of base62 only. Then only the
    /// checksum can fail. `None` sends the token to [`Self::classify`] for
    /// its precise error.
    fn parse_well_formed<'a>(
        &'a self,
        token: &'a str,
    ) -> Option<Result<ParsedToken<'a>, ParseError>> {
        let bytes = token.as_bytes();
        let kind_index = self.kinds.iter().position(|k| {
            bytes.len() == k.token_len()
                && bytes.starts_with(k.prefix().as_bytes())
                && bytes.get(k.prefix().len()) == Some(&b'_')
        })?;
        let kind = self.kinds.get(kind_index)?;
        let body = token.get(kind.prefix().len() + 1..)?;
        if !body.bytes().fold(true, |ok, b| ok & is_base62(b)) {
            return None;
        }
        let (signed, checksum) = token.split_at(token.len() - CHECKSUM_LEN);
        if !checksum_matches(crc32fast::hash(signed.as_bytes()), checksum.as_bytes()) {
            return Some(Err(ParseError::BadChecksum));
        }
        let (key_id, secret) = body
            .get(..body.len() - CHECKSUM_LEN)?
            .split_at(kind.key_id_len());
        Some(Ok(ParsedToken {
            kind,
            kind_index,
            key_id,
            secret,
        }))
    }

    /// Why `token` is not well formed: length, prefix, body length,
    /// alphabet, in that order.
    fn classify(&self, token: &str) -> ParseError {
        let bytes = token.as_bytes();
        if bytes.is_empty() {
            return ParseError::Empty;
        }
        if bytes.len() > MAX_TOKEN_LEN {
            return ParseError::TooLong;
        }
        let Some(separator) = bytes.iter().rposition(|&b| b == b'_') else {
            return ParseError::MissingPrefix;
        };
        let (prefix, body) = (&token[..separator], &token[separator + 1..]);
        let Some(kind) = self.kind(prefix) else {
            return ParseError::UnknownKind;
        };
        if body.len() != kind.body_len() {
            return ParseError::BadLength {
                expected: kind.body_len(),
                found: body.len(),
            };
        }
        match body.bytes().position(|b| !is_base62(b)) {
            Some(offset) => ParseError::BadCharacter {
                position: separator + 1 + offset,
            },
            // Unreachable for a well-formed token, which the fast path
            // takes; kept total rather than trusted.
            None => ParseError::BadChecksum,
        }
    }

    /// A regular expression that matches every token of this format, for
    /// secret scanners. Matches are candidates: confirm them with
    /// [`TokenFormat::parse`] (or use [`TokenFormat::scan`], which does both).
    ///
    /// ```
    /// use keyward_core::{TokenFormat, TokenKind};
    /// let format = TokenFormat::new([TokenKind::new("mm_pat")?.lengths(4, 22)?])?;
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

    /// Generates a token of `kind`: random key id and secret from `rng`, then
    /// the checksum.
    pub(crate) fn generate(
        kind: &TokenKind,
        rng: &dyn SecretSource,
    ) -> Result<PlaintextToken, Error> {
        let mut token = Zeroizing::new(String::with_capacity(kind.token_len()));
        token.push_str(kind.prefix());
        token.push('_');
        push_base62(&mut token, kind.key_id_len() + kind.secret_len(), rng)?;
        let checksum = encode_checksum(crc32fast::hash(token.as_bytes()));
        checksum.iter().for_each(|&b| token.push(char::from(b)));
        Ok(PlaintextToken::new(token))
    }
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
fn base62_digit(value: u32) -> char {
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
            TokenKind::new("mm_pat").unwrap().lengths(4, 22).unwrap(),
            TokenKind::new("pat").unwrap(),
        ])
        .unwrap()
    }

    fn token(format: &TokenFormat, prefix: &str) -> String {
        let kind = format.kind(prefix).unwrap();
        TokenFormat::generate(kind, &OsRandom)
            .unwrap()
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
