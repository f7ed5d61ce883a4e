//! The token grammar: `<prefix>_<key id><secret><checksum>`.
//!
//! See `docs/token-format.md` (included in the crate docs) for the full grammar.
//! Parsing and generating here; finding tokens in text in [`scan`]; the
//! base62 digits and the checksum in [`base62`].

use crate::error::Error;
use crate::key::KeyId;
use crate::kind::{CHECKSUM_LEN, TokenKind};
use crate::secret::{PlaintextToken, SecretSource};
use std::ops::Range;
use zeroize::Zeroizing;

mod base62;
mod scan;
#[cfg(test)]
mod tests;

#[cfg(feature = "testkit")]
pub(crate) use base62::base62_digit;
use base62::{all_base62, checksum_matches, encode_checksum, is_base62, push_base62};

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

/// Most kinds one format (one service) holds.
pub const MAX_KINDS: usize = 1024;

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
        if self.kinds.len() >= MAX_KINDS {
            return Err(Error::invalid("kind", "at most 1024 kinds"));
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
            if all_base62(body.as_bytes()) {
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

/// The masked preview shown in lists: the prefix and the first four key id
/// characters (`tak_bUiB…`). The key id is public, so nothing secret shows.
pub(crate) fn preview(kind: &TokenKind, key_id: &KeyId) -> String {
    let shown: String = key_id.as_str().chars().take(4).collect();
    format!("{}_{}…", kind.prefix(), shown)
}
