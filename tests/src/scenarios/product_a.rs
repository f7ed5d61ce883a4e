//! Product A: account API keys (`mt_`).

use crate::support::{Backend, at, clock_at, foreign_token, owner, secret_part};
use keyward_core::chrono::{Months, TimeDelta};
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, Lifetime, Owner, PermissionSet, Rejection,
    Requirement, Session, Status, TokenKind, audit::AuditAction, audit::AuditOutcome,
    audit::AuditQuery, hooks::Decision, hooks::IssueContext, hooks::IssueHook, token::BearerError,
    token::HashAlgorithm, token::TokenHasher,
};
use keyward_core::{store::KeyStore, store::async_trait};
use std::collections::BTreeSet;

const PRO_ONLY: &str = "API keys are a Pro feature; upgrade to create one";

/// Creating keys is reserved to accounts on a paying plan.
#[derive(Debug)]
struct PlanGate {
    paying: BTreeSet<Owner>,
}

#[async_trait]
impl IssueHook for PlanGate {
    async fn check(&self, request: &IssueContext<'_>) -> Result<Decision, Error> {
        Ok(if self.paying.contains(request.owner) {
            Decision::Allow
        } else {
            Decision::Refuse(PRO_ONLY.to_owned())
        })
    }
}

fn mt_kind() -> TokenKind {
    TokenKind::new("mt")
        .unwrap()
        .with_expiry(
            ExpiryPolicy::from_choices(
                [
                    Lifetime::Months(1),
                    Lifetime::Months(3),
                    Lifetime::Months(6),
                ],
                Lifetime::Months(3),
            )
            .unwrap(),
        )
        .with_live_limit(3)
}

