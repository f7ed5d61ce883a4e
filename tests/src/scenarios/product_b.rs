//! Product B: workspace keys for an MCP server (`tak_`).

use crate::support::{Backend, clock_at, owner, role};
use keyward_core::chrono::TimeDelta;
use keyward_core::{
    Actor, IssueRequest, ListRequest, PermissionSet, Rejection, Requirement, Role, Session, Status,
    TokenKind, audit::AuditAction, audit::AuditOutcome, audit::AuditQuery,
};
use std::collections::BTreeSet;

fn need(names: &[&str]) -> Requirement {
    Requirement::all_of(names).unwrap()
}

/// Workspace keys for an MCP server: roles assigned at creation give the key
/// the union of their permissions, and editing a role changes what the key
/// can do; the list shows name, a truncated preview (`tak_bUiB…`), roles and
/// status; audit events name the key; disable and re-enable (the same value
/// works again); rotation.
pub async fn product_b(backend: Backend) {
    let clock = clock_at(2026, 3, 2, 10);
    let workspace = owner("workspace");
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let admin = Actor::from(
        Session::new(
            owner("user"),
            PermissionSet::parse(["tools.*", "resources.*", "prompts.*"]).unwrap(),
        )
        .with_admin_of(workspace.clone()),
    );

    // --- Roles, and a key holding two of them.
    let reader = role("reader");
    let caller = role("tool-caller");
    keyward
        .put_role(
            &admin,
            Role::new(
                workspace.clone(),
                reader.clone(),
                PermissionSet::parse(["resources.read", "prompts.read"]).unwrap(),
            ),
        )
        .await
        .unwrap();
    keyward
        .put_role(
            &admin,
            Role::new(
                workspace.clone(),
                caller.clone(),
                PermissionSet::parse(["tools.list", "tools.call"]).unwrap(),
            ),
        )
        .await
        .unwrap();
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "Claude Desktop")
                .roles([reader.clone(), caller.clone()]),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let id = issued.key.id.clone();
    let union =
        PermissionSet::parse(["resources.read", "prompts.read", "tools.list", "tools.call"])
            .unwrap();
    assert_eq!(issued.key.permissions, union);
    assert_eq!(
        issued.key.roles,
        BTreeSet::from([reader.clone(), caller.clone()])
    );

    // --- The key can do what its roles allow, and no more.
    let verified = keyward
        .verify(&token, &need(&["tools.call", "resources.read"]))
        .await
        .unwrap();
    assert_eq!(verified.name(), "Claude Desktop");
    assert_eq!(verified.permissions(), &union);
    let beyond = keyward
        .verify(&token, &need(&["resources.write"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&beyond, Rejection::InsufficientPermissions { missing }
            if *missing == Requirement::permission("resources.write".parse().unwrap())),
        "{beyond:?}"
    );
    assert_eq!(beyond.public_answer().status, 403);

    // --- Editing a role changes the key at the next verify.
    keyward
        .put_role(
            &admin,
            Role::new(
                workspace.clone(),
                caller.clone(),
                PermissionSet::parse(["tools.list"]).unwrap(),
            ),
        )
        .await
        .unwrap();
    let narrowed = keyward
        .verify(&token, &need(&["tools.call", "resources.read"]))
        .await
        .unwrap_err();
    match narrowed {
        Rejection::InsufficientPermissions { missing } => {
            assert_eq!(
                missing,
                Requirement::permission("tools.call".parse().unwrap())
            );
        }
        other => panic!("expected InsufficientPermissions, got {other:?}"),
    }
    keyward
        .verify(&token, &need(&["tools.list", "resources.read"]))
        .await
        .expect("what the edited role still grants keeps working");

    // --- The list: name, a masked preview of exactly `tak_` + 4 characters + `…`, roles, status.
    let second = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "Cursor").roles([reader.clone()]),
        )
        .await
        .unwrap();
    let page = keyward
        .list(&admin, ListRequest::new(workspace.clone()))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let listed = page.items.iter().find(|k| k.id == id).expect("listed");
    assert_eq!(listed.name, "Claude Desktop");
    assert_eq!(
        listed.roles,
        BTreeSet::from([reader.clone(), caller.clone()])
    );
    assert_eq!(listed.status, Status::Active);
    assert_masked_preview(&listed.preview, &token);
    let other = page
        .items
        .iter()
        .find(|k| k.id == second.key.id)
        .expect("listed");
    assert_masked_preview(&other.preview, second.token.expose_secret());
    assert_eq!(other.roles, BTreeSet::from([reader.clone()]));

    // --- Disable, then enable: the same value works again.
    keyward.disable(&admin, &id).await.unwrap();
    let disabled = keyward
        .verify(&token, &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(disabled, Rejection::Disabled), "{disabled:?}");
    assert_eq!(disabled.public_answer().status, 401);
    let page = keyward
        .list(
            &admin,
            ListRequest::new(workspace.clone()).statuses([Status::Disabled]),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, id);
    let enabled = keyward.enable(&admin, &id).await.unwrap();
    assert_eq!(enabled.status, Status::Active);
    keyward
        .verify(&token, &need(&["tools.list"]))
        .await
        .expect("the same token verifies after enable");

    // --- Rotation: the successor keeps the name and roles; the old key stops after the overlap.
    let rotated = keyward
        .rotate(&admin, &id, TimeDelta::minutes(30))
        .await
        .unwrap();
    let new_token = rotated.token.expose_secret().to_owned();
    assert_eq!(rotated.key.name, "Claude Desktop");
    assert_eq!(
        rotated.key.roles,
        BTreeSet::from([reader.clone(), caller.clone()])
    );
    assert_masked_preview(&rotated.key.preview, &new_token);
    keyward
        .verify(&token, &need(&["tools.list"]))
        .await
        .unwrap();
    keyward
        .verify(&new_token, &need(&["tools.list"]))
        .await
        .unwrap();
    clock.advance(TimeDelta::minutes(31));
    let old = keyward
        .verify(&token, &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(old, Rejection::Expired), "{old:?}");
    let new = keyward
        .verify(&new_token, &need(&["tools.list"]))
        .await
        .unwrap();
    assert_eq!(new.key_id(), &rotated.key.id);
    assert_eq!(new.name(), "Claude Desktop");

    // --- Audit: every management event about the key names it.
    let events = keyward
        .audit_events(&admin, AuditQuery::newest(100).owner(&workspace))
        .await
        .unwrap();
    let about_key: Vec<_> = events
        .iter()
        .filter(|e| e.key_id.as_ref() == Some(&id))
        .collect();
    let actions: Vec<AuditAction> = about_key.iter().rev().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Issue,
            AuditAction::Disable,
            AuditAction::Enable,
            AuditAction::Rotate
        ]
    );
    for event in about_key {
        assert_eq!(
            event.key_name.as_deref(),
            Some("Claude Desktop"),
            "{event:?}"
        );
        assert_eq!(event.outcome, AuditOutcome::Succeeded);
        assert_eq!(event.owner.as_ref(), Some(&workspace));
    }
}

/// `tak_` + the first 4 characters of the key id + `…`, and a prefix of the token.
fn assert_masked_preview(preview: &str, token: &str) {
    let shown = preview
        .strip_prefix("tak_")
        .and_then(|rest| rest.strip_suffix('…'))
        .unwrap_or_else(|| panic!("preview {preview:?} is not tak_XXXX…"));
    assert_eq!(shown.chars().count(), 4, "{preview:?}");
    assert!(
        shown.chars().all(|c| c.is_ascii_alphanumeric()),
        "{preview:?}"
    );
    assert!(token.starts_with(&format!("tak_{shown}")), "{preview:?}");
}
