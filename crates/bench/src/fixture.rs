//! Keys, tokens and stores the benchmarks share.
//!
//! Every benchmark key is "typical": a 21-character name, a 16-character
//! owner (50 keys per owner), two scopes, no metadata, no expiry.

use keyward_core::{
    Actor, IssueRequest, Keyward, Owner, PermissionSet, Requirement, TokenKind, cache::CacheConfig,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

/// The prefix of the benchmark tokens (`bk_…`).
pub const KIND: &str = "bk";

/// Keys per owner: the list benchmarks page through one owner's 50 keys.
pub const KEYS_PER_OWNER: usize = 50;

/// Whether `KEYWARD_BENCH_SHORT` asks for the short run.
pub fn short_mode() -> bool {
    std::env::var("KEYWARD_BENCH_SHORT").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The one token kind the benchmarks issue: default lengths (10-character
/// key id, 27-character secret), no expiry, no live-key limit.
pub fn kind() -> TokenKind {
    TokenKind::new(KIND).expect("a valid prefix")
}

/// The scopes every benchmark key holds.
pub fn scopes() -> PermissionSet {
    PermissionSet::parse(["billing.read", "billing.write"]).expect("valid permissions")
}

/// What every benchmark verify asks for: one of the key's two scopes.
pub fn requirement() -> Requirement {
    Requirement::all_of(["billing.read"]).expect("a valid requirement")
}

/// Who issues and lists.
pub fn actor() -> Actor {
    Actor::operator("bench")
}

/// The owner of key number `n`: `account:00000000` (16 characters), 50 keys each.
pub fn owner(n: usize) -> Owner {
    Owner::new(&format!("account:{:08}", n / KEYS_PER_OWNER)).expect("a valid owner")
}

/// The request for key number `n`: a 21-character name, two scopes.
pub fn request(n: usize) -> IssueRequest {
    IssueRequest::new(KIND, owner(n), &format!("CI deploy key {n:07}")).scopes(scopes())
}

/// A cache that holds `keys` keys for the whole run: room to spare per
/// shard (entries spread unevenly over shards), and entries that live a
/// day (the default 5 s would turn a long measurement into store reads).
pub fn cache_config(keys: usize) -> CacheConfig {
    let day = Duration::from_secs(86_400);
    CacheConfig::new()
        .capacity(keys + keys / 4 + 1024)
        .ttl(day)
        .ttl_with_feed(day)
}

/// A service over `store` with the benchmark kind, with or without a cache.
pub fn service(
    store: std::sync::Arc<dyn keyward_core::store::KeyStore>,
    cache: Option<usize>,
) -> Keyward {
    let builder = Keyward::builder_arc(store).kind(kind());
    let builder = match cache {
        Some(keys) => builder.verify_cache(cache_config(keys)),
        None => builder,
    };
    builder.build().expect("a valid configuration")
}

/// Polls a future once, built in place, and evaluates to its output: for
/// futures that complete without awaiting (a cache hit, the memory store),
/// measured without any runtime. Panics if the future is not ready.
///
/// A macro rather than a function: a function would take the future by
/// value and move it (a verify future is over a kilobyte) before polling,
/// a copy an `.await` in the caller's own future does not make.
#[macro_export]
macro_rules! ready {
    ($future:expr $(,)?) => {{
        let mut future = ::std::pin::pin!($future);
        match ::std::future::Future::poll(
            future.as_mut(),
            &mut ::std::task::Context::from_waker(::std::task::Waker::noop()),
        ) {
            ::std::task::Poll::Ready(output) => output,
            ::std::task::Poll::Pending => {
                panic!("the future awaited: it is not served from memory")
            }
        }
    }};
}

/// Issues keys `range` through `keyward`, `tasks` at a time on `runtime`,
/// and returns their tokens in order.
pub fn issue_keys(
    keyward: &Keyward,
    range: Range<usize>,
    tasks: usize,
    runtime: &tokio::runtime::Runtime,
) -> Vec<String> {
    let tasks = tasks.max(1);
    let start = range.start;
    let count = range.len();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let keyward = keyward.clone();
            runtime.spawn(async move {
                let mut tokens = Vec::with_capacity(count / tasks + 1);
                for i in (task..count).step_by(tasks) {
                    let issued = keyward
                        .issue(&actor(), request(start + i))
                        .await
                        .expect("issue");
                    tokens.push(issued.token.expose_secret().to_owned());
                }
                tokens
            })
        })
        .collect();
    let per_task: Vec<Vec<String>> = runtime.block_on(async {
        let mut all = Vec::with_capacity(tasks);
        for handle in handles {
            all.push(handle.await.expect("issuing task"));
        }
        all
    });
    // Interleave back into key order.
    let mut iters: Vec<_> = per_task.into_iter().map(Vec::into_iter).collect();
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        tokens.push(iters[i % tasks].next().expect("one token per key"));
    }
    tokens
}

