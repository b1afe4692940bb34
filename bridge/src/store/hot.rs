//! Every meter's latest register values and pairs, kept in memory by the store.
//!
//! They change with every reading, and they are keyed by meter: written to their B-tree
//! tables at every commit, a batch of posts from 10,000 meters dirtied nearly every page of
//! both tables (about 1,300 pages, 5 MiB, per commit; docs/benchmarks.md). Now a commit
//! appends what it changed, in a compact binary record, to the `journal` table (one entry
//! per commit: the right edge of one tree). Checkpoints write the changed entries to the
//! `latest` and `pairs` tables a slice of the keys at a time (one slice every
//! `slice_bytes` of journal), so that no commit carries a whole checkpoint; once every slice
//! has been written after a journal entry, the entry is deleted. At start the journal is
//! replayed, in order, into the tables, which are then loaded. The journal is written in
//! the same transaction as the readings it summarises, so what is on disk after a crash is
//! always the tables plus the journal, whatever the moment.
//!
//! Replaying in order is right even over a slice written after some of the entries: a
//! key's last journalled change is its value at any later slice write.
use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable};

use super::cache::CacheOverlay;
use super::tables::{from_json, to_json, JOURNAL, LATEST, PAIRS};
use super::Pair;
use crate::normalize::{Flow, RegisterReading};

/// When a slice of the checkpoint is written: after `slice_bytes` of journal or
/// `slice_entries` entries since the last one, whichever comes first. The journal then holds
/// about `slices` times that: it bounds the replay at start and the file space it holds.
#[derive(Clone, Copy, Debug)]
pub(super) struct CheckpointPolicy {
    pub slices: usize,
    pub slice_bytes: usize,
    pub slice_entries: u64,
    /// redb made durable and the store's log emptied after this much log, or this long
    /// (store/wal.rs).
    pub log_bytes: u64,
    pub log_interval: std::time::Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            slices: 16,
            slice_bytes: 512 << 10,
            slice_entries: 64,
            log_bytes: super::wal::CHECKPOINT_BYTES,
            log_interval: super::wal::CHECKPOINT_INTERVAL,
        }
    }
}

/// What one transaction changed: "LFDI/import"|"LFDI/export" -> reading, LFDI -> pair.
/// The last change of a key wins. Beside them, its changes to the cached tables
/// (store/cache.rs), which are not journalled (they are in their tables).
#[derive(Default, Debug, Clone, PartialEq)]
pub(super) struct Overlay {
    pub latest: HashMap<String, RegisterReading>,
    pub pairs: HashMap<String, Pair>,
    pub cache: CacheOverlay,
    /// Every change the transaction made to the tables, for the store's log: `Some` in a
    /// batched transaction (store/wal.rs), `None` in an immediate one.
    pub log: Option<super::wal::Changes>,
}

impl Overlay {
    /// No change to the latest registers and pairs: nothing to journal.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.pairs.is_empty()
    }

    /// Later changes over earlier ones.
    pub fn absorb(&mut self, later: Overlay) {
        self.latest.extend(later.latest);
        self.pairs.extend(later.pairs);
    }
}

/// The keys of one checkpoint slice changed since it was last written.
#[derive(Default)]
pub(super) struct Slice {
    pub latest: HashSet<String>,
    pub pairs: HashSet<String>,
    /// Journal entries before this sequence are in the tables for this slice's keys.
    pub captured_before: u64,
}

/// The committed state and the journal's bookkeeping.
pub(super) struct Hot {
    pub latest: HashMap<String, RegisterReading>,
    pub pairs: HashMap<String, Pair>,
    pub slices: Vec<Slice>,
    /// The slice written next.
    pub next_slice: usize,
    /// Journal entries held: sequences `first..next`.
    pub journal_first: u64,
    pub journal_next: u64,
    /// Journal written since the last slice.
    pub bytes_since_slice: usize,
    pub entries_since_slice: u64,
    /// Slices written since start (read by the tests).
    pub slices_written: u64,
    /// Changes of batched commits not journalled yet: they are in the store's log
    /// (store/wal.rs), and the next durable commit (a checkpoint or an immediate write)
    /// journals them, so that redb's journal is written once per checkpoint rather than at
    /// every batch.
    pub pending: Overlay,
}

/// A planned slice write: which slice, and the journal entries it lets go (`..delete_before`).
#[derive(Clone, Copy, Debug)]
pub(super) struct SliceWrite {
    pub slice: usize,
    pub delete_before: u64,
}

