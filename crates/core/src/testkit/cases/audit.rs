//! Invariant 4 of the [`KeyStore`] contract, **mutations and their audit
//! event are one write**, and the [`KeyStore::list_audit`] clause: events
//! newest first, filtered and limited.

use super::support::{owner_audit, role_event, rotate_event};
use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery};
use crate::key::{KeyId, Role};
use crate::lifecycle::KeyState;
use crate::permission::PermissionSet;
use crate::store::KeyStore;
use crate::testkit::fixtures::{
    ACTOR, Fixture, at, expect_already_exists, expect_conflict, expect_limit_reached,
    expect_not_found, expect_role_changed, insert, issue_event, key_event, plus_micros,
    state_event,
};

/// Every successful mutation appends its event with it, and no failed mutation appends one.
pub async fn mutations_append_their_audit_event_only_on_success(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("account");
    let audit = || owner_audit(store, &owner);
    let mut expected: Vec<AuditEvent> = Vec::new();
    let mut check = |what: &str, events: Vec<AuditEvent>, appended: Option<AuditEvent>| {
        expected.extend(appended);
        let want: Vec<AuditEvent> = expected.iter().rev().cloned().collect();
        assert_eq!(events, want, "audit log after {what}");
    };

    // insert: success, duplicate, limit.
    let key = fx.record(&owner, "mt", at(1));
    let event = issue_event(&key);
    store
        .insert_key(&key, Some(1), at(1), &event)
        .await
        .expect("insert_key");
    check("a successful insert", audit().await, Some(event));

    let dup = fx.record_with_id(key.id.clone(), &owner, "mt", at(2));
    let result = store
        .insert_key(&dup, None, at(2), &issue_event(&dup))
        .await;
    expect_already_exists(result, "duplicate insert");
    check("an AlreadyExists insert", audit().await, None);

    let over = fx.record(&owner, "mt", at(3));
    let result = store
        .insert_key(&over, Some(1), at(3), &issue_event(&over))
        .await;
    expect_limit_reached(result, 1, "insert over the limit");
    check("a LimitReached insert", audit().await, None);

    // set_state: success, conflict, unknown id.
    let event = state_event(&key, KeyState::Disabled, at(4));
    store
        .set_state(&key.id, KeyState::Active, KeyState::Disabled, at(4), &event)
        .await
        .expect("set_state");
    check("a successful set_state", audit().await, Some(event));

    let result = store
        .set_state(
            &key.id,
            KeyState::Active,
            KeyState::Revoked,
            at(5),
            &state_event(&key, KeyState::Revoked, at(5)),
        )
        .await;
    expect_conflict(
        result,
        KeyState::Active,
        KeyState::Disabled,
        "stale set_state",
    );
    check("a Conflict set_state", audit().await, None);

    let ghost = fx.record(&owner, "mt", at(6));
    let result = store
        .set_state(
            &ghost.id,
            KeyState::Active,
            KeyState::Disabled,
            at(6),
            &state_event(&ghost, KeyState::Disabled, at(6)),
        )
        .await;
    expect_not_found(result, "set_state of an unknown id");
    check("a NotFound set_state", audit().await, None);

    let event = state_event(&key, KeyState::Active, at(7));
    store
        .set_state(&key.id, KeyState::Disabled, KeyState::Active, at(7), &event)
        .await
        .expect("set_state");
    check("a second successful set_state", audit().await, Some(event));

    // rotate: success, repeated, clash.
    let mut next = fx.record(&owner, "mt", at(8));
    next.rotated_from = Some(key.id.clone());
    let event = rotate_event(&key, &next);
    store
        .rotate_key(&key.id, KeyState::Active, at(100), &next, &event)
        .await
        .expect("rotate_key");
    check("a successful rotation", audit().await, Some(event));

    let mut again = fx.record(&owner, "mt", at(9));
    again.rotated_from = Some(key.id.clone());
    let result = store
        .rotate_key(
            &key.id,
            KeyState::Active,
            at(100),
            &again,
            &rotate_event(&key, &again),
        )
        .await;
    assert!(
        matches!(result, Err(crate::Error::Conflict { .. })),
        "repeated rotation: {result:?}"
    );
    check("a Conflict rotation", audit().await, None);

    let mut clash = fx.record_with_id(key.id.clone(), &owner, "mt", at(10));
    clash.rotated_from = Some(next.id.clone());
    let result = store
        .rotate_key(
            &next.id,
            KeyState::Active,
            at(100),
            &clash,
            &rotate_event(&next, &clash),
        )
        .await;
    expect_already_exists(result, "rotation onto an existing id");
    check("an AlreadyExists rotation", audit().await, None);

    // revoke_key: success, already revoked, unknown id.
    let revoked = fx.record(&owner, "mt", at(11));
    insert(store, &revoked).await;
    check(
        "inserting a key to revoke",
        audit().await,
        Some(issue_event(&revoked)),
    );
    let event = state_event(&revoked, KeyState::Revoked, at(11));
    assert!(
        store
            .revoke_key(&revoked.id, at(11), &event)
            .await
            .expect("revoke_key"),
        "revoke_key of an active key revokes it"
    );
    check("a successful revoke_key", audit().await, Some(event));
    let again = store
        .revoke_key(
            &revoked.id,
            at(12),
            &state_event(&revoked, KeyState::Revoked, at(12)),
        )
        .await
        .expect("revoke_key of a revoked key");
    assert!(!again, "revoking a revoked key reports Ok(false)");
    check("an Ok(false) revoke_key", audit().await, None);
    let result = store
        .revoke_key(
            &ghost.id,
            at(12),
            &state_event(&ghost, KeyState::Revoked, at(12)),
        )
        .await;
    expect_not_found(result, "revoke_key of an unknown id");
    check("a NotFound revoke_key", audit().await, None);

    // Roles: create, stale create, replace, stale replace, delete, stale
    // delete, missing delete.
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let role = Role::new(owner.clone(), fx.role("reader"), perms(&["keys.view"]));
    let event = role_event(AuditAction::PutRole, &role, 13);
    store.put_role(&role, None, &event).await.expect("put_role");
    check("put_role creating", audit().await, Some(event));
    let result = store
        .put_role(&role, None, &role_event(AuditAction::PutRole, &role, 14))
        .await;
    expect_role_changed(result, "creating an existing role");
    check("a RoleChanged create", audit().await, None);
    let wider = Role::new(owner.clone(), role.name.clone(), perms(&["keys.*"]));
    let event = role_event(AuditAction::PutRole, &wider, 15);
    store
        .put_role(&wider, Some(&role.permissions), &event)
        .await
        .expect("put_role replacing");
    check("put_role replacing", audit().await, Some(event));
    let result = store
        .put_role(
            &wider,
            Some(&role.permissions),
            &role_event(AuditAction::PutRole, &wider, 16),
        )
        .await;
    expect_role_changed(result, "replacing with stale permissions");
    check("a RoleChanged replace", audit().await, None);
    let result = store
        .delete_role(
            &owner,
            &role.name,
            &role.permissions,
            &role_event(AuditAction::DeleteRole, &role, 17),
        )
        .await;
    expect_role_changed(result, "deleting with stale permissions");
    check("a RoleChanged delete_role", audit().await, None);
    let event = role_event(AuditAction::DeleteRole, &wider, 18);
    store
        .delete_role(&owner, &wider.name, &wider.permissions, &event)
        .await
        .expect("delete_role");
    check("delete_role", audit().await, Some(event));
    let result = store
        .delete_role(
            &owner,
            &wider.name,
            &wider.permissions,
            &role_event(AuditAction::DeleteRole, &wider, 19),
        )
        .await;
    expect_not_found(result, "delete_role of a missing role");
    check("a NotFound delete_role", audit().await, None);

    // A refusal recorded on its own.
    let event = key_event(&key, AuditAction::Revoke, at(20))
        .with_outcome(AuditOutcome::Refused("not authorized: wrong owner".into()));
    store.append_audit(&event).await.expect("append_audit");
    check("append_audit", audit().await, Some(event));
}

