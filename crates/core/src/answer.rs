//! The HTTP answer to a refused request, as RFC 6750 (§3, §3.1) words it:
//! status, `WWW-Authenticate` challenge, a JSON body and the headers that
//! go with them. Free of any HTTP crate, so every integration answers alike.

use crate::bearer::BearerError;
use crate::outcome::Rejection;

/// The answer to a request [`Rejection`] refused, per RFC 6750.
///
/// | refusal | status | challenge (`realm` always first) |
/// | --- | --- | --- |
/// | no credentials, or another scheme (`Basic …`) | 401 | `Bearer realm="…"` (no error code, §3.1) |
/// | a malformed header: `Bearer` alone, two tokens, two headers, bytes that are not text | 400 | `error="invalid_request"` |
/// | a malformed, unknown, wrong, revoked, disabled or expired token | 401 | `error="invalid_token"` (one answer for all: the client cannot tell them apart) |
/// | a valid token lacking permissions | 403 | `error="insufficient_scope"`, `scope="…"` (what is missing) |
/// | a valid token of a kind the route does not accept | 403 | `error="insufficient_scope"` (no `scope`) |
/// | the store is down | 503 | `Bearer realm="…"`, and `Retry-After` |
///
/// Every answer is JSON with `Cache-Control: no-store`.
///
/// ```
/// use keyward_core::{PublicAnswer, Rejection, token::BearerError};
/// let missing = Rejection::BadHeader(BearerError::Missing).public_answer();
/// assert_eq!(missing.status, 401);
/// assert_eq!(missing.www_authenticate("api"), r#"Bearer realm="api""#);
///
/// let revoked = Rejection::Revoked.public_answer();
/// assert_eq!(revoked, Rejection::NotFound.public_answer());
/// assert_eq!(
///     revoked.www_authenticate("api"),
///     r#"Bearer realm="api", error="invalid_token", error_description="The token is malformed, unknown, expired or revoked.""#
/// );
/// assert_eq!(PublicAnswer::CACHE_CONTROL, "no-store");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicAnswer {
    /// 400, 401, 403 or 503.
    pub status: u16,
    /// The RFC 6750 error code of the challenge (`invalid_request`,
    /// `invalid_token`, `insufficient_scope`); `None` when the request
    /// carried no Bearer credentials, or the store is down.
    pub challenge_error: Option<&'static str>,
    /// The body's stable `error` code: the challenge's code, or
    /// `missing_token` (no credentials) or `temporarily_unavailable` (503).
    pub error: &'static str,
    /// A sentence for people; the same for every refusal of one kind.
    pub description: &'static str,
    /// What is missing, for `insufficient_scope`: permission names,
    /// space-separated (RFC 6750 `scope`).
    pub scope: Option<String>,
    /// Seconds to wait before trying again (503 only).
    pub retry_after: Option<u32>,
}

impl PublicAnswer {
    /// The `Content-Type` of [`PublicAnswer::body`].
    pub const CONTENT_TYPE: &'static str = "application/json";
    /// The `Cache-Control` every refusal carries: a refusal is about one
    /// request's credentials and must not be stored or replayed.
    pub const CACHE_CONTROL: &'static str = "no-store";
    /// Seconds a client is told to wait when the store is down.
    pub const RETRY_AFTER: u32 = 5;

    /// The `WWW-Authenticate` value: `Bearer realm="<realm>"`, then the
    /// error code, its description and the missing scope where there are
    /// any. The realm is written as an HTTP quoted-string (`"` and `\`
    /// escaped, control characters dropped).
    pub fn www_authenticate(&self, realm: &str) -> String {
        let mut out = format!("Bearer realm=\"{}\"", quoted(realm));
        if let Some(code) = self.challenge_error {
            out.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                self.description
            ));
        }
        if let Some(scope) = &self.scope {
            out.push_str(&format!(", scope=\"{scope}\""));
        }
        out
    }

    /// The JSON body: `{"error": …, "error_description": …}`, with `scope`
    /// when permissions are missing.
    pub fn body(&self) -> String {
        let mut body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        if let (Some(scope), Some(map)) = (&self.scope, body.as_object_mut()) {
            map.insert("scope".to_owned(), scope.clone().into());
        }
        body.to_string()
    }

    pub(crate) fn of(rejection: &Rejection) -> Self {
        let answer = |status, challenge_error, error, description| Self {
            status,
            challenge_error,
            error,
            description,
            scope: None,
            retry_after: None,
        };
        match rejection {
            Rejection::BadHeader(BearerError::Missing | BearerError::WrongScheme) => answer(
                401,
                None,
                "missing_token",
                "This request needs a Bearer token.",
            ),
            Rejection::BadHeader(_) => answer(
                400,
                Some("invalid_request"),
                "invalid_request",
                "The Authorization header must be one header holding `Bearer <token>`.",
            ),
            Rejection::InsufficientPermissions { missing } => {
                let names: Vec<&str> = missing.permissions();
                Self {
                    scope: (!names.is_empty()).then(|| names.join(" ")),
                    ..answer(
                        403,
                        Some("insufficient_scope"),
                        "insufficient_scope",
                        "The token lacks a permission this request needs.",
                    )
                }
            }
            // As a missing permission: a route's kinds are part of what it
            // needs.
            Rejection::KindNotAccepted => answer(
                403,
                Some("insufficient_scope"),
                "insufficient_scope",
                "The token lacks a permission this request needs.",
            ),
            Rejection::Unavailable(_) => Self {
                retry_after: Some(Self::RETRY_AFTER),
                ..answer(
                    503,
                    None,
                    "temporarily_unavailable",
                    "Verification is unavailable; try again later.",
                )
            },
            Rejection::Malformed(_)
            | Rejection::NotFound
            | Rejection::Revoked
            | Rejection::Disabled
            | Rejection::Expired => answer(
                401,
                Some("invalid_token"),
                "invalid_token",
                "The token is malformed, unknown, expired or revoked.",
            ),
        }
    }
}

