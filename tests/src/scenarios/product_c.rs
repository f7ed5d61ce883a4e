//! Product C: management tokens (`mgmt_`) that administer a workspace's API
//! keys (`tak_`).

use crate::support::{Backend, assert_not_authorized, clock_at, need, owner, perms};
use keyward_core::chrono::TimeDelta;
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, Lifetime, ListRequest, Manages, Rejection,
    Requirement, Session, Status, TokenKind, audit::AuditAction, audit::AuditOutcome,
    audit::AuditQuery, hooks::Clock,
};

/// Everything a management token may hold.
const MANAGEMENT: [&str; 5] = [
    "projects.view",
    "projects.manage",
    "api_keys.view",
    "api_keys.delete",
    "api_keys.create",
];

/// Management tokens: workspace scoped, never expire unless revoked, each
/// holding a subset of the five management permissions; details show name,
/// key prefix, last used, permissions and created; revoke is final; a
/// management token may create API keys but never another management token.
pub async fn product_c(backend: Backend) {
    let clock = clock_at(2026, 5, 4, 8);
    let workspace = owner("workspace");
    let other_workspace = owner("workspace");
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .kind(
            TokenKind::new("mgmt")
                .unwrap()
                .with_expiry(ExpiryPolicy::never())
                .with_catalog(perms(&MANAGEMENT))
                .unwrap()
                .with_manages(Manages {
                    kind: "tak".to_owned(),
                    create: "api_keys.create".parse().unwrap(),
                    view: "api_keys.view".parse().unwrap(),
                    revoke: "api_keys.delete".parse().unwrap(),
                    // Giving a disabled key back is like creating one.
                    enable: "api_keys.create".parse().unwrap(),
                }),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
    // The workspace owner holds exactly the management permissions, so no
    // management token can ever hold anything else.
    let admin = Actor::from(
        Session::new(owner("user"), perms(&MANAGEMENT)).with_admin_of(workspace.clone()),
    );

    // --- A management token: never expires, holds a subset of the five.
    let terraform = keyward
        .issue(
            &admin,
            IssueRequest::new("mgmt", workspace.clone(), "Terraform").scopes(perms(&[
                "projects.view",
                "api_keys.view",
                "api_keys.create",
            ])),
        )
        .await
        .unwrap();
    assert_eq!(terraform.key.expires_at, None);
    let expiring = keyward
        .issue(
            &admin,
            IssueRequest::new("mgmt", workspace.clone(), "Short").expires(Lifetime::Months(1)),
        )
        .await;
    assert!(
        matches!(expiring, Err(Error::ExpiryNotAllowed { .. })),
        "{expiring:?}"
    );
    // The kind's catalog bounds every management token, whoever asks: even
    // an operator cannot mint one holding anything else.
    for asker in [admin.clone(), Actor::operator("console")] {
        let outside = keyward
            .issue(
                &asker,
                IssueRequest::new("mgmt", workspace.clone(), "Billing")
                    .scopes(perms(&["projects.view", "billing.manage"])),
            )
            .await;
        assert!(
            matches!(&outside, Err(Error::OutsideCatalog { kind, outside })
                if kind == "mgmt" && outside == &vec!["billing.manage".parse().unwrap()]),
            "{outside:?}"
        );
    }

    // --- Details: name, key prefix, last used ("never"), permissions, created.
    let created = clock.now();
    let details = keyward.get(&admin, &terraform.key.id).await.unwrap();
    assert_eq!(details.name, "Terraform");
    assert!(details.preview.starts_with("mgmt_"), "{}", details.preview);
    assert!(details.preview.ends_with('…'), "{}", details.preview);
    assert!(
        terraform
            .token
            .expose_secret()
            .starts_with(details.preview.trim_end_matches('…'))
    );
    assert_eq!(details.last_used_at, None);
    assert_eq!(details.last_used(clock.now()), "never");
    assert_eq!(
        details.permissions,
        perms(&["projects.view", "api_keys.view", "api_keys.create"])
    );
    assert_eq!(details.created_at, created);
    assert_eq!(details.expires_at, None);
    assert_eq!(details.status, Status::Active);

    // Used once, flushed, read two hours later.
    clock.advance(TimeDelta::minutes(5));
    let used_at = clock.now();
    let verified = keyward
        .verify(terraform.token.expose_secret(), &need("api_keys.create"))
        .await
        .unwrap();
    assert_eq!(keyward.flush_usage().await.unwrap(), 1);
    clock.advance(TimeDelta::hours(2));
    let details = keyward.get(&admin, &terraform.key.id).await.unwrap();
    assert_eq!(details.last_used_at, Some(used_at));
    assert_eq!(details.last_used(clock.now()), "2 hours ago");

    // --- The management token at work.
    let as_terraform = Actor::Token(verified);
    let ci = keyward
        .issue(
            &as_terraform,
            IssueRequest::new("tak", workspace.clone(), "CI deploy")
                .scopes(perms(&["projects.view"])),
        )
        .await
        .expect("a management token with api_keys.create creates API keys");
    assert_eq!(ci.key.kind, "tak");
    assert_eq!(ci.key.created_by, format!("token:{}", terraform.key.id));
    keyward
        .verify(ci.token.expose_secret(), &need("projects.view"))
        .await
        .unwrap();
    let listed = keyward
        .list(
            &as_terraform,
            ListRequest::new(workspace.clone()).kind("tak"),
        )
        .await
        .expect("api_keys.view lists the API keys");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, ci.key.id);
    assert_not_authorized(
        keyward
            .list(&as_terraform, ListRequest::new(workspace.clone()))
            .await,
        "listing every kind",
    );

    // Never another management token.
    assert_not_authorized(
        keyward
            .issue(
                &as_terraform,
                IssueRequest::new("mgmt", workspace.clone(), "Escalation")
                    .scopes(perms(&["api_keys.view"])),
            )
            .await,
        "a management token creating a management token",
    );
    // Only for its own workspace.
    assert_not_authorized(
        keyward
            .issue(
                &as_terraform,
                IssueRequest::new("tak", other_workspace.clone(), "Elsewhere"),
            )
            .await,
        "creating keys for another workspace",
    );
    // Never more than it holds.
    assert_not_authorized(
        keyward
            .issue(
                &as_terraform,
                IssueRequest::new("tak", workspace.clone(), "Wider")
                    .scopes(perms(&["projects.manage"])),
            )
            .await,
        "granting a scope the token does not hold",
    );
    // Without api_keys.delete it cannot revoke.
    assert_not_authorized(
        keyward.revoke(&as_terraform, &ci.key.id).await,
        "revoking without api_keys.delete",
    );
    assert_not_authorized(
        keyward.disable(&as_terraform, &ci.key.id).await,
        "disabling without api_keys.delete",
    );
    keyward
        .verify(ci.token.expose_secret(), &Requirement::nothing())
        .await
        .expect("the refused revoke changed nothing");

    // A token that holds api_keys.delete can revoke, but not create.
    let janitor = keyward
        .issue(
            &admin,
            IssueRequest::new("mgmt", workspace.clone(), "Janitor")
                .scopes(perms(&["api_keys.view", "api_keys.delete"])),
        )
        .await
        .unwrap();
    let as_janitor = Actor::Token(
        keyward
            .verify(janitor.token.expose_secret(), &Requirement::nothing())
            .await
            .unwrap(),
    );
    assert_not_authorized(
        keyward
            .issue(
                &as_janitor,
                IssueRequest::new("tak", workspace.clone(), "Nope"),
            )
            .await,
        "creating without api_keys.create",
    );
    assert_not_authorized(
        keyward.revoke(&as_janitor, &terraform.key.id).await,
        "a management token revoking a management token",
    );
    let revoked = keyward.revoke(&as_janitor, &ci.key.id).await.unwrap();
    assert_eq!(revoked.status, Status::Revoked);
    let gone = keyward
        .verify(ci.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(gone, Rejection::Revoked), "{gone:?}");

    // --- An API key is not a management token: it cannot issue or revoke anything.
    let reporter = keyward
        .issue(
            &as_terraform,
            IssueRequest::new("tak", workspace.clone(), "Reporter")
                .scopes(perms(&["projects.view"])),
        )
        .await
        .unwrap();
    let as_api_key = Actor::Token(
        keyward
            .verify(reporter.token.expose_secret(), &Requirement::nothing())
            .await
            .unwrap(),
    );
    for kind in ["tak", "mgmt"] {
        assert_not_authorized(
            keyward
                .issue(
                    &as_api_key,
                    IssueRequest::new(kind, workspace.clone(), "From a key"),
                )
                .await,
            "an API key issuing",
        );
    }
    assert_not_authorized(
        keyward.revoke(&as_api_key, &reporter.key.id).await,
        "an API key revoking",
    );

    // --- Revoke is final.
    keyward.revoke(&admin, &terraform.key.id).await.unwrap();
    let after = keyward
        .verify(terraform.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(after, Rejection::Revoked), "{after:?}");
    let enable = keyward.enable(&admin, &terraform.key.id).await.unwrap_err();
    assert!(
        matches!(
            enable,
            Error::InvalidTransition {
                from: Status::Revoked,
                action: "enable"
            }
        ),
        "{enable:?}"
    );
    let still = keyward
        .verify(terraform.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(still, Rejection::Revoked), "{still:?}");
    let details = keyward.get(&admin, &terraform.key.id).await.unwrap();
    assert_eq!(details.status, Status::Revoked);
    assert_eq!(details.revoked_at, Some(clock.now()));

    // --- The refusals are in the audit log, by token.
    let events = keyward
        .audit_events(&admin, AuditQuery::newest(200).owner(&workspace))
        .await
        .unwrap();
    let escalation = events
        .iter()
        .find(|e| e.key_name.as_deref() == Some("Escalation"))
        .expect("the refused escalation is audited");
    assert_eq!(escalation.action, AuditAction::Issue);
    assert_eq!(escalation.actor, format!("token:{}", terraform.key.id));
    assert!(matches!(escalation.outcome, AuditOutcome::Refused(_)));
}
