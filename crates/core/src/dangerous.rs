//! What skips keyward's checks. Nothing here is needed to run a service.
//!
//! Calls through these functions are neither authorized nor audited: a
//! write through [`store`] takes effect whoever the caller is, and leaves no
//! audit event unless the caller appends one. They exist for migrations of
//! a host's own data, repair tools and tests. A host that reaches for them
//! in request handling has a bug.

use crate::service::Keyward;
use crate::store::KeyStore;
use std::sync::Arc;

/// The store `keyward` uses, as it holds it: behind the verification cache's
/// invalidating wrapper when the service has a cache, so a write made here
/// still drops the cache entries it affects. Writes skip authorization and
/// audit.
///
/// Tested in keyward-tests: `the_dangerous_store_is_the_service_store`.
pub fn store(keyward: &Keyward) -> &Arc<dyn KeyStore> {
    keyward.raw_store()
}
