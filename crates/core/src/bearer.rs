//! Reading a Bearer credential from an `Authorization` header value.

/// Why an `Authorization` header value is not a usable Bearer credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No header, or an empty one.
    #[error("missing")]
    Missing,
    /// Another scheme (`Basic …`).
    #[error("not the Bearer scheme")]
    WrongScheme,
    /// `Bearer` with nothing after it.
    #[error("no token after Bearer")]
    MissingToken,
    /// More than one token, or stray whitespace inside.
    #[error("more than one value after Bearer")]
    ExtraContent,
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    Duplicate,
    /// A header value that is not text (bytes outside visible ASCII and
    /// UTF-8).
    #[error("the Authorization header is not text")]
    NotText,
}

/// Reads the Bearer token from every `Authorization` header value of a
/// request, as raw bytes: none is [`BearerError::Missing`], more than one
/// [`BearerError::Duplicate`], a value that is not UTF-8
/// [`BearerError::NotText`]; one value is read by [`bearer_token`].
///
/// ```
/// use keyward_core::{token::bearer_from_headers, token::BearerError};
/// assert_eq!(bearer_from_headers([b"Bearer mt_abc".as_slice()]), Ok("mt_abc"));
/// assert_eq!(bearer_from_headers([b"Bearer a".as_slice(), b"Bearer b"]), Err(BearerError::Duplicate));
/// assert_eq!(bearer_from_headers([b"Bearer \xff".as_slice()]), Err(BearerError::NotText));
/// assert_eq!(bearer_from_headers(std::iter::empty::<&[u8]>()), Err(BearerError::Missing));
/// ```
pub fn bearer_from_headers<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<&'a str, BearerError> {
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::Duplicate);
    }
    let value = std::str::from_utf8(value).map_err(|_| BearerError::NotText)?;
    bearer_token(Some(value))
}

/// Reads `Bearer <token>` from an `Authorization` header value: the scheme is
/// case-insensitive, surrounding whitespace is ignored, anything else is an error.
///
/// ```
/// use keyward_core::{token::bearer_token, token::BearerError};
/// assert_eq!(bearer_token(Some("bearer  mt_abc ")), Ok("mt_abc"));
/// assert_eq!(bearer_token(Some("Basic dXNlcg==")), Err(BearerError::WrongScheme));
/// assert_eq!(bearer_token(None), Err(BearerError::Missing));
/// ```
pub fn bearer_token(header: Option<&str>) -> Result<&str, BearerError> {
    let value = header.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(BearerError::Missing);
    }
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::WrongScheme);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(BearerError::MissingToken);
    }
    if token.contains(|c: char| c.is_whitespace()) {
        return Err(BearerError::ExtraContent);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer t")), Ok("t"));
        assert_eq!(bearer_token(Some("BEARER\tt")), Ok("t"));
        assert_eq!(bearer_token(Some("  ")), Err(BearerError::Missing));
        assert_eq!(bearer_token(Some("Bearer")), Err(BearerError::MissingToken));
        assert_eq!(
            bearer_token(Some("Bearer   ")),
            Err(BearerError::MissingToken)
        );
        assert_eq!(
            bearer_token(Some("Bearer a b")),
            Err(BearerError::ExtraContent)
        );
        assert_eq!(
            bearer_token(Some("Bearertoken")),
            Err(BearerError::WrongScheme)
        );
        assert_eq!(bearer_token(Some("Token t")), Err(BearerError::WrongScheme));
    }
}
