//! The property test over random sequences of management calls by random
//! actors ([`management_sequences_keep_the_invariants`]). It is over 500
//! lines because it is one model: the calls and who makes them, their
//! strategies, and the checks of each call's outcome.

use super::keys_of;
use crate::support::{Directory, clock_at, perms};
use keyward_core::chrono::TimeDelta;
use keyward_core::testkit::ManualClock;
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, IssuedKey, KeyDetails, KeyId, Keyward, Lifetime,
    ListRequest, Manages, Owner, PermissionSet, Requirement, Role, RoleName, Session, TokenKind,
    audit::AuditAction, audit::AuditOutcome, audit::AuditQuery, store::KeyStore,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Grants sessions, directories and keys draw from.
const GRANTS: [&str; 7] = ["a", "a.x", "a.y", "b", "b.x", "*", "a.*"];
/// What a management token needs to manage keys.
const MANAGE_GRANTS: [&str; 4] = ["k.create", "k.view", "k.revoke", "k.enable"];
/// Scopes an issue asks for.
const SCOPES: [&str; 11] = [
    "a", "a.x", "a.y", "b", "b.x", "*", "a.*", "k.create", "k.view", "k.revoke", "k.enable",
];
/// How many owners a sequence plays with.
const OWNERS: usize = 3;
/// Role names, in each owner's namespace.
const ROLE_NAMES: [&str; 2] = ["r0", "r1"];
/// API keys, PATs (catalog `a`, `a.*`, `b`), management tokens managing both
/// (catalog `k.*`, `a`, `a.*`, `b`, `b.x`).
const KINDS: [&str; 3] = ["tak", "pat", "mgmt"];
const PAT_CATALOG: [&str; 3] = ["a", "a.*", "b"];
const MGMT_CATALOG: [&str; 5] = ["k.*", "a", "a.*", "b", "b.x"];

/// Who makes a call.
#[derive(Debug, Clone)]
pub enum Who {
    /// An operator.
    Operator,
    /// A user `subject` holding `holds`, administering `admin_of`.
    Session {
        /// The user (an owner index).
        subject: usize,
        /// What the session holds.
        holds: Vec<&'static str>,
        /// Owners the user administers.
        admin_of: Vec<usize>,
    },
    /// A user holding exactly their directory permissions now.
    FullSession {
        /// The user.
        subject: usize,
        /// Owners the user administers.
        admin_of: Vec<usize>,
    },
    /// The n-th token issued so far (modulo), verified just before the call;
    /// the step is skipped if it no longer verifies.
    Token(usize),
}

/// How an issued key gets its permissions.
#[derive(Debug, Clone)]
pub enum Inherit {
    /// Its scopes, directly.
    No,
    /// Its owner's, uncapped (`inherit_owner(None)`).
    Owner,
    /// Its owner's, capped.
    Ceiling(Vec<&'static str>),
}

/// Which key a call names: the n-th issued so far (modulo), among all or
/// among the API keys and PATs of the actor's own owner.
#[derive(Debug, Clone, Copy)]
pub struct Pick {
    /// Only API keys and PATs of the actor's owner (a session's user, a
    /// token's owner): what a management token may manage.
    own: bool,
    /// Which one.
    n: usize,
}

/// One management call. Owner numbers are owners, or (`OWNERS`) the
/// actor's own owner.
#[derive(Debug, Clone)]
pub enum Call {
    /// Issue a key of `KINDS[kind]` for `owner`.
    Issue {
        /// Index into `KINDS`.
        kind: usize,
        /// The owner.
        owner: usize,
        /// Direct scopes.
        scopes: Vec<&'static str>,
        /// Roles (indexes into `ROLE_NAMES`).
        roles: Vec<usize>,
        /// Inheritance.
        inherit: Inherit,
        /// The lifetime asked for.
        expires: Option<Lifetime>,
    },
    /// Rotate a key.
    Rotate {
        /// Which key.
        key: Pick,
        /// The overlap in minutes.
        overlap: i64,
    },
    /// Revoke a key.
    Revoke(Pick),
    /// Disable a key.
    Disable(Pick),
    /// Enable a key.
    Enable(Pick),
    /// Put a role.
    PutRole {
        /// The owner.
        owner: usize,
        /// Index into `ROLE_NAMES`.
        role: usize,
        /// What it grants.
        grants: Vec<&'static str>,
    },
    /// Delete a role.
    DeleteRole {
        /// The owner.
        owner: usize,
        /// Index into `ROLE_NAMES`.
        role: usize,
    },
    /// Read an owner's roles.
    Roles(usize),
    /// Read a key.
    Get(Pick),
    /// List an owner's keys, of one kind or all.
    List {
        /// The owner.
        owner: usize,
        /// Index into `KINDS`.
        kind: Option<usize>,
    },
    /// Read audit events, of one owner or all.
    Audit(Option<usize>),
    /// Keys of every owner expiring within 30 days.
    Expiring,
}

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Step {
    /// A management call by someone.
    Call(Who, Call),
    /// The host's directory changes what an owner holds.
    Directory(usize, Vec<&'static str>),
    /// Time passes (minutes).
    Advance(i64),
}

/// A random sequence: each owner's directory permissions, the roles an
/// operator puts first (per owner, per role name), then the steps.
#[derive(Debug, Clone)]
pub struct Sequence {
    directory: Vec<Vec<&'static str>>,
    roles: Vec<Vec<Option<Vec<&'static str>>>>,
    steps: Vec<Step>,
}

mod strategies {
    use super::{
        Call, GRANTS, Inherit, KINDS, Lifetime, MANAGE_GRANTS, OWNERS, Pick, ROLE_NAMES, SCOPES,
        Sequence, Step, Who,
    };
    use proptest::prelude::*;
    use proptest::sample::subsequence;

    fn grants() -> impl Strategy<Value = Vec<&'static str>> {
        subsequence(GRANTS.to_vec(), 0..=3)
    }

    fn scopes() -> impl Strategy<Value = Vec<&'static str>> {
        subsequence(SCOPES.to_vec(), 0..=3)
    }