/// The checkpoint slice of a key: by its first two hex digits (an LFDI's, uniformly
/// spread), so that a slice is a contiguous range of the tables' keys and writing it
/// rewrites about 1/`slices` of their pages (a slice by hash would touch nearly all).
pub(super) fn slice_of(key: &str, slices: usize) -> usize {
    let nibble = |b: Option<&u8>| match b {
        Some(b) => (*b as char).to_digit(16).unwrap_or(u32::from(*b) % 16) as usize,
        None => 0,
    };
    let bytes = key.as_bytes();
    let lead = nibble(bytes.first()) * 16 + nibble(bytes.get(1));
    lead * slices.max(1) / 256
}

impl Hot {
    pub fn new(
        latest: HashMap<String, RegisterReading>,
        pairs: HashMap<String, Pair>,
        journal_next: u64,
        policy: &CheckpointPolicy,
    ) -> Hot {
        let slices = (0..policy.slices.max(1))
            .map(|_| Slice {
                captured_before: journal_next,
                ..Slice::default()
            })
            .collect();
        Hot {
            latest,
            pairs,
            slices,
            next_slice: 0,
            journal_first: journal_next,
            journal_next,
            bytes_since_slice: 0,
            entries_since_slice: 0,
            slices_written: 0,
            pending: Overlay::default(),
        }
    }

    /// Whether the commit that journals an entry of `bytes` (sequence `journal_next`) also
    /// writes a slice, and which.
    pub fn slice_due(&self, policy: &CheckpointPolicy, bytes: usize) -> Option<SliceWrite> {
        let due = self.bytes_since_slice.saturating_add(bytes) >= policy.slice_bytes
            || self.entries_since_slice + 1 >= policy.slice_entries;
        if !due {
            return None;
        }
        let slice = self.next_slice;
        let delete_before = self
            .slices
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == slice {
                    self.journal_next + 1
                } else {
                    s.captured_before
                }
            })
            .min()
            .unwrap_or(self.journal_next + 1);
        Some(SliceWrite {
            slice,
            delete_before,
        })
    }

    /// After a batched commit that changed `overlay` (logged, not journalled).
    /// Its keys join their slices' changed sets now rather than when the next durable
    /// commit journals them: that commit journals everything pending (so a slice it writes
    /// holds each key's journalled value), and the work is spread over the batches instead
    /// of holding up the writer at the checkpoint.
    pub fn batched(&mut self, overlay: Overlay) {
        self.track(&overlay);
        self.latest
            .extend(overlay.latest.iter().map(|(k, v)| (k.clone(), *v)));
        self.pairs
            .extend(overlay.pairs.iter().map(|(k, v)| (k.clone(), *v)));
        self.pending.absorb(overlay);
    }

    /// Notes the keys `overlay` changes in their slices' changed sets.
    fn track(&mut self, overlay: &Overlay) {
        let count = self.slices.len();
        for key in overlay.latest.keys() {
            let slice = &mut self.slices[slice_of(key, count)].latest;
            if !slice.contains(key) {
                slice.insert(key.clone());
            }
        }
        for key in overlay.pairs.keys() {
            let slice = &mut self.slices[slice_of(key, count)].pairs;
            if !slice.contains(key) {
                slice.insert(key.clone());
            }
        }
    }

    /// After the durable commit that journalled the pending changes with its own (`own`),
    /// `bytes` of journal, and wrote `written`, if any. The pending changes are in memory
    /// and tracked already (`batched`).
    pub fn committed(&mut self, own: Overlay, bytes: usize, written: Option<SliceWrite>) {
        self.track(&own);
        let count = self.slices.len();
        let entry = self.journal_next;
        self.journal_next += 1;
        match written {
            Some(w) => {
                let slice = &mut self.slices[w.slice];
                slice.latest.clear();
                slice.pairs.clear();
                slice.captured_before = entry + 1;
                self.journal_first = w.delete_before;
                self.next_slice = (w.slice + 1) % count;
                self.bytes_since_slice = 0;
                self.entries_since_slice = 0;
                self.slices_written += 1;
            }
            None => {
                self.bytes_since_slice += bytes;
                self.entries_since_slice += 1;
            }
        }
        self.latest.extend(own.latest);
        self.pairs.extend(own.pairs);
    }
}

/// Writes the journal's changes (a store closed or crashed since its last checkpoint) into
/// the LATEST and PAIRS tables and empties it; returns the sequence the next entry takes.
pub(super) fn fold_journal(txn: &redb::WriteTransaction) -> Result<u64> {
    let mut journal = txn.open_table(JOURNAL)?;
    let mut changes = Overlay::default();
    let mut entries = Vec::new();
    for entry in journal.iter()? {
        let (sequence, bytes) = entry?;
        let overlay =
            decode(bytes.value()).with_context(|| format!("journal entry {}", sequence.value()))?;
        changes.absorb(overlay);
        entries.push(sequence.value());
    }
    let next = entries.last().map_or(0, |last| last + 1);
    if entries.is_empty() {
        return Ok(next);
    }
    write_tables(txn, &changes)?;
    for sequence in &entries {
        journal.remove(sequence)?;
    }
    tracing::info!(
        entries = entries.len(),
        registers = changes.latest.len(),
        "store: journal folded into the latest registers"
    );
    Ok(next)
}

