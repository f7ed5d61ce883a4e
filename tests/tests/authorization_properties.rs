//! Random sequences of management calls by random actors (operators,
//! sessions, management tokens, API keys and PATs issued earlier) on the
//! memory store keep the authorization invariants after every step. See
//! `keyward_tests::authorization::management_sequences_keep_the_invariants`;
//! `PROPTEST_CASES` sets the number of sequences.

use keyward_core::store::KeyStore;
use keyward_memory::MemoryStore;
use keyward_tests::authorization::management_sequences_keep_the_invariants;
use std::sync::Arc;
use tokio::runtime::Runtime;

#[test]
fn random_management_sequences_keep_the_authorization_invariants() {
    let rt = Runtime::new().unwrap();
    management_sequences_keep_the_invariants(&rt, || {
        Arc::new(MemoryStore::new()) as Arc<dyn KeyStore>
    });
}
