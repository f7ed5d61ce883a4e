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