    fn owner() -> impl Strategy<Value = usize> {
        0..OWNERS
    }

    fn owners() -> impl Strategy<Value = Vec<usize>> {
        subsequence((0..OWNERS).collect::<Vec<_>>(), 0..=2)
    }

    /// An owner a call names: one of the owners, or (half the time) the
    /// actor's own.
    fn target() -> impl Strategy<Value = usize> {
        prop_oneof![0..OWNERS, Just(OWNERS)]
    }

    fn key() -> impl Strategy<Value = usize> {
        0usize..16
    }

    fn pick() -> impl Strategy<Value = Pick> {
        (any::<bool>(), key()).prop_map(|(own, n)| Pick { own, n })
    }

    fn who() -> impl Strategy<Value = Who> {
        prop_oneof![
            2 => Just(Who::Operator),
            3 => (owner(), grants(), owners())
                .prop_map(|(subject, holds, admin_of)| Who::Session { subject, holds, admin_of }),
            2 => (owner(), owners()).prop_map(|(subject, admin_of)| Who::FullSession { subject, admin_of }),
            4 => key().prop_map(Who::Token),
        ]
    }

    fn inherit() -> impl Strategy<Value = Inherit> {
        prop_oneof![
            3 => Just(Inherit::No),
            1 => Just(Inherit::Owner),
            1 => grants().prop_map(Inherit::Ceiling),
        ]
    }