/// `list_audit` is newest first (latest appended first, also for equal times), filters by owner and key, and respects its limit.
pub async fn list_audit_is_newest_first_filtered_and_limited(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let (a, b) = (fx.owner("a"), fx.owner("b"));
    let (a1, a2, b1) = (fx.id(), fx.id(), fx.id());
    let event = |secs: i64, owner: &crate::Owner, key: Option<&KeyId>, detail: &str| {
        let e = AuditEvent::new(plus_micros(at(secs), 7), ACTOR, AuditAction::View);
        match key {
            Some(id) => e.with_key(id, "name", owner),
            None => e.with_owner(owner),
        }
        .with_detail(detail)
    };
    let events = [
        event(1, &a, Some(&a1), "e0"),
        event(2, &b, Some(&b1), "e1"),
        event(3, &a, Some(&a2), "e2"),
        event(4, &a, None, "e3"),
        event(5, &a, Some(&a1), "e4").with_outcome(AuditOutcome::Refused("nope".into())),
        event(5, &a, Some(&a1), "e5"),
        event(5, &a, Some(&a1), "e6"),
        event(6, &b, Some(&b1), "e7"),
    ];
    for e in &events {
        store.append_audit(e).await.expect("append_audit");
    }
    let pick = |indexes: &[usize]| -> Vec<AuditEvent> {
        indexes.iter().map(|&i| events[i].clone()).collect()
    };
    let cases = [
        (
            AuditQuery::newest(100).owner(&a),
            pick(&[6, 5, 4, 3, 2, 0]),
            "owner a",
        ),
        (
            AuditQuery::newest(2).owner(&a),
            pick(&[6, 5]),
            "owner a, limit 2",
        ),
        (AuditQuery::newest(100).owner(&b), pick(&[7, 1]), "owner b"),
        (
            AuditQuery::newest(100).key_id(&a1),
            pick(&[6, 5, 4, 0]),
            "key a1",
        ),
        (
            AuditQuery::newest(100).owner(&a).key_id(&a1),
            pick(&[6, 5, 4, 0]),
            "owner a and key a1",
        ),
        (
            AuditQuery::newest(100).owner(&b).key_id(&a1),
            pick(&[]),
            "owner b and key a1",
        ),
        (
            AuditQuery::newest(1).key_id(&b1),
            pick(&[7]),
            "key b1, limit 1",
        ),
        (
            AuditQuery::newest(100).key_id(&fx.id()),
            pick(&[]),
            "an unknown key",
        ),
    ];
    for (query, expected, what) in cases {
        assert_eq!(
            store.list_audit(&query).await.expect("list_audit"),
            expected,
            "{what}"
        );
    }

    // Unfiltered: our events appear newest first (other cases may share the
    // store, so look only at ours).
    let all = store
        .list_audit(&AuditQuery::newest(1000))
        .await
        .expect("list_audit");
    let ours: Vec<AuditEvent> = all.into_iter().filter(|e| events.contains(e)).collect();
    assert_eq!(
        ours,
        pick(&[7, 6, 5, 4, 3, 2, 1, 0]),
        "unfiltered, newest first"
    );
    let three = store
        .list_audit(&AuditQuery::newest(3))
        .await
        .expect("list_audit");
    assert_eq!(three.len(), 3, "an unfiltered query respects its limit");
}

