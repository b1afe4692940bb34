//! Every meter's latest register values and pairs, kept in memory by the store.
//!
//! They change with every reading, and they are keyed by meter: written to their B-tree
//! tables at every commit, a batch of posts from 10,000 meters dirtied nearly every page of
//! both tables (about 1,300 pages, 5 MiB, per commit; docs/benchmarks.md). Now a commit
//! appends what it changed, in a compact binary record, to the `journal` table (one entry
//! per commit: the right edge of one tree), and a checkpoint now and then writes the
//! changed entries to the `latest` and `pairs` tables and empties the journal. At start
//! the journal is replayed into the tables, which are then loaded. The journal is written
//! in the same transaction as the readings it summarises, so what is on disk after a crash
//! is always the tables plus the journal, whatever the moment.
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Pair;
use crate::normalize::{Flow, RegisterReading};

/// When the journal is folded into the tables: whichever limit comes first, checked at each
/// commit that changes something. Bytes bound the replay at start and the file space the
/// journal holds; the age bounds how stale the tables get on a quiet campus.
#[derive(Clone, Copy, Debug)]
pub(super) struct CheckpointPolicy {
    pub max_bytes: usize,
    pub max_entries: u64,
    pub max_age: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            max_bytes: 8 << 20,
            max_entries: 1_024,
            max_age: Duration::from_secs(60),
        }
    }
}

/// What one transaction changed: "LFDI/import"|"LFDI/export" -> reading, LFDI -> pair.
/// The last change of a key wins.
#[derive(Default, Debug, Clone, PartialEq)]
pub(super) struct Overlay {
    pub latest: HashMap<String, RegisterReading>,
    pub pairs: HashMap<String, Pair>,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.pairs.is_empty()
    }

    /// Later changes over earlier ones.
    pub fn absorb(&mut self, later: Overlay) {
        self.latest.extend(later.latest);
        self.pairs.extend(later.pairs);
    }
}

/// The committed state and the journal's bookkeeping.
pub(super) struct Hot {
    pub latest: HashMap<String, RegisterReading>,
    pub pairs: HashMap<String, Pair>,
    /// Keys changed since the last checkpoint: their table entries are stale (the journal
    /// holds the newer values).
    pub dirty_latest: HashSet<String>,
    pub dirty_pairs: HashSet<String>,
    /// Journal entries held: sequences `first..next`.
    pub journal_first: u64,
    pub journal_next: u64,
    pub journal_bytes: usize,
    pub checkpointed_at: Instant,
    /// Checkpoints written since start (read by the tests).
    pub checkpoints: u64,
}

impl Hot {
    pub fn new(
        latest: HashMap<String, RegisterReading>,
        pairs: HashMap<String, Pair>,
        journal_next: u64,
    ) -> Hot {
        Hot {
            latest,
            pairs,
            dirty_latest: HashSet::new(),
            dirty_pairs: HashSet::new(),
            journal_first: journal_next,
            journal_next,
            journal_bytes: 0,
            checkpointed_at: Instant::now(),
            checkpoints: 0,
        }
    }

    /// Whether the commit that adds an entry of `bytes` should checkpoint instead.
    pub fn checkpoint_due(&self, policy: &CheckpointPolicy, bytes: usize) -> bool {
        self.journal_bytes.saturating_add(bytes) > policy.max_bytes
            || self.journal_next - self.journal_first >= policy.max_entries
            || self.checkpointed_at.elapsed() >= policy.max_age
    }

    /// After the commit: `overlay` is the committed state, journalled (`journalled` bytes)
    /// or checkpointed (`None`).
    pub fn committed(&mut self, overlay: Overlay, journalled: Option<usize>) {
        match journalled {
            Some(bytes) => {
                self.dirty_latest.extend(overlay.latest.keys().cloned());
                self.dirty_pairs.extend(overlay.pairs.keys().cloned());
                self.journal_next += 1;
                self.journal_bytes += bytes;
            }
            None => {
                self.dirty_latest.clear();
                self.dirty_pairs.clear();
                self.journal_first = self.journal_next;
                self.journal_bytes = 0;
                self.checkpointed_at = Instant::now();
                self.checkpoints += 1;
            }
        }
        self.latest.extend(overlay.latest);
        self.pairs.extend(overlay.pairs);
    }
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
            .prop_map(|(latest, pairs)| Overlay { latest, pairs })
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