    fn expires() -> impl Strategy<Value = Option<Lifetime>> {
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(Lifetime::Days(1))),
            1 => Just(Some(Lifetime::Never)),
            1 => Just(Some(Lifetime::Days(7))),
        ]
    }

    fn issue() -> impl Strategy<Value = Call> {
        let roles = prop_oneof![
            2 => Just(Vec::new()),
            1 => subsequence((0..ROLE_NAMES.len()).collect::<Vec<_>>(), 1..=2),
        ];
        (
            0..KINDS.len(),
            target(),
            scopes(),
            roles,
            inherit(),
            expires(),
        )
            .prop_map(
                |(kind, owner, scopes, roles, inherit, expires)| Call::Issue {
                    kind,
                    owner,
                    scopes,
                    roles,
                    inherit,
                    expires,
                },
            )
    }

    /// An operator mints a management token holding some of the management
    /// permissions and some grants.
    fn mint_management_token() -> impl Strategy<Value = Step> {
        (
            owner(),
            subsequence(MANAGE_GRANTS.to_vec(), 2..=4),
            subsequence(vec!["a", "a.x", "b"], 1..=3),
        )
            .prop_map(|(owner, mut scopes, grants)| {
                scopes.extend(grants);
                Step::Call(
                    Who::Operator,
                    Call::Issue {
                        kind: 2,
                        owner,
                        scopes,
                        roles: Vec::new(),
                        inherit: Inherit::No,
                        expires: None,
                    },
                )
            })
    }

    fn call() -> impl Strategy<Value = Call> {
        let role = 0..ROLE_NAMES.len();
        prop_oneof![
            5 => issue(),
            3 => (pick(), 0i64..120).prop_map(|(key, overlap)| Call::Rotate { key, overlap }),
            1 => pick().prop_map(Call::Revoke),
            2 => pick().prop_map(Call::Disable),
            3 => pick().prop_map(Call::Enable),
            3 => (target(), role.clone(), grants())
                .prop_map(|(owner, role, grants)| Call::PutRole { owner, role, grants }),
            2 => (target(), role).prop_map(|(owner, role)| Call::DeleteRole { owner, role }),
            1 => target().prop_map(Call::Roles),
            1 => pick().prop_map(Call::Get),
            1 => (target(), proptest::option::of(0..KINDS.len()))
                .prop_map(|(owner, kind)| Call::List { owner, kind }),
            1 => proptest::option::of(target()).prop_map(Call::Audit),
            1 => Just(Call::Expiring),
        ]
    }

    /// A call a management token may well be allowed: on keys of its own
    /// owner, of a kind it manages, within the grants it is minted with.
    fn token_call() -> impl Strategy<Value = Call> {
        fn own() -> impl Strategy<Value = Pick> {
            key().prop_map(|n| Pick { own: true, n })
        }
        let inherit = prop_oneof![3 => Just(Inherit::No), 1 => Just(Inherit::Owner)];
        prop_oneof![
            3 => (0..2usize, subsequence(vec!["a", "a.x", "b"], 0..=1), inherit)
                .prop_map(|(kind, scopes, inherit)| Call::Issue {
                    kind,
                    owner: OWNERS,
                    scopes,
                    roles: Vec::new(),
                    inherit,
                    expires: None,
                }),
            2 => (own(), 0i64..120).prop_map(|(key, overlap)| Call::Rotate { key, overlap }),
            1 => own().prop_map(Call::Revoke),
            2 => own().prop_map(Call::Disable),
            2 => own().prop_map(Call::Enable),
            1 => own().prop_map(Call::Get),
            1 => (0..2usize).prop_map(|kind| Call::List { owner: OWNERS, kind: Some(kind) }),
        ]
    }

    /// An operator widens a role past a catalog (`*`, or `b.x`, outside the
    /// PATs' catalog).
    fn widen_role() -> impl Strategy<Value = Step> {
        (
            owner(),
            0..ROLE_NAMES.len(),
            grants(),
            prop_oneof![Just("*"), Just("b.x")],
        )
            .prop_map(|(owner, role, mut grants, outside)| {
                grants.push(outside);
                Step::Call(
                    Who::Operator,
                    Call::PutRole {
                        owner,
                        role,
                        grants,
                    },
                )
            })
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            1 => widen_role(),
            12 => (who(), call()).prop_map(|(who, call)| Step::Call(who, call)),
            4 => (key(), token_call()).prop_map(|(n, call)| Step::Call(Who::Token(n), call)),
            3 => mint_management_token(),
            1 => (owner(), grants()).prop_map(|(owner, grants)| Step::Directory(owner, grants)),
            1 => (1i64..3000).prop_map(Step::Advance),
        ]
    }

    /// Sequences of 1..40 steps over three owners.
    pub(super) fn sequences() -> impl Strategy<Value = Sequence> {
        // Roles start within every catalog; edits may widen them later.
        let start = subsequence(vec!["a", "a.x", "a.y", "b", "a.*"], 0..=2);
        let role = prop_oneof![1 => Just(None), 3 => start.prop_map(Some)];
        (
            proptest::collection::vec(grants(), OWNERS),
            proptest::collection::vec(proptest::collection::vec(role, ROLE_NAMES.len()), OWNERS),
            proptest::collection::vec(step(), 1..40),
        )
            .prop_map(|(directory, roles, steps)| Sequence {
                directory,
                roles,
                steps,
            })
    }
}

fn owner_at(n: usize) -> Owner {
    Owner::new(&format!("owner:{n}")).unwrap()
}

fn role_name(n: usize) -> RoleName {
    RoleName::new(ROLE_NAMES[n % ROLE_NAMES.len()]).unwrap()
}

fn kind_grant(name: &str) -> keyward_core::Permission {
    name.parse().unwrap()
}