/// Writes `changes` into the LATEST and PAIRS tables.
pub(super) fn write_tables(txn: &redb::WriteTransaction, changes: &Overlay) -> Result<()> {
    let mut latest = txn.open_table(LATEST)?;
    for (key, r) in &changes.latest {
        latest.insert(key.as_str(), to_json(r).as_slice())?;
    }
    let mut pairs = txn.open_table(PAIRS)?;
    for (key, p) in &changes.pairs {
        pairs.insert(key.as_str(), to_json(p).as_slice())?;
    }
    Ok(())
}

/// Loads the latest registers and pairs (after [`fold_journal`]).
pub(super) fn load_hot(db: &Database, journal_next: u64, policy: &CheckpointPolicy) -> Result<Hot> {
    let txn = db.begin_read()?;
    let mut latest = HashMap::new();
    for entry in txn.open_table(LATEST)?.iter()? {
        let (key, value) = entry?;
        latest.insert(key.value().to_string(), from_json(value.value())?);
    }
    let mut pairs = HashMap::new();
    for entry in txn.open_table(PAIRS)?.iter()? {
        let (key, value) = entry?;
        pairs.insert(key.value().to_string(), from_json(value.value())?);
    }
    Ok(Hot::new(latest, pairs, journal_next, policy))
}

/// Appends `overlay` to the journal in `txn` and, when one is due, writes the next
/// checkpoint slice and lets go of the journal entries every slice has captured. Returns
/// the entry's size and the slice written, for [`Hot::committed`] once `txn` has committed.
/// Only durable commits journal (batched ones log their changes instead, store/wal.rs).
pub(super) fn journal(
    txn: &redb::WriteTransaction,
    hot: &Hot,
    overlay: &Overlay,
    policy: &CheckpointPolicy,
) -> Result<(usize, Option<SliceWrite>)> {
    let entry = encode(overlay);
    txn.open_table(JOURNAL)?
        .insert(hot.journal_next, entry.as_slice())?;
    let written = hot.slice_due(policy, entry.len());
    if let Some(w) = written {
        let count = hot.slices.len();
        let slice = &hot.slices[w.slice];
        write_slice(
            txn,
            LATEST,
            (w.slice, count),
            &slice.latest,
            &overlay.latest,
            &hot.latest,
        )?;
        write_slice(
            txn,
            PAIRS,
            (w.slice, count),
            &slice.pairs,
            &overlay.pairs,
            &hot.pairs,
        )?;
        let mut journal = txn.open_table(JOURNAL)?;
        for sequence in hot.journal_first..w.delete_before {
            journal.remove(sequence)?;
        }
    }
    Ok((entry.len(), written))
}

/// Writes checkpoint slice `slice` (of `count`) of one table: the keys of the slice changed
/// since it was last written (`changed`) and those this commit changes in it (`ours`),
/// each with its newest value (this commit's, else the committed one).
fn write_slice<V: serde::Serialize>(
    txn: &redb::WriteTransaction,
    definition: redb::TableDefinition<&'static str, &'static [u8]>,
    (slice, count): (usize, usize),
    changed: &HashSet<String>,
    ours: &HashMap<String, V>,
    committed: &HashMap<String, V>,
) -> Result<()> {
    let mut table = txn.open_table(definition)?;
    let ours_in_slice = ours.keys().filter(|k| slice_of(k, count) == slice);
    for key in changed
        .iter()
        .filter(|k| !ours.contains_key(*k))
        .chain(ours_in_slice)
    {
        if let Some(value) = ours.get(key).or_else(|| committed.get(key)) {
            table.insert(key.as_str(), to_json(value).as_slice())?;
        }
    }
    Ok(())
}

/// Journal entry format version (the first byte).
const VERSION: u8 = 1;

fn put_key(out: &mut Vec<u8>, key: &str) {
    // Keys are an LFDI (40 hex digits) and a suffix: far below u16::MAX.
    let len = u16::try_from(key.len()).expect("store keys are short");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
}

