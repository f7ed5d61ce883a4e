//! Finding 4, **the plan gate**: the issue hook refuses rotation too, sees
//! the whole request, and a rotated successor never outlives the current
//! expiry policy.

use super::{
    assert_one_refusal_audited, assert_rotates, assert_unchanged, audit_count, details, keys_of,
};
use crate::support::{Backend, clock_at, need, owner, perms, role};
use keyward_core::chrono::{DateTime, TimeDelta, Utc};
use keyward_core::hooks::Clock;
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, KeyId, Lifetime, Owner, PermissionSet, Role,
    RoleName, Session, Status, TokenKind, audit::AuditAction, hooks::Decision, hooks::IssueContext,
    hooks::IssueHook, store::Metadata, store::async_trait,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

/// What the issue hook saw, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    actor: String,
    kind: String,
    owner: Owner,
    name: String,
    scopes: PermissionSet,
    roles: BTreeSet<RoleName>,
    inherits_owner: bool,
    grant: PermissionSet,
    expires_at: Option<DateTime<Utc>>,
    metadata: Metadata,
    replaces: Option<KeyId>,
}

/// A plan gate: refuses owners on the free plan, and records every request.
#[derive(Debug, Clone, Default)]
struct PlanGate {
    free: Arc<Mutex<BTreeSet<Owner>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl PlanGate {
    fn downgrade(&self, owner: &Owner) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(owner.clone());
    }
    fn upgrade(&self, owner: &Owner) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(owner);
    }
    fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
            .expect("the hook was asked")
    }
    fn asked(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

const FREE_PLAN: &str = "API keys are a Pro feature";

#[async_trait]
impl IssueHook for PlanGate {
    async fn check(&self, request: &IssueContext<'_>) -> Result<Decision, Error> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen {
                actor: request.actor.label(),
                kind: request.kind.prefix().to_owned(),
                owner: request.owner.clone(),
                name: request.name.to_owned(),
                scopes: request.scopes.clone(),
                roles: request.roles.clone(),
                inherits_owner: request.inherits_owner,
                grant: request.grant.clone(),
                expires_at: request.expires_at,
                metadata: request.metadata.clone(),
                replaces: request.replaces.cloned(),
            });
        let free = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(request.owner);
        Ok(if free {
            Decision::Refuse(FREE_PLAN.to_owned())
        } else {
            Decision::Allow
        })
    }
}

fn mt_kind(policy: ExpiryPolicy) -> TokenKind {
    TokenKind::new("mt").unwrap().with_expiry(policy)
}

fn months(choices: &[u32], default: u32) -> ExpiryPolicy {
    ExpiryPolicy::from_choices(
        choices.iter().map(|&m| Lifetime::Months(m)),
        Lifetime::Months(default),
    )
    .unwrap()
}

/// An account downgraded to the free plan cannot rotate its key into a
/// fresh one: the plan gate is asked on rotation too (it sees `replaces`).
pub async fn the_plan_gate_refuses_rotation_too(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let gate = PlanGate::default();
    let keyward = backend
        .builder()
        .kind(mt_kind(months(&[1, 3, 6], 3)))
        .issue_hook(gate.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let account = owner("account");
    let user =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(account.clone()));
    let key = keyward
        .issue(
            &user,
            IssueRequest::new("mt", account.clone(), "zapier").scopes(perms(&["orders.read"])),
        )
        .await
        .expect("a paying account issues");
    assert_eq!(gate.last().replaces, None);

    gate.downgrade(&account);
    let before = details(&keyward, &key.key.id).await;
    let events = audit_count(&keyward).await;
    let asked = gate.asked();
    let rotated = keyward
        .rotate(&user, &key.key.id, TimeDelta::hours(1))
        .await;
    assert!(
        matches!(&rotated, Err(Error::RefusedByPolicy { reason }) if reason == FREE_PLAN),
        "{rotated:?}"
    );
    assert_eq!(gate.asked(), asked + 1, "the gate was asked once");
    assert_eq!(gate.last().replaces.as_ref(), Some(&key.key.id));
    assert_unchanged(&keyward, &before).await;
    assert_eq!(keys_of(&keyward, &account).await.len(), 1, "no successor");
    assert_one_refusal_audited(&keyward, events, AuditAction::Rotate, &user).await;
    keyward
        .verify(key.token.expose_secret(), &need("orders.read"))
        .await
        .expect("the key keeps working, unrotated");
    // Issuing is refused the same way.
    let issued = keyward
        .issue(&user, IssueRequest::new("mt", account.clone(), "another"))
        .await;
    assert!(
        matches!(&issued, Err(Error::RefusedByPolicy { .. })),
        "{issued:?}"
    );
    assert_eq!(keys_of(&keyward, &account).await.len(), 1, "no key issued");

    gate.upgrade(&account);
    assert_rotates(&keyward, &user, &key, &need("orders.read")).await;
}