/// The service the property test drives: API keys with a live-key limit of
/// 4 and a one-day or no expiry, PATs and management tokens with catalogs,
/// management tokens managing both.
fn property_service(
    store: Arc<dyn KeyStore>,
    clock: &ManualClock,
    directory: &Directory,
) -> Keyward {
    let manages = |kind: &str| Manages {
        kind: kind.to_owned(),
        create: kind_grant("k.create"),
        view: kind_grant("k.view"),
        revoke: kind_grant("k.revoke"),
        enable: kind_grant("k.enable"),
    };
    Keyward::builder_arc(store)
        .kind(
            TokenKind::new("tak")
                .unwrap()
                .with_live_limit(4)
                .with_expiry(
                    ExpiryPolicy::from_choices(
                        [Lifetime::Days(1), Lifetime::Never],
                        Lifetime::Never,
                    )
                    .unwrap(),
                ),
        )
        .kind(
            TokenKind::new("pat")
                .unwrap()
                .with_catalog(perms(&PAT_CATALOG))
                .unwrap(),
        )
        .kind(
            TokenKind::new("mgmt")
                .unwrap()
                .with_catalog(perms(&MGMT_CATALOG))
                .unwrap()
                .with_manages(manages("tak"))
                .with_manages(manages("pat")),
        )
        .owner_permissions(directory.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// The actor of a step, and what the model says it holds.
struct Acting {
    actor: Actor,
    /// What it holds; `None` for an operator.
    held: Option<PermissionSet>,
    /// For a session: whom it manages.
    manages: Option<BTreeSet<usize>>,
    /// Its own owner: a session's user, a token's owner (0 for an operator).
    home: usize,
}

impl Acting {
    fn label(&self) -> String {
        self.actor.label()
    }

    fn session_manages(&self, owner: &Owner) -> bool {
        self.manages
            .as_ref()
            .is_some_and(|m| m.iter().any(|n| &owner_at(*n) == owner))
    }

    fn token(&self) -> Option<&keyward_core::VerifiedKey> {
        match &self.actor {
            Actor::Token(v) => Some(v),
            _ => None,
        }
    }
}

/// Everything a refused call must leave alone: every key of every owner
/// (as an operator lists them, permissions resolved), every role, and how
/// many audit events there are.
#[derive(Debug, PartialEq)]
struct Snapshot {
    keys: Vec<String>,
    roles: BTreeMap<(usize, usize), PermissionSet>,
    audit: Vec<keyward_core::audit::AuditEvent>,
}

async fn snapshot(keyward: &Keyward) -> Snapshot {
    let operator = Actor::operator("snapshot");
    let mut keys = Vec::new();
    let mut roles = BTreeMap::new();
    let names: Vec<RoleName> = (0..ROLE_NAMES.len()).map(role_name).collect();
    for n in 0..OWNERS {
        for key in keys_of(keyward, &owner_at(n)).await {
            keys.push(format!("{key:?}"));
        }
        for role in keyward
            .roles(&operator, &owner_at(n), &names)
            .await
            .unwrap()
        {
            let at = ROLE_NAMES
                .iter()
                .position(|r| *r == role.name.as_str())
                .unwrap();
            roles.insert((n, at), role.permissions);
        }
    }
    let audit = keyward
        .audit_events(&operator, AuditQuery::newest(1000))
        .await
        .unwrap();
    Snapshot { keys, roles, audit }
}

/// What a call that went through did.
enum Done {
    /// Issued or rotated: a new token.
    Minted { issued: IssuedKey, rotation: bool },
    /// Revoked, disabled or enabled.
    State {
        key: KeyDetails,
        action: AuditAction,
    },
    /// A role was put (`Some`) or deleted (`None`).
    Role {
        owner: usize,
        role: usize,
        now: Option<PermissionSet>,
    },
    /// A read of `owner`'s data (`None`: across owners), of one kind or all.
    Read {
        owner: Option<Owner>,
        kind: Option<String>,
    },
}

struct World {
    /// Every key issued so far, its owner and its kind.
    keys: Vec<(KeyId, Owner, String)>,
    tokens: Vec<String>,
}

impl World {
    fn key(&self, pick: Pick, home: usize) -> KeyId {
        let home = owner_at(home);
        let candidates: Vec<&KeyId> = self
            .keys
            .iter()
            .filter(|(_, owner, kind)| !pick.own || (*owner == home && kind != "mgmt"))
            .map(|(id, _, _)| id)
            .collect();
        match candidates.get(pick.n % candidates.len().max(1)) {
            Some(id) => (*id).clone(),
            None => KeyId::parse("NoSuchKey0").unwrap(),
        }
    }
}

async fn acting(
    keyward: &Keyward,
    directory: &Directory,
    world: &World,
    who: &Who,
) -> Option<Acting> {
    let session = |subject: usize, holds: PermissionSet, admin_of: &[usize]| {
        let mut session = Session::new(owner_at(subject), holds.clone());
        let mut manages = BTreeSet::from([subject]);
        for n in admin_of {
            session = session.with_admin_of(owner_at(*n));
            manages.insert(*n);
        }
        Acting {
            actor: Actor::Session(session),
            held: Some(holds),
            manages: Some(manages),
            home: subject,
        }
    };
    Some(match who {
        Who::Operator => Acting {
            actor: Actor::operator("property"),
            held: None,
            manages: None,
            home: 0,
        },
        Who::Session {
            subject,
            holds,
            admin_of,
        } => session(*subject, perms(holds), admin_of),
        Who::FullSession { subject, admin_of } => {
            session(*subject, directory.of(&owner_at(*subject)), admin_of)
        }
        Who::Token(n) => {
            let token = world.tokens.get(n % world.tokens.len().max(1))?;
            let verified = keyward.verify(token, &Requirement::nothing()).await.ok()?;
            let home = (0..OWNERS)
                .find(|n| &owner_at(*n) == verified.owner())
                .unwrap_or(0);
            Acting {
                held: Some(verified.permissions().clone()),
                actor: Actor::Token(verified),
                manages: None,
                home,
            }
        }
    })
}

async fn perform(
    keyward: &Keyward,
    acting: &Acting,
    call: &Call,
    world: &World,
) -> Result<Done, Error> {
    let actor = &acting.actor;
    let home = acting.home;
    // An owner number past the owners means the actor's own.
    let owner_of = |n: usize| if n >= OWNERS { home } else { n };
    match call {
        Call::Issue {
            kind,
            owner,
            scopes,
            roles,
            inherit,
            expires,
        } => {
            let mut request = IssueRequest::new(KINDS[*kind], owner_at(owner_of(*owner)), "key")
                .roles(roles.iter().map(|r| role_name(*r)));
            request = match inherit {
                Inherit::No => request.scopes(perms(scopes)),
                Inherit::Owner => request.inherit_owner(None),
                Inherit::Ceiling(ceiling) => request.inherit_owner(Some(perms(ceiling))),
            };
            if let Some(lifetime) = expires {
                request = request.expires(*lifetime);
            }
            let issued = keyward.issue(actor, request).await?;
            Ok(Done::Minted {
                issued,
                rotation: false,
            })
        }
        Call::Rotate { key, overlap } => {
            let issued = keyward
                .rotate(actor, &world.key(*key, home), TimeDelta::minutes(*overlap))
                .await?;
            Ok(Done::Minted {
                issued,
                rotation: true,
            })
        }
        Call::Revoke(n) => Ok(Done::State {
            key: keyward.revoke(actor, &world.key(*n, home)).await?,
            action: AuditAction::Revoke,
        }),
        Call::Disable(n) => Ok(Done::State {
            key: keyward.disable(actor, &world.key(*n, home)).await?,
            action: AuditAction::Disable,
        }),
        Call::Enable(n) => Ok(Done::State {
            key: keyward.enable(actor, &world.key(*n, home)).await?,
            action: AuditAction::Enable,
        }),
        Call::PutRole {
            owner,
            role,
            grants,
        } => {
            keyward
                .put_role(
                    actor,
                    Role::new(owner_at(owner_of(*owner)), role_name(*role), perms(grants)),
                )
                .await?;
            Ok(Done::Role {
                owner: owner_of(*owner),
                role: *role,
                now: Some(perms(grants)),
            })
        }
        Call::DeleteRole { owner, role } => {
            keyward
                .delete_role(actor, &owner_at(owner_of(*owner)), &role_name(*role))
                .await?;
            Ok(Done::Role {
                owner: owner_of(*owner),
                role: *role,
                now: None,
            })
        }
        Call::Roles(owner) => {
            let names: Vec<RoleName> = (0..ROLE_NAMES.len()).map(role_name).collect();
            keyward
                .roles(actor, &owner_at(owner_of(*owner)), &names)
                .await?;
            Ok(Done::Read {
                owner: Some(owner_at(owner_of(*owner))),
                kind: None,
            })
        }
        Call::Get(n) => {
            let key = keyward.get(actor, &world.key(*n, home)).await?;
            Ok(Done::Read {
                owner: Some(key.owner),
                kind: Some(key.kind),
            })
        }
        Call::List { owner, kind } => {
            let mut request = ListRequest::new(owner_at(owner_of(*owner)));
            if let Some(kind) = kind {
                request = request.kind(KINDS[*kind]);
            }
            keyward.list(actor, request).await?;
            Ok(Done::Read {
                owner: Some(owner_at(owner_of(*owner))),
                kind: kind.map(|k| KINDS[k].to_owned()),
            })
        }
        Call::Audit(owner) => {
            let mut query = AuditQuery::newest(50);
            if let Some(owner) = owner {
                query = query.owner(&owner_at(owner_of(*owner)));
            }
            keyward.audit_events(actor, query).await?;
            Ok(Done::Read {
                owner: owner.map(|n| owner_at(owner_of(n))),
                kind: None,
            })
        }
        Call::Expiring => {
            keyward
                .expiring_keys(actor, TimeDelta::days(30), 100)
                .await?;
            Ok(Done::Read {
                owner: None,
                kind: None,
            })
        }
    }
}

use proptest::test_runner::TestCaseError;

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($message)+)));
        }
    };
}

