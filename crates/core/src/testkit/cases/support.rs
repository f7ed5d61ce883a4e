//! Helpers shared by the conformance cases of several clauses (the audit
//! events of rotations and role edits, an owner's audit trail); the
//! per-key fixtures are in `testkit/fixtures.rs`.

use crate::audit::{AuditAction, AuditEvent, AuditQuery};
use crate::key::{KeyRecord, Role};
use crate::store::KeyStore;
use crate::testkit::fixtures::{ACTOR, at, key_event};

pub(super) fn rotate_event(old: &KeyRecord, new: &KeyRecord) -> AuditEvent {
    key_event(old, AuditAction::Rotate, new.created_at).with_detail(format!("successor {}", new.id))
}

pub(super) async fn owner_audit(store: &dyn KeyStore, owner: &crate::Owner) -> Vec<AuditEvent> {
    store
        .list_audit(&AuditQuery::newest(100).owner(owner))
        .await
        .expect("list_audit")
}

pub(super) fn role_event(action: AuditAction, role: &Role, secs: i64) -> AuditEvent {
    AuditEvent::new(at(secs), ACTOR, action)
        .with_role(&role.name)
        .with_owner(&role.owner)
}