impl Rejection {
    /// The HTTP answer, per RFC 6750: one identical 401 for every identity
    /// failure, 400 for a malformed header, 403 for missing permissions,
    /// 503 when the store is down (see [`PublicAnswer`]).
    ///
    /// ```
    /// use keyward_core::Rejection;
    /// assert_eq!(Rejection::Revoked.public_answer(), Rejection::NotFound.public_answer());
    /// assert_eq!(Rejection::Expired.public_answer().status, 401);
    /// ```
    pub fn public_answer(&self) -> PublicAnswer {
        PublicAnswer::of(self)
    }
}

/// `text` as the inside of an HTTP quoted-string (RFC 9110 §5.6.4): `"` and
/// `\` escaped, control characters (which no quoted-string may hold)
/// dropped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::format::ParseError;
    use crate::permission::Requirement;

    fn challenge(rejection: &Rejection) -> (u16, String) {
        let answer = rejection.public_answer();
        (answer.status, answer.www_authenticate("api"))
    }

    #[test]
    fn each_refusal_gets_its_rfc_6750_challenge() {
        let invalid = r#"Bearer realm="api", error="invalid_token", error_description="The token is malformed, unknown, expired or revoked.""#;
        let bad_request = r#"Bearer realm="api", error="invalid_request", error_description="The Authorization header must be one header holding `Bearer <token>`.""#;
        let cases = [
            (
                Rejection::BadHeader(BearerError::Missing),
                401,
                r#"Bearer realm="api""#,
            ),
            (
                Rejection::BadHeader(BearerError::WrongScheme),
                401,
                r#"Bearer realm="api""#,
            ),
            (
                Rejection::BadHeader(BearerError::MissingToken),
                400,
                bad_request,
            ),
            (
                Rejection::BadHeader(BearerError::ExtraContent),
                400,
                bad_request,
            ),
            (
                Rejection::BadHeader(BearerError::Duplicate),
                400,
                bad_request,
            ),
            (Rejection::BadHeader(BearerError::NotText), 400, bad_request),
            (Rejection::Malformed(ParseError::BadChecksum), 401, invalid),
            (Rejection::NotFound, 401, invalid),
            (Rejection::Revoked, 401, invalid),
            (Rejection::Disabled, 401, invalid),
            (Rejection::Expired, 401, invalid),
            (
                Rejection::Unavailable(Error::NotFound),
                503,
                r#"Bearer realm="api""#,
            ),
        ];
        for (rejection, status, header) in cases {
            let label = format!("{rejection:?}");
            assert_eq!(
                challenge(&rejection),
                (status, header.to_owned()),
                "{label}"
            );
        }
    }

    #[test]
    fn a_forbidden_answer_names_the_missing_scope() {
        let missing = Requirement::all_of(["billing.read", "publish"]).unwrap();
        let answer = Rejection::InsufficientPermissions { missing }.public_answer();
        assert_eq!(answer.status, 403);
        assert_eq!(
            answer.www_authenticate("api"),
            r#"Bearer realm="api", error="insufficient_scope", error_description="The token lacks a permission this request needs.", scope="billing.read publish""#
        );
        let body: serde_json::Value = serde_json::from_str(&answer.body()).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "billing.read publish");
        let kind = Rejection::KindNotAccepted.public_answer();
        assert_eq!((kind.status, kind.scope), (403, None));
    }

    #[test]
    fn bodies_are_json_with_a_stable_code_and_503_says_when_to_retry() {
        for (rejection, code) in [
            (Rejection::BadHeader(BearerError::Missing), "missing_token"),
            (
                Rejection::BadHeader(BearerError::ExtraContent),
                "invalid_request",
            ),
            (Rejection::Expired, "invalid_token"),
            (
                Rejection::Unavailable(Error::NotFound),
                "temporarily_unavailable",
            ),
        ] {
            let answer = rejection.public_answer();
            let body: serde_json::Value = serde_json::from_str(&answer.body()).unwrap();
            assert_eq!(body["error"], code);
            assert!(
                body["error_description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            );
            assert_eq!(
                answer.retry_after,
                (code == "temporarily_unavailable").then_some(PublicAnswer::RETRY_AFTER)
            );
        }
    }

    #[test]
    fn the_realm_is_a_safe_quoted_string() {
        let answer = Rejection::NotFound.public_answer();
        let header = answer.www_authenticate("my \"api\"\\\r\n, error=\"x");
        assert!(
            header.starts_with(r#"Bearer realm="my \"api\"\\, error=\"x", error="invalid_token""#),
            "{header}"
        );
        assert!(!header.contains(['\r', '\n']));
    }
}