/// A token acting on keys of `kind` for `owner` must be a management token
/// of that owner, of a kind managing `kind`, holding every one of `needs`.
fn token_may(
    keyward: &Keyward,
    token: &keyward_core::VerifiedKey,
    kind: Option<&str>,
    owner: Option<&Owner>,
    needs: &[&str],
) -> bool {
    let Some(token_kind) = keyward.format().kind(token.kind()) else {
        return false;
    };
    let manages = kind.is_some_and(|k| token_kind.manages().iter().any(|m| m.kind == k));
    manages
        && owner == Some(token.owner())
        && needs
            .iter()
            .all(|n| token.permissions().covers(&kind_grant(n)))
}

/// Checks the invariants after one call.
async fn check_call(
    keyward: &Keyward,
    acting: &Acting,
    outcome: Result<Done, Error>,
    before: &Snapshot,
    after: &Snapshot,
    world: &mut World,
) -> Result<(), TestCaseError> {
    let done = match outcome {
        Err(error) => {
            // I3: a refused call changes nothing but appends one refused event.
            ensure!(
                before.keys == after.keys,
                "I3: a refused call ({error}) changed keys:\nbefore {:#?}\nafter {:#?}",
                before.keys,
                after.keys
            );
            ensure!(
                before.roles == after.roles,
                "I3: a refused call ({error}) changed roles: {:?} → {:?}",
                before.roles,
                after.roles
            );
            ensure!(
                after.audit.len() == before.audit.len() + 1,
                "I3: a refused call ({error}) appended {} audit events",
                after.audit.len() as isize - before.audit.len() as isize
            );
            ensure!(
                after.audit.get(1..) == Some(&before.audit[..]),
                "I3: a refused call ({error}) rewrote the audit log"
            );
            let newest = &after.audit[0];
            ensure!(
                matches!(newest.outcome, AuditOutcome::Refused(_))
                    && newest.actor == acting.label(),
                "I3: the event appended for a refused call ({error}) is {newest:?}"
            );
            return Ok(());
        }
        Ok(done) => done,
    };
    if let Some(token) = acting.token() {
        ensure!(
            !keyward
                .format()
                .kind(token.kind())
                .is_some_and(|k| k.manages().is_empty()),
            "an API key or PAT ({}) performed a management call",
            token.kind()
        );
    }
    match done {
        Done::Minted { issued, rotation } => {
            let key = &issued.key;
            // I1: what the new token can do right now.
            let verified = keyward
                .verify(issued.token.expose_secret(), &Requirement::nothing())
                .await;
            let verified = match verified {
                Ok(v) => v,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "a new token does not verify: {e:?}"
                    )));
                }
            };
            let can_do = verified.permissions();
            if let Some(held) = &acting.held {
                ensure!(
                    held.covers_all(can_do),
                    "I1: {} holding [{held}] handed out a {} token that can do [{can_do}] ({})",
                    acting.label(),
                    key.kind,
                    if rotation { "rotation" } else { "issue" }
                );
            }
            if let Some(catalog) = keyward
                .format()
                .kind(&key.kind)
                .and_then(TokenKind::catalog)
            {
                ensure!(
                    catalog.covers_all(can_do),
                    "I1: a {} token can do [{can_do}], outside its catalog [{catalog}]",
                    key.kind
                );
                // What it carries (scopes, or the ceiling, ∪ its roles now)
                // lies within the catalog too, not only what verify resolves.
                let mut carried = key.scopes.clone();
                let home = (0..OWNERS).find(|n| owner_at(*n) == key.owner);
                for (n, name) in ROLE_NAMES.iter().enumerate() {
                    let holds_role = key.roles.iter().any(|r| r.as_str() == *name);
                    if let (true, Some(home)) = (holds_role, home)
                        && let Some(granted) = after.roles.get(&(home, n))
                    {
                        carried.extend(granted);
                    }
                }
                ensure!(
                    catalog.covers_all(&carried),
                    "I1: a {} token carries [{carried}], outside its catalog [{catalog}]",
                    key.kind
                );
            }
            if acting.manages.is_some() {
                ensure!(
                    acting.session_manages(&key.owner),
                    "a session handed out a token for {}, which it does not manage",
                    key.owner
                );
            }
            if let Some(token) = acting.token() {
                let needs: &[&str] = if rotation {
                    &["k.create", "k.revoke"]
                } else {
                    &["k.create"]
                };
                ensure!(
                    token_may(keyward, token, Some(&key.kind), Some(&key.owner), needs),
                    "a {} token of {} handed out a {} token of {}",
                    token.kind(),
                    token.owner(),
                    key.kind,
                    key.owner
                );
            }
            let action = if rotation {
                AuditAction::Rotate
            } else {
                AuditAction::Issue
            };
            ensure_one_success(before, after, action)?;
            world
                .keys
                .push((key.id.clone(), key.owner.clone(), key.kind.clone()));
            world.tokens.push(issued.token.expose_secret().to_owned());
        }
        Done::State { key, action } => {
            // I1 for enable: giving access back is granting it again, so
            // what the key can do again is within what the actor held.
            if let (AuditAction::Enable, Some(held)) = (action, &acting.held) {
                ensure!(
                    held.covers_all(&key.permissions),
                    "I1: {} holding [{held}] enabled a key that can do [{}]",
                    acting.label(),
                    key.permissions
                );
            }
            if acting.manages.is_some() {
                ensure!(
                    acting.session_manages(&key.owner),
                    "a session changed a key of {}, which it does not manage",
                    key.owner
                );
            }
            if let Some(token) = acting.token() {
                let needs: &[&str] = if action == AuditAction::Enable {
                    &["k.enable"]
                } else {
                    &["k.revoke"]
                };
                ensure!(
                    token_may(keyward, token, Some(&key.kind), Some(&key.owner), needs),
                    "a {} token of {} did {action} on a {} key of {}",
                    token.kind(),
                    token.owner(),
                    key.kind,
                    key.owner
                );
            }
            ensure_one_success(before, after, action)?;
        }
        Done::Role { owner, role, now } => {
            // I2: the actor held the old and the new permissions and
            // manages the role's owner.
            let old = before.roles.get(&(owner, role));
            ensure!(acting.token().is_none(), "I2: a token edited a role");
            if let Some(held) = &acting.held {
                ensure!(
                    acting.session_manages(&owner_at(owner)),
                    "I2: a session edited a role of {}, which it does not manage",
                    owner_at(owner)
                );
                if let Some(old) = old {
                    ensure!(
                        held.covers_all(old),
                        "I2: {} holding [{held}] replaced or deleted a role granting [{old}]",
                        acting.label()
                    );
                }
                if let Some(new) = &now {
                    ensure!(
                        held.covers_all(new),
                        "I2: {} holding [{held}] put a role granting [{new}]",
                        acting.label()
                    );
                }
            }
            let mut expected = before.roles.clone();
            match &now {
                Some(granted) => expected.insert((owner, role), granted.clone()),
                None => expected.remove(&(owner, role)),
            };
            ensure!(
                after.roles == expected,
                "the roles after the edit are {:?}, expected {expected:?}",
                after.roles
            );
            let action = if now.is_some() {
                AuditAction::PutRole
            } else {
                AuditAction::DeleteRole
            };
            ensure_one_success(before, after, action)?;
        }
        Done::Read { owner, kind } => {
            match (&acting.held, acting.token()) {
                (None, _) => {}
                (Some(_), Some(token)) => ensure!(
                    token_may(keyward, token, kind.as_deref(), owner.as_ref(), &["k.view"]),
                    "a {} token of {} read {kind:?} keys of {owner:?}",
                    token.kind(),
                    token.owner()
                ),
                (Some(_), None) => ensure!(
                    owner.as_ref().is_some_and(|o| acting.session_manages(o)),
                    "a session read data of {owner:?}, which it does not manage"
                ),
            }
            ensure!(before == after, "a read changed the store");
        }
    }
    Ok(())
}