/// Account API keys: one per integration, expiry 1/3/6 months (default 3),
/// shown once, SHA-256 at rest, at most 3 live keys per account, sent as a
/// Bearer header, rotated with an overlap, revoked on the next request, and
/// reserved to paying plans.
pub async fn product_a(backend: Backend) {
    // 2026-01-31: month arithmetic is calendar arithmetic (Jan 31 + 1 month = Feb 28).
    let clock = clock_at(2026, 1, 31, 9);
    let account = owner("account");
    let free_account = owner("account");
    let keyward = backend
        .builder()
        .kind(mt_kind())
        .clock(clock.clone())
        .issue_hook(PlanGate {
            paying: BTreeSet::from([account.clone()]),
        })
        .build()
        .unwrap();
    // The account's admin, signed in to the dashboard.
    let admin = Actor::from(
        Session::new(owner("user"), PermissionSet::new()).with_admin_of(account.clone()),
    );
    let free_admin = Actor::from(
        Session::new(owner("user"), PermissionSet::new()).with_admin_of(free_account.clone()),
    );

    // --- Plan gating: the hook says no, with a reason, and the refusal is audited.
    let refused = keyward
        .issue(
            &free_admin,
            IssueRequest::new("mt", free_account.clone(), "Zapier"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::RefusedByPolicy { reason } if reason == PRO_ONLY),
        "{refused:?}"
    );
    let events = keyward
        .audit_events(&free_admin, AuditQuery::newest(10).owner(&free_account))
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].action, AuditAction::Issue);
    assert_eq!(events[0].key_name.as_deref(), Some("Zapier"));
    assert!(
        matches!(&events[0].outcome, AuditOutcome::Refused(reason) if reason.contains(PRO_ONLY)),
        "{:?}",
        events[0].outcome
    );
    let free_keys = keyward
        .list(
            &free_admin,
            keyward_core::ListRequest::new(free_account.clone()),
        )
        .await
        .unwrap();
    assert!(free_keys.items.is_empty(), "a refused issue stores nothing");

    // --- Expiry: 3 calendar months by default; 1 and 6 allowed; anything else refused.
    let zapier = keyward
        .issue(&admin, IssueRequest::new("mt", account.clone(), "Zapier"))
        .await
        .unwrap();
    assert_eq!(zapier.key.created_at, at(2026, 1, 31, 9));
    assert_eq!(
        zapier.key.expires_at,
        zapier.key.created_at.checked_add_months(Months::new(3))
    );
    assert_eq!(zapier.key.expires_at, Some(at(2026, 4, 30, 9)));
    let billing = keyward
        .issue(
            &admin,
            IssueRequest::new("mt", account.clone(), "Billing sync").expires(Lifetime::Months(1)),
        )
        .await
        .unwrap();
    assert_eq!(billing.key.expires_at, Some(at(2026, 2, 28, 9)));
    let reports = keyward
        .issue(
            &admin,
            IssueRequest::new("mt", account.clone(), "Reports").expires(Lifetime::Months(6)),
        )
        .await
        .unwrap();
    assert_eq!(reports.key.expires_at, Some(at(2026, 7, 31, 9)));
    let too_long = keyward
        .issue(
            &admin,
            IssueRequest::new("mt", account.clone(), "Forever").expires(Lifetime::Years(1)),
        )
        .await
        .unwrap_err();
    match too_long {
        Error::ExpiryNotAllowed { requested, allowed } => {
            assert_eq!(requested, Lifetime::Years(1));
            assert_eq!(
                allowed,
                [
                    Lifetime::Months(1),
                    Lifetime::Months(3),
                    Lifetime::Months(6)
                ]
            );
        }
        other => panic!("expected ExpiryNotAllowed, got {other:?}"),
    }

    // --- Shown once: the token is in the issue result only, and never in its Debug.
    let token = zapier.token.expose_secret().to_owned();
    assert!(token.starts_with("mt_"));
    assert_eq!(token.len(), mt_kind().token_len());
    let secret = secret_part(&keyward, &token);
    assert!(!format!("{zapier:?}").contains(&token));
    assert!(!format!("{zapier:?}").contains(secret));
    assert_eq!(zapier.token.to_string(), "[redacted]");
    let details = keyward.get(&admin, &zapier.key.id).await.unwrap();
    assert!(!format!("{details:?}").contains(secret));

    // --- SHA-256 at rest: the store holds the digest of the secret, never the secret.
    let record = keyward_core::dangerous::store(&keyward)
        .get_key(&zapier.key.id)
        .await
        .unwrap()
        .expect("the key is stored");
    assert_eq!(record.digest.algorithm(), HashAlgorithm::Sha256);
    assert!(TokenHasher::sha256().digest(secret).matches(&record.digest));
    assert!(!format!("{record:?}").contains(secret));
    assert!(!format!("{record:?}").contains(&token));

    // --- At most 3 live keys per account; revoking one frees a place.
    let fourth = keyward
        .issue(&admin, IssueRequest::new("mt", account.clone(), "Webhooks"))
        .await
        .unwrap_err();
    assert!(
        matches!(fourth, Error::LimitReached { limit: 3 }),
        "{fourth:?}"
    );
    keyward.revoke(&admin, &reports.key.id).await.unwrap();
    let webhooks = keyward
        .issue(&admin, IssueRequest::new("mt", account.clone(), "Webhooks"))
        .await
        .unwrap();
    assert_eq!(webhooks.key.status, Status::Active);

    // --- Verified from a Bearer header; the scheme is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let header = format!("{scheme} {token}");
        let verified = keyward
            .verify_bearer(Some(&header), &Requirement::nothing())
            .await
            .unwrap();
        assert_eq!(verified.key_id(), &zapier.key.id);
        assert_eq!(verified.owner(), &account);
        assert_eq!(verified.name(), "Zapier");
        assert_eq!(verified.expires_at(), Some(at(2026, 4, 30, 9)));
    }
    let no_header = keyward
        .verify_bearer(None, &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(
        no_header,
        Rejection::BadHeader(BearerError::Missing)
    ));
    assert_eq!(no_header.public_answer().status, 401);
    let basic = format!("Basic {token}");
    let wrong_scheme = keyward
        .verify_bearer(Some(&basic), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(
        wrong_scheme,
        Rejection::BadHeader(BearerError::WrongScheme)
    ));

    // --- Rotation: a replacement works at once, the old key until the overlap ends.
    let overlap = TimeDelta::hours(24);
    let replacement = keyward
        .rotate(&admin, &zapier.key.id, overlap)
        .await
        .unwrap();
    let new_token = replacement.token.expose_secret().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(replacement.key.name, "Zapier");
    assert_eq!(replacement.key.owner, account);
    assert_eq!(replacement.key.rotated_from.as_ref(), Some(&zapier.key.id));
    let bearer = |t: &str| format!("Bearer {t}");
    clock.advance(TimeDelta::hours(23));
    for t in [&token, &new_token] {
        keyward
            .verify_bearer(Some(&bearer(t)), &Requirement::nothing())
            .await
            .expect("both keys verify during the overlap");
    }
    // One handover at a time: while the old key still works, its replacement
    // cannot be rotated again, so rotation never outgrows the live-key limit.
    let too_soon = keyward
        .rotate(&admin, &replacement.key.id, overlap)
        .await
        .unwrap_err();
    assert!(
        matches!(too_soon, Error::InvalidInput { field: "key", .. }),
        "{too_soon:?}"
    );
    clock.advance(TimeDelta::hours(1) + TimeDelta::seconds(1));
    let old = keyward
        .verify_bearer(Some(&bearer(&token)), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(old, Rejection::Expired), "{old:?}");
    let new = keyward
        .verify_bearer(Some(&bearer(&new_token)), &Requirement::nothing())
        .await
        .unwrap();
    assert_eq!(new.key_id(), &replacement.key.id);
    let old_details = keyward.get(&admin, &zapier.key.id).await.unwrap();
    assert_eq!(old_details.status, Status::Expired);
    assert_eq!(old_details.rotated_to.as_ref(), Some(&replacement.key.id));

    // --- Revoke takes effect on the very next request, with the same 401 as an unknown key.
    keyward.revoke(&admin, &replacement.key.id).await.unwrap();
    let revoked = keyward
        .verify_bearer(Some(&bearer(&new_token)), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(revoked, Rejection::Revoked), "{revoked:?}");
    let stranger = foreign_token(TokenKind::new("mt").unwrap()).await;
    let unknown = keyward
        .verify_bearer(Some(&bearer(&stranger)), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(unknown, Rejection::NotFound), "{unknown:?}");
    assert_eq!(revoked.public_answer(), unknown.public_answer());
    assert_eq!(revoked.public_answer().status, 401);

    // A token pasted into the name (or metadata) is refused, and the refusal's
    // audit event does not carry it either.
    let pasted = keyward
        .issue(
            &admin,
            IssueRequest::new("mt", account.clone(), &format!("key {new_token}")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(pasted, Error::InvalidInput { field: "name", .. }),
        "{pasted:?}"
    );
    let in_metadata = IssueRequest::new("mt", account.clone(), "Zapier 2").metadata("note", &token);
    let pasted = keyward.issue(&admin, in_metadata).await.unwrap_err();
    assert!(
        matches!(
            pasted,
            Error::InvalidInput {
                field: "metadata",
                ..
            }
        ),
        "{pasted:?}"
    );
    let events = keyward
        .audit_events(&admin, AuditQuery::newest(10).owner(&account))
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .all(|e| !format!("{e:?}").contains(&new_token))
    );

    // The account's other keys are untouched.
    keyward
        .verify(billing.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
    keyward
        .verify(webhooks.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
}
