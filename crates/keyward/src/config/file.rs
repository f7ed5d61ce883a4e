//! The configuration file as written: every table refuses unknown fields,
//! and every value checked after parsing keeps its place in the file.

use keyward_core::Lifetime;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub(super) kinds: BTreeMap<String, Spanned<KindFile>>,
    pub(super) store: Option<Spanned<StoreFile>>,
    pub(super) hashing: Option<HashingFile>,
}

/// `[kinds.<prefix>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KindFile {
    pub(super) key_id_len: Option<Spanned<usize>>,
    pub(super) secret_len: Option<Spanned<usize>>,
    pub(super) live_limit: Option<u32>,
    pub(super) expiry: Option<Spanned<ExpiryFile>>,
    pub(super) catalog: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) manages: Vec<Spanned<ManagesFile>>,
}

/// `[kinds.<prefix>.expiry]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpiryFile {
    pub(super) choices: Spanned<Vec<Spanned<Lifetime>>>,
    pub(super) default: Option<Spanned<Lifetime>>,
    pub(super) max_until_days: Option<Spanned<u32>>,
}

/// `[[kinds.<prefix>.manages]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManagesFile {
    pub(super) kind: Spanned<String>,
    pub(super) create: Spanned<String>,
    pub(super) view: Spanned<String>,
    pub(super) revoke: Spanned<String>,
    pub(super) enable: Spanned<String>,
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreFile {
    pub(super) url: Option<Spanned<String>>,
    pub(super) url_env: Option<Spanned<String>>,
    pub(super) table_prefix: Option<Spanned<String>>,
    pub(super) connect_timeout_secs: Option<Spanned<u64>>,
}

/// `[hashing]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HashingFile {
    pub(super) pepper_env: Option<Spanned<String>>,
}