/// A write that went through appended exactly one succeeded `action` event.
fn ensure_one_success(
    before: &Snapshot,
    after: &Snapshot,
    action: AuditAction,
) -> Result<(), TestCaseError> {
    ensure!(
        after.audit.len() == before.audit.len() + 1,
        "a {action} appended {} audit events",
        after.audit.len() as isize - before.audit.len() as isize
    );
    let newest = &after.audit[0];
    ensure!(
        newest.action == action && newest.outcome == AuditOutcome::Succeeded,
        "the event of a {action} is {newest:?}"
    );
    Ok(())
}

/// Plays one sequence on a fresh service over `store`, checking the
/// invariants after every call.
async fn play(store: Arc<dyn KeyStore>, sequence: &Sequence) -> Result<(), TestCaseError> {
    let clock = clock_at(2026, 8, 3, 12);
    let directory = Directory::default();
    for (n, grants) in sequence.directory.iter().enumerate() {
        directory.set(&owner_at(n), grants);
    }
    let keyward = property_service(store, &clock, &directory);
    for (n, roles) in sequence.roles.iter().enumerate() {
        for (at, granted) in roles.iter().enumerate() {
            if let Some(granted) = granted {
                let role = Role::new(owner_at(n), role_name(at), perms(granted));
                keyward
                    .put_role(&Actor::operator("setup"), role)
                    .await
                    .unwrap();
            }
        }
    }
    let mut world = World {
        keys: Vec::new(),
        tokens: Vec::new(),
    };
    for (at, step) in sequence.steps.iter().enumerate() {
        match step {
            Step::Directory(n, grants) => directory.set(&owner_at(*n), grants),
            Step::Advance(minutes) => clock.advance(TimeDelta::minutes(*minutes)),
            Step::Call(who, call) => {
                let Some(acting) = acting(&keyward, &directory, &world, who).await else {
                    continue;
                };
                let before = snapshot(&keyward).await;
                let outcome = perform(&keyward, &acting, call, &world).await;
                let after = snapshot(&keyward).await;
                check_call(&keyward, &acting, outcome, &before, &after, &mut world)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("step {at} ({step:?}): {e}")))?;
            }
        }
        within_catalogs(&keyward, &world)
            .await
            .map_err(|e| TestCaseError::fail(format!("after step {at} ({step:?}): {e}")))?;
    }
    Ok(())
}

