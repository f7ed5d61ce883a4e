//! Product E: scoped personal access tokens (`mm_pat_` + 32 characters).

use crate::support::{
    Backend, assert_not_authorized, at, clock_at, foreign_token, need, owner, perms, secret_part,
};
use keyward_core::chrono::TimeDelta;
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, Lifetime, Rejection, Requirement, Session, Status,
    TokenKind, store::KeyStore, token::HashAlgorithm,
};

const SCOPES: [&str; 5] = ["publish", "messages", "files", "domain", "billing.read"];

fn mm_pat() -> TokenKind {
    TokenKind::new("mm_pat")
        .unwrap()
        .with_lengths(4, 22)
        .unwrap()
        .with_expiry(
            ExpiryPolicy::from_choices(
                [
                    Lifetime::Months(1),
                    Lifetime::Months(6),
                    Lifetime::Years(1),
                    Lifetime::Never,
                ],
                Lifetime::Years(1),
            )
            .unwrap(),
        )
}

/// Scoped PATs: `mm_pat_` + 32 characters; scopes such as `publish` and
/// `billing.read`; expiry 1 month, 6 months, 1 year (default) or never; only
/// a hash and a short prefix stored; revoked → 401 on the next request, for
/// good; tokens cannot create or revoke tokens, only a signed-in session can;
/// a token found in text names the key to revoke.
pub async fn product_e(backend: Backend) {
    let clock = clock_at(2026, 2, 10, 15);
    let user = owner("user");
    let keyward = backend
        .builder()
        .kind(mm_pat())
        .clock(clock.clone())
        .build()
        .unwrap();
    let session = Actor::from(Session::new(user.clone(), perms(&SCOPES)));

    // --- `mm_pat_` + exactly 32 characters, scoped, a year by default.
    let ci = keyward
        .issue(
            &session,
            IssueRequest::new("mm_pat", user.clone(), "CI publish")
                .scopes(perms(&["publish", "files"])),
        )
        .await
        .unwrap();
    let token = ci.token.expose_secret().to_owned();
    let body = token.strip_prefix("mm_pat_").expect("the mm_pat_ prefix");
    assert_eq!(body.len(), 32);
    assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()), "{body}");
    assert_eq!(ci.key.expires_at, Some(at(2027, 2, 10, 15)));
    for (lifetime, expected) in [
        (Lifetime::Months(1), Some(at(2026, 3, 10, 15))),
        (Lifetime::Months(6), Some(at(2026, 8, 10, 15))),
        (Lifetime::Years(1), Some(at(2027, 2, 10, 15))),
        (Lifetime::Never, None),
    ] {
        let issued = keyward
            .issue(
                &session,
                IssueRequest::new("mm_pat", user.clone(), &format!("expires {lifetime}"))
                    .scopes(perms(&["messages"]))
                    .expires(lifetime),
            )
            .await
            .unwrap();
        assert_eq!(issued.key.expires_at, expected, "{lifetime}");
    }
    let week = keyward
        .issue(
            &session,
            IssueRequest::new("mm_pat", user.clone(), "a week").expires(Lifetime::Days(7)),
        )
        .await;
    assert!(
        matches!(week, Err(Error::ExpiryNotAllowed { .. })),
        "{week:?}"
    );

    // Scopes decide what the token may do.
    keyward.verify(&token, &need("publish")).await.unwrap();
    let billing = keyward
        .verify(&token, &need("billing.read"))
        .await
        .unwrap_err();
    assert!(matches!(billing, Rejection::InsufficientPermissions { .. }));
    assert_eq!(billing.public_answer().status, 403);
    assert_not_authorized(
        keyward
            .issue(
                &session,
                IssueRequest::new("mm_pat", user.clone(), "admin")
                    .scopes(perms(&["billing.write"])),
            )
            .await,
        "a scope the user does not hold",
    );

    // --- Only a digest and a short prefix are stored.
    let record = keyward_core::dangerous::store(&keyward)
        .get_key(&ci.key.id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(record.digest.algorithm(), HashAlgorithm::Sha256);
    let secret = secret_part(&keyward, &token);
    assert_eq!(record.preview, format!("mm_pat_{}…", ci.key.id));
    assert!(!format!("{record:?}").contains(secret));
    assert!(!format!("{record:?}").contains(&token));

    // --- Tokens cannot create or revoke tokens; only a signed-in session can.
    let as_token = Actor::Token(
        keyward
            .verify(&token, &Requirement::nothing())
            .await
            .unwrap(),
    );
    assert_not_authorized(
        keyward
            .issue(
                &as_token,
                IssueRequest::new("mm_pat", user.clone(), "from a token"),
            )
            .await,
        "a token issuing a token",
    );
    assert_not_authorized(
        keyward.revoke(&as_token, &ci.key.id).await,
        "a token revoking itself",
    );
    assert_not_authorized(
        keyward
            .rotate(&as_token, &ci.key.id, TimeDelta::zero())
            .await,
        "a token rotating itself",
    );
    keyward.verify(&token, &need("publish")).await.unwrap();

    // --- A leaked token found in text names the key; the user revokes it.
    let leak = format!(
        "build log 14:02\n  export MM_TOKEN=\"{token}\"\n  curl -H 'Authorization: Bearer …'\n"
    );
    let found = keyward.format().scan(&leak);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, "mm_pat");
    assert_eq!(found[0].key_id, ci.key.id);
    assert_eq!(&leak[found[0].span.clone()], token);
    let revoked = keyward.revoke(&session, &found[0].key_id).await.unwrap();
    assert_eq!(revoked.status, Status::Revoked);

    // Revoked → 401 on the next request, the same answer as an unknown token.
    clock.advance(TimeDelta::seconds(1));
    let rejected = keyward.verify(&token, &need("publish")).await.unwrap_err();
    assert!(matches!(rejected, Rejection::Revoked), "{rejected:?}");
    let unknown = keyward
        .verify(&foreign_token(mm_pat()).await, &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(unknown, Rejection::NotFound), "{unknown:?}");
    assert_eq!(rejected.public_answer(), unknown.public_answer());
    assert_eq!(rejected.public_answer().status, 401);

    // Revocation is final.
    for result in [
        keyward.enable(&session, &ci.key.id).await,
        keyward.disable(&session, &ci.key.id).await,
    ] {
        assert!(
            matches!(
                result,
                Err(Error::InvalidTransition {
                    from: Status::Revoked,
                    ..
                })
            ),
            "{result:?}"
        );
    }
    let again = keyward
        .verify(&token, &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(again, Rejection::Revoked), "{again:?}");
}