/// Issues keys `range` into a service whose store answers without awaiting
/// (the memory store), on this thread, without a runtime.
pub fn issue_keys_inline(keyward: &Keyward, range: Range<usize>) -> Vec<String> {
    range
        .map(|n| {
            let actor = actor();
            let issued = crate::ready!(keyward.issue(&actor, request(n))).expect("issue");
            issued.token.expose_secret().to_owned()
        })
        .collect()
}

/// The key id length of [`kind`] (its default), as a constant: the floor
/// reads it on every check, and building the kind there would cost it an
/// allocation that no hand-rolled check makes (the unit test below holds
/// the two equal).
const KEY_ID_LEN: usize = 10;

/// Where a token's key id sits.
pub fn key_id_range() -> Range<usize> {
    let start = KIND.len() + 1;
    start..start + KEY_ID_LEN
}

/// The key id of a benchmark token.
pub fn key_id(token: &str) -> &str {
    &token[key_id_range()]
}

/// The same token with one secret character changed: its checksum no
/// longer matches, so verify rejects it before any lookup.
pub fn garbage(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = key_id_range().end + 5;
    bytes[at] = match bytes[at] {
        b'9' => b'A',
        b'Z' => b'a',
        b'z' => b'0',
        b => b + 1,
    };
    String::from_utf8(bytes).expect("still ASCII")
}

/// A pseudo-random walk over key indices (SplitMix64), identical for every
/// benchmark that starts from the same seed. The two sides of a paired
/// comparison draw from one walk in turn, so both pick keys uniformly at
/// random from the same sequence.
#[derive(Debug, Clone)]
pub struct Walk(u64);

impl Walk {
    /// A walk starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 pseudo-random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next index below `n`.
    #[inline]
    pub fn next_below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A walk of its own, seeded from this one's next step (for a thread).
    pub fn split(&mut self) -> Self {
        Self(self.next_u64())
    }
}

/// The floor: what a hand-rolled table lookup costs. A std `HashMap` from
/// key id to the SHA-256 of the token (default hasher), and per check one
/// lookup and one SHA-256 of the presented token.
#[derive(Debug)]
pub struct Floor {
    map: HashMap<String, [u8; 32]>,
}

impl Floor {
    /// The table for `tokens`.
    pub fn new(tokens: &Tokens) -> Self {
        let map = tokens
            .iter()
            .map(|t| (key_id(t).to_owned(), Sha256::digest(t.as_bytes()).into()))
            .collect();
        Self { map }
    }

    /// Whether `token` is in the table: lookup by key id, then SHA-256 of
    /// the token compared with the stored digest.
    #[inline]
    pub fn check(&self, token: &str) -> bool {
        let Some(id) = token.get(key_id_range()) else {
            return false;
        };
        match self.map.get(id) {
            Some(stored) => Sha256::digest(token.as_bytes()).as_slice() == stored,
            None => false,
        }
    }
}

/// Tokens of one length laid end to end in one allocation: picking one at
/// random costs the same for the floor and for verify, and does not add
/// the allocator's scatter (a token a server verifies was just read from
/// the request, not fetched from a random heap address).
#[derive(Debug, Clone)]
pub struct Tokens {
    text: String,
    len: usize,
}

impl Tokens {
    /// Packs `tokens` (all of one length).
    pub fn new(tokens: &[String]) -> Self {
        let len = tokens.first().map_or(0, String::len);
        assert!(tokens.iter().all(|t| t.len() == len), "one token length");
        Self {
            text: tokens.concat(),
            len,
        }
    }

    /// How many tokens.
    pub fn count(&self) -> usize {
        self.text.len().checked_div(self.len).unwrap_or(0)
    }

    /// Token `i`.
    #[inline]
    pub fn get(&self, i: usize) -> &str {
        &self.text[i * self.len..(i + 1) * self.len]
    }

    /// Every token, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.count()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_length_is_the_kinds() {
        assert_eq!(KEY_ID_LEN, kind().key_id_len());
    }

    #[test]
    fn walks_stay_in_range_and_repeat() {
        let mut a = Walk::new(7);
        let mut b = Walk::new(7);
        for _ in 0..1000 {
            let i = a.next_below(10);
            assert!(i < 10);
            assert_eq!(i, b.next_below(10));
        }
    }

    #[test]
    fn the_floor_knows_its_tokens_and_garbage_differs() {
        let token = format!("{KIND}_{}", "A1b2C3d4E5".repeat(5).get(..43).unwrap());
        let tokens = Tokens::new(std::slice::from_ref(&token));
        assert_eq!(tokens.count(), 1);
        assert_eq!(tokens.get(0), token);
        let floor = Floor::new(&tokens);
        assert!(floor.check(&token));
        let junk = garbage(&token);
        assert_ne!(junk, token);
        assert_eq!(key_id(&junk), key_id(&token));
        assert!(!floor.check(&junk));
    }
}