/// Whatever happened since (roles edited, owners' permissions changed),
/// every token that verifies can do only what its kind's catalog offers.
async fn within_catalogs(keyward: &Keyward, world: &World) -> Result<(), TestCaseError> {
    for token in &world.tokens {
        let Ok(verified) = keyward.verify(token, &Requirement::nothing()).await else {
            continue;
        };
        if let Some(catalog) = keyward
            .format()
            .kind(verified.kind())
            .and_then(TokenKind::catalog)
        {
            ensure!(
                catalog.covers_all(verified.permissions()),
                "I1: a {} token can do [{}], outside its catalog [{catalog}]",
                verified.kind(),
                verified.permissions()
            );
        }
    }
    Ok(())
}

/// Random sequences of management calls by random actors keep the
/// invariants: what a new token can do is covered by what its issuer held
/// and by its kind's catalog (I1); a role edit's actor held the role's old
/// and new permissions and manages its owner (I2); a refused call changes
/// nothing and appends exactly one refused audit event (I3); API keys and
/// PATs never manage anything; a write appends one succeeded event and a
/// read none.
///
/// `PROPTEST_CASES` sets the number of sequences (default 1024, a few
/// seconds in a debug build); each runs
/// on a fresh store from `store`. A failure shrinks to a short sequence.
pub fn management_sequences_keep_the_invariants(
    rt: &tokio::runtime::Runtime,
    store: impl Fn() -> Arc<dyn KeyStore>,
) {
    use proptest::test_runner::{Config, TestRunner};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategies::sequences(), |sequence| {
        rt.block_on(play(store(), &sequence))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