/// `list_audit` filters by action and by time (`since` inclusive, `until` exclusive, to the microsecond), combined with owner and key filters, newest first, exactly as `AuditQuery::matches` says.
pub async fn list_audit_filters_by_action_and_time(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("a");
    let key = fx.id();
    let event = |micros: i64, action: AuditAction, keyed: bool| {
        let e = AuditEvent::new(plus_micros(at(100), micros), ACTOR, action);
        if keyed {
            e.with_key(&key, "name", &owner)
        } else {
            e.with_owner(&owner)
        }
    };
    let events = [
        event(0, AuditAction::Issue, true),
        event(1, AuditAction::View, false),
        event(2, AuditAction::Revoke, true),
        event(3, AuditAction::View, true),
        event(4, AuditAction::Prune, false),
        // Appended after a later one: still matched by its own time.
        event(1, AuditAction::Revoke, false),
    ];
    for e in &events {
        store.append_audit(e).await.expect("append_audit");
    }
    let pick = |indexes: &[usize]| -> Vec<AuditEvent> {
        indexes.iter().map(|&i| events[i].clone()).collect()
    };
    let base = || AuditQuery::newest(100).owner(&owner);
    let cases = [
        (
            base().action(AuditAction::Revoke),
            pick(&[5, 2]),
            "action revoke",
        ),
        (
            base().action(AuditAction::View).key_id(&key),
            pick(&[3]),
            "action view, key",
        ),
        (
            base().action(AuditAction::Enable),
            pick(&[]),
            "an action with no events",
        ),
        (
            base().since(plus_micros(at(100), 2)),
            pick(&[4, 3, 2]),
            "since is inclusive",
        ),
        (
            base().until(plus_micros(at(100), 2)),
            pick(&[5, 1, 0]),
            "until is exclusive",
        ),
        (
            base()
                .since(plus_micros(at(100), 1))
                .until(plus_micros(at(100), 3)),
            pick(&[5, 2, 1]),
            "a window [since, until)",
        ),
        (
            base()
                .since(plus_micros(at(100), 1))
                .until(plus_micros(at(100), 3))
                .action(AuditAction::Revoke),
            pick(&[5, 2]),
            "a window and an action",
        ),
        (
            base()
                .since(plus_micros(at(100), 3))
                .until(plus_micros(at(100), 3)),
            pick(&[]),
            "an empty window",
        ),
        (
            {
                let mut query = base().action(AuditAction::View);
                query.limit = 1;
                query
            },
            pick(&[3]),
            "filtered, then limited",
        ),
    ];
    for (query, expected, what) in cases {
        let listed = store.list_audit(&query).await.expect("list_audit");
        assert_eq!(listed, expected, "list_audit: {what}");
        let reference: Vec<AuditEvent> = events
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(query.limit)
            .cloned()
            .collect();
        assert_eq!(
            listed, reference,
            "list_audit agrees with AuditQuery::matches: {what}"
        );
    }
}
