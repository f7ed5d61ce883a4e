//! Key records for tests that talk to a store without the service, built
//! with the testkit's one record builder.

use keyward_core::chrono::{DateTime, Utc};
use keyward_core::testkit::records::{key_record, random_base62};
use keyward_core::{KeyId, Owner, store::KeyRecord, store::Metadata};

/// An owner no other test uses: `<label>:<random>`.
pub(crate) fn unique_owner(label: &str) -> Owner {
    Owner::new(&format!("{label}:{}", random_base62(12))).unwrap()
}

/// An active `mt` key called `name` with a random id, no expiry and no grants.
pub(crate) fn key(
    owner: &Owner,
    name: &str,
    metadata: Metadata,
    created_at: DateTime<Utc>,
) -> KeyRecord {
    let id = KeyId::parse(&random_base62(20)).unwrap();
    KeyRecord {
        name: name.to_owned(),
        metadata,
        ..key_record(id, "mt", owner, created_at)
    }
}
