//! keyward against the peers a user would otherwise pick, paired as every
//! other figure (docs/performance.md, "Peers"):
//!
//! - `peer_prefixed/cached/{10k,100k}` and `peer_prefixed/memory/{10k,100k}`:
//!   a cache hit, and the memory store without a cache, against
//!   prefixed-api-key's parse + `HashMap` lookup + digest check, in process.

use super::{Bench, Comparisons, MemoryFixtures, batch, paired, verify_side};
use keyward_bench::fixture::Walk;
use keyward_bench::paired::Plan;
use keyward_bench::peers::PrefixedTable;
use std::cell::OnceCell;
use std::time::Duration;

/// The key counts of the peer comparisons.
const PEER_KEYS: [(usize, &str); 2] = [(10_000, "10k"), (100_000, "100k")];

/// prefixed-api-key's tables (10k and 100k keys), each built on first use.
#[derive(Default)]
pub(super) struct PrefixedTables([OnceCell<PrefixedTable>; 2]);

impl PrefixedTables {
    fn get(&self, keys: usize, bench: &mut Bench) -> &PrefixedTable {
        let (cell, name) = match keys {
            10_000 => (&self.0[0], "prefixed_api_key_10k"),
            100_000 => (&self.0[1], "prefixed_api_key_100k"),
            _ => panic!("no prefixed-api-key table of {keys} keys"),
        };
        if cell.get().is_none() {
            let table = bench.timed(name, || PrefixedTable::new(keys));
            drop(cell.set(table));
        }
        cell.get().expect("built above")
    }
}

/// The peer's side: prefixed-api-key's verify of random tokens.
fn prefixed_side(table: &PrefixedTable) -> impl FnMut(&mut Walk, u64) -> Duration + '_ {
    let tokens = table.tokens();
    let n = tokens.count();
    move |walk, ops| {
        batch(ops, "prefixed-api-key", || {
            table.check(tokens.get(walk.next_below(n)))
        })
    }
}

/// A cache hit, and the memory store without a cache, against
/// prefixed-api-key at 10k and 100k keys.
pub(super) fn prefixed<'a>(
    bench: &mut Bench,
    fixtures: &'a MemoryFixtures,
    tables: &'a PrefixedTables,
    out: &mut Comparisons<'a>,
) {
    let plan = Plan::memory(bench.short);
    for (keys, label) in PEER_KEYS {
        let reference = format!("prefixed_api_key/{label}");
        let cached = format!("peer_prefixed/cached/{label}");
        let memory = format!("peer_prefixed/memory/{label}");
        if bench.wants(&[&reference, &cached]) {
            let fx = fixtures.get(keys, bench);
            let table = tables.get(keys, bench);
            out.push(paired(
                &cached,
                Some(keys),
                &reference,
                plan,
                prefixed_side(table),
                verify_side(&fx.cached, &fx.tokens, "verify_cached"),
            ));
        }
        if bench.wants(&[&reference, &memory]) {
            let fx = fixtures.get(keys, bench);
            let table = tables.get(keys, bench);
            out.push(paired(
                &memory,
                Some(keys),
                &reference,
                plan,
                prefixed_side(table),
                verify_side(&fx.uncached, &fx.tokens, "verify_memory"),
            ));
        }
    }
}
