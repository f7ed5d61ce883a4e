#![doc = include_str!("../README.md")]

mod actor;
mod audit;
mod authorization;
mod cache;
mod clock;
pub mod dangerous;
mod error;
mod format;
mod invalidating;
mod key;
mod kind;
mod lifecycle;
mod permission;
mod policy;
mod secret;
mod service;
mod sql;
mod store;
mod usage;
mod verify;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use actor::{Actor, OperatorName, Session};
pub use audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery};
pub use cache::{CacheConfig, CacheStatus, Change, ChangeFeed, FeedSink};
pub use clock::{Clock, SystemClock};
pub use error::Error;
pub use format::{FoundToken, MAX_TOKEN_LEN, ParseError, ParsedToken, TokenFormat};
pub use key::{
    KeyId, KeyRecord, KeyState, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN, MAX_METADATA_VALUE_LEN,
    MAX_NAME_LEN, MAX_OWNER_LEN, Metadata, Owner, Role, RoleName, Status, UsageRecord, time_ago,
};
pub use kind::{
    CHECKSUM_LEN, DEFAULT_KEY_ID_LEN, DEFAULT_SECRET_LEN, MAX_KEY_ID_LEN, MAX_SECRET_LEN,
    MIN_KEY_ID_LEN, MIN_SECRET_LEN, Manages, TokenKind,
};
pub use lifecycle::Transition;
pub use permission::{
    MAX_GRANTS, MAX_PERMISSION_LEN, MAX_REQUIREMENT_DEPTH, MAX_REQUIREMENT_KINDS,
    MAX_REQUIREMENT_PERMISSIONS, Permission, PermissionSet, Requirement,
};
pub use policy::{Decision, ExpiryPolicy, IssueContext, IssueHook, Lifetime};
pub use secret::{HashAlgorithm, OsRandom, PlaintextToken, SecretSource, TokenDigest, TokenHasher};
pub use service::{
    IssueRequest, IssuedKey, KeyDetails, Keyward, KeywardBuilder, ListRequest, MAX_ROLES_PER_KEY,
    OwnerPermissions, UsageFlusher,
};
pub use sql::{TablePrefix, status_condition};
pub use store::{Cursor, KeyStore, ListQuery, MAX_PAGE_SIZE, Page, fold_name, name_contains};
pub use verify::{BearerError, PublicAnswer, Rejection, VerifiedKey, bearer_token};

/// Re-exported so adapters and hosts use the same versions.
pub use async_trait::async_trait;
pub use chrono;
