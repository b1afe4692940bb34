//! What every post looks up, kept in memory: its mirror's record, the meter's designated
//! registers, the owners of the MirrorMeterReading mRIDs it posts and its registers' ids.
//!
//! They change rarely (a new mirror, a new register), but each post read them from the
//! B-tree tables inside the writer's transaction, and decoded its mirror's JSON record:
//! about 79 µs of the writer's time per post at 10,000 readings/s, most of it redb's page
//! reads and key comparisons (docs/benchmarks.md). The writer thread, on which every post
//! waits, now finds them in memory after the first time.
//!
//! The cache holds committed values only. A transaction's own changes go to its
//! [`CacheOverlay`] (read first), which is merged into the cache once the transaction has
//! committed and dropped with it otherwise; a value read from a table is cached only when
//! the transaction has not changed it, so it is the committed one (a write transaction holds
//! redb's write lock: nothing else commits meanwhile). Only values that exist are cached, so
//! the cache holds no more than the tables (a GET of an unknown mirror adds nothing).
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use anyhow::Result;

use super::MirrorRecord;

/// Committed values, by table.
#[derive(Default, Debug)]
pub(super) struct Cache {
    pub mirrors: HashMap<u64, Arc<MirrorRecord>>,
    pub mmr_owners: HashMap<String, String>,
    pub designated: HashMap<String, String>,
    pub register_ids: HashMap<String, u32>,
}

/// One transaction's changes to the cached tables (`None`: deleted).
#[derive(Default, Debug, Clone, PartialEq)]
pub(super) struct CacheOverlay {
    pub mirrors: HashMap<u64, Option<Arc<MirrorRecord>>>,
    pub mmr_owners: HashMap<String, Option<String>>,
    pub designated: HashMap<String, Option<String>>,
    pub register_ids: HashMap<String, u32>,
}

impl Cache {
    /// After the transaction that made `changes` committed.
    pub fn merge(&mut self, changes: CacheOverlay) {
        fn apply<K: Hash + Eq, V>(into: &mut HashMap<K, V>, from: HashMap<K, Option<V>>) {
            for (k, v) in from {
                match v {
                    Some(v) => into.insert(k, v),
                    None => into.remove(&k),
                };
            }
        }
        apply(&mut self.mirrors, changes.mirrors);
        apply(&mut self.mmr_owners, changes.mmr_owners);
        apply(&mut self.designated, changes.designated);
        self.register_ids.extend(changes.register_ids);
    }
}

/// A value as the transaction sees it: its own change, else the committed value from the
/// cache, else from the table (`load`), which is then cached if it exists.
pub(super) fn layered<K, Q, V>(
    changed: Option<Option<V>>,
    cache: &std::sync::Mutex<Cache>,
    pick: impl Fn(&mut Cache) -> &mut HashMap<K, V>,
    key: &Q,
    load: impl FnOnce() -> Result<Option<V>>,
) -> Result<Option<V>>
where
    K: Borrow<Q> + Hash + Eq,
    Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    V: Clone,
{
    if let Some(v) = changed {
        return Ok(v);
    }
    if let Some(v) = pick(&mut lock(cache)).get(key) {
        return Ok(Some(v.clone()));
    }
    let loaded = load()?;
    if let Some(v) = &loaded {
        pick(&mut lock(cache)).insert(key.to_owned(), v.clone());
    }
    Ok(loaded)
}

/// The cache, even after a panic while it was held (it is only ever changed by `merge` and
/// `layered`'s single inserts, which leave it consistent).
pub(super) fn lock(cache: &std::sync::Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    match cache.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    }
}