/// The hook sees the whole request, on issue and on rotation: kind, owner,
/// name, scopes, roles, the grant with the roles' permissions, the expiry,
/// the metadata, the actor and, on rotation, the key replaced.
pub async fn the_issue_hook_sees_the_whole_request(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let gate = PlanGate::default();
    let keyward = backend
        .builder()
        .kind(mt_kind(months(&[1, 3, 6], 3)))
        .issue_hook(gate.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let account = owner("account");
    let user =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(account.clone()));
    let reader = role("reader");
    keyward
        .put_role(
            &user,
            Role::new(account.clone(), reader.clone(), perms(&["invoices.read"])),
        )
        .await
        .unwrap();
    let issued = keyward
        .issue(
            &user,
            IssueRequest::new("mt", account.clone(), "Zapier")
                .scopes(perms(&["orders.read", "orders.write"]))
                .roles([reader.clone()])
                .expires(Lifetime::Months(1))
                .metadata("plan", "pro")
                .metadata("integration", "zapier"),
        )
        .await
        .unwrap();
    let metadata: Metadata = [("plan", "pro"), ("integration", "zapier")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let on_issue = Seen {
        actor: user.label(),
        kind: "mt".to_owned(),
        owner: account.clone(),
        name: "Zapier".to_owned(),
        scopes: perms(&["orders.read", "orders.write"]),
        roles: BTreeSet::from([reader.clone()]),
        inherits_owner: false,
        grant: perms(&["invoices.read", "orders.read", "orders.write"]),
        expires_at: issued.key.expires_at,
        metadata,
        replaces: None,
    };
    assert!(issued.key.expires_at.is_some());
    assert_eq!(gate.last(), on_issue);

    clock.advance(TimeDelta::days(3));
    let operator = Actor::operator("rotation-job");
    let successor = keyward
        .rotate(&operator, &issued.key.id, TimeDelta::hours(1))
        .await
        .unwrap();
    let on_rotation = Seen {
        actor: operator.label(),
        expires_at: successor.key.expires_at,
        replaces: Some(issued.key.id.clone()),
        ..on_issue
    };
    assert_eq!(gate.last(), on_rotation);
    let lifetime = issued.key.expires_at.unwrap() - issued.key.created_at;
    assert_eq!(
        successor.key.expires_at,
        Some(clock.now() + lifetime),
        "the successor lives as long as the original did"
    );
}

/// A rotated successor never lives past what the kind's policy allows
/// now: a service restarted with a shorter policy caps it, even for a key
/// that never expired.
pub async fn a_rotated_successor_never_outlives_the_current_expiry_policy(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let lenient = backend
        .builder()
        .kind(mt_kind(
            ExpiryPolicy::from_choices([Lifetime::Years(1), Lifetime::Never], Lifetime::Years(1))
                .unwrap(),
        ))
        .clock(clock.clone())
        .build()
        .unwrap();
    let account = owner("account");
    let operator = Actor::operator("setup");
    let yearly = lenient
        .issue(
            &operator,
            IssueRequest::new("mt", account.clone(), "yearly"),
        )
        .await
        .unwrap();
    let forever = lenient
        .issue(
            &operator,
            IssueRequest::new("mt", account.clone(), "forever").expires(Lifetime::Never),
        )
        .await
        .unwrap();
    assert_eq!(forever.key.expires_at, None);

    // The deployment tightens the policy to one month and restarts.
    let gate = PlanGate::default();
    let strict = backend
        .builder()
        .kind(mt_kind(months(&[1], 1)))
        .issue_hook(gate.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    clock.advance(TimeDelta::days(1));
    let admin =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(account.clone()));
    let month_from_now = clock
        .now()
        .checked_add_months(keyward_core::chrono::Months::new(1));
    for old in [&yearly, &forever] {
        let successor = strict
            .rotate(&admin, &old.key.id, TimeDelta::zero())
            .await
            .unwrap();
        assert_eq!(
            successor.key.expires_at, month_from_now,
            "{}: capped by the policy in force",
            old.key.name
        );
        assert_eq!(
            gate.last().expires_at,
            month_from_now,
            "the hook sees the capped expiry"
        );
        assert_eq!(
            details(&strict, &successor.key.id).await.expires_at,
            month_from_now,
            "stored as returned"
        );
    }
    clock.advance(TimeDelta::days(32));
    for key in keys_of(&strict, &account).await {
        assert_ne!(
            key.status,
            Status::Active,
            "{} outlived the policy",
            key.name
        );
    }
}