/// `[version u8][n u32]{[key][flow u8][timestamp u32][start u32][wh u64][quality u8]}
/// [m u32]{[key][timestamp u32][import u64][export u64][quality u8]}`, little-endian;
/// a key is `[len u16][UTF-8]`.
pub(super) fn encode(overlay: &Overlay) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + overlay.latest.len() * 68 + overlay.pairs.len() * 63);
    out.push(VERSION);
    out.extend_from_slice(&(overlay.latest.len() as u32).to_le_bytes());
    for (key, r) in &overlay.latest {
        put_key(&mut out, key);
        out.push(match r.flow {
            Flow::Import => 0,
            Flow::Export => 1,
        });
        out.extend_from_slice(&r.timestamp.to_le_bytes());
        out.extend_from_slice(&r.start.to_le_bytes());
        out.extend_from_slice(&r.wh.to_le_bytes());
        out.push(r.quality);
    }
    out.extend_from_slice(&(overlay.pairs.len() as u32).to_le_bytes());
    for (key, p) in &overlay.pairs {
        put_key(&mut out, key);
        out.extend_from_slice(&p.timestamp.to_le_bytes());
        out.extend_from_slice(&p.import_wh.to_le_bytes());
        out.extend_from_slice(&p.export_wh.to_le_bytes());
        out.push(p.quality);
    }
    out
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("journal entry is truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn key(&mut self) -> Result<String> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        Ok(std::str::from_utf8(bytes)
            .context("journal key is not UTF-8")?
            .to_string())
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Overlay> {
    let mut c = Cursor(bytes);
    let version = c.u8()?;
    if version != VERSION {
        bail!("journal entry version {version} is not {VERSION}");
    }
    let mut overlay = Overlay::default();
    // Counts come from the store: the entries' own bounds check them as they are read.
    for _ in 0..c.u32()? {
        let key = c.key()?;
        let flow = match c.u8()? {
            0 => Flow::Import,
            1 => Flow::Export,
            other => bail!("journal entry has flow {other}"),
        };
        let reading = RegisterReading {
            flow,
            timestamp: c.u32()?,
            start: c.u32()?,
            wh: c.u64()?,
            quality: c.u8()?,
        };
        overlay.latest.insert(key, reading);
    }
    for _ in 0..c.u32()? {
        let key = c.key()?;
        let pair = Pair {
            timestamp: c.u32()?,
            import_wh: c.u64()?,
            export_wh: c.u64()?,
            quality: c.u8()?,
        };
        overlay.pairs.insert(key, pair);
    }
    if !c.0.is_empty() {
        bail!("journal entry has {} trailing bytes", c.0.len());
    }
    Ok(overlay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn overlay() -> impl Strategy<Value = Overlay> {
        let reading = (
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            any::<u8>(),
        )
            .prop_map(|(export, timestamp, start, wh, quality)| RegisterReading {
                flow: if export { Flow::Export } else { Flow::Import },
                timestamp,
                start,
                wh,
                quality,
            });
        let pair = (any::<u32>(), any::<u64>(), any::<u64>(), any::<u8>()).prop_map(
            |(timestamp, import_wh, export_wh, quality)| Pair {
                timestamp,
                import_wh,
                export_wh,
                quality,
            },
        );
        (
            prop::collection::hash_map("[0-9A-F]{1,40}/(import|export)", reading, 0..8),
            prop::collection::hash_map("[0-9A-F]{1,40}", pair, 0..8),
        )
            .prop_map(|(latest, pairs)| Overlay {
                latest,
                pairs,
                ..Overlay::default()
            })
    }

    #[test]
    fn slices_are_ranges_of_hex_keys_and_cover_every_slice() {
        let mut seen = vec![0; 16];
        for lead in 0..256u32 {
            let key = format!("{lead:02X}{}/import", "0".repeat(38));
            let slice = slice_of(&key, 16);
            assert_eq!(slice, (lead / 16) as usize);
            seen[slice] += 1;
        }
        assert!(seen.iter().all(|n| *n == 16), "{seen:?}");
        // Key order is slice order.
        assert!(slice_of("0F", 4) <= slice_of("3A", 4) && slice_of("3A", 4) <= slice_of("FF", 4));
        assert_eq!(slice_of("", 4), 0);
        assert!(slice_of("zz/import", 3) < 3);
    }

    proptest! {
        #[test]
        fn journal_entries_round_trip(o in overlay()) {
            prop_assert_eq!(decode(&encode(&o)).unwrap(), o);
        }

        /// A damaged entry is an error, never a panic or a silent half-read.
        #[test]
        fn damaged_journal_entries_are_refused(o in overlay(), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&o);
            let cut = cut.index(bytes.len());
            prop_assert!(decode(&bytes[..cut]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(decode(&longer).is_err());
        }
    }
}
