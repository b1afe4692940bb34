//! Reads: a consistent snapshot of the store's tables (a redb read transaction), with the
//! latest registers as committed at the time of each call (they live in memory).
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use redb::{ReadableTable, ReadableTableMetadata};

use super::engine::Shared;
use super::records;
use super::tables::*;
use super::{Attested, MirrorRecord, Pair, SignedBatch, StoredReading};
use crate::normalize::{Flow, Measurement, RegisterReading};

/// A consistent snapshot for reads (but the latest registers: the committed state at the
/// time of the call).
pub struct Reader {
    pub(super) txn: redb::ReadTransaction,
    pub(super) shared: Arc<Shared>,
}

impl Reader {
    /// The non-attested readings stored for MirrorMeterReading `mmr` of `lfdi`, in time
    /// order. Reads the whole table (it is keyed by time): for inspection and tests.
    pub fn measurements(&self, lfdi: &str, mmr: &str) -> Result<Vec<Measurement>> {
        let key = mirror_key(lfdi, mmr);
        let table = self.txn.open_table(MEASUREMENTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            if k.value().1 == key {
                out.push(from_json(v.value())?);
            }
        }
        Ok(out)
    }

    /// The last reading attested for `lfdi`.
    pub fn attested(&self, lfdi: &str) -> Result<Option<Attested>> {
        json_at(&self.txn.open_table(ATTESTED)?, lfdi)
    }

    /// The meter's latest import and export measured at the same time (committed).
    pub fn pair(&self, lfdi: &str) -> Result<Option<Pair>> {
        Ok(self.shared.hot().pairs.get(lfdi).copied())
    }

    /// The meter directory's `key` (`tables::DIRECTORY`), as kept.
    pub(super) fn directory(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .txn
            .open_table(DIRECTORY)?
            .get(key)?
            .map(|v| v.value().to_vec()))
    }

    /// Signed batches awaiting the keeper (see `Writer::pending_batches`).
    pub fn pending_batches(&self) -> Result<u64> {
        meta_value(&self.txn.open_table(META)?, UNACKNOWLEDGED)
    }

    pub fn batch(&self, sequence: u64) -> Result<Option<SignedBatch>> {
        json_at(&self.txn.open_table(BATCHES)?, sequence)
    }

    /// The highest sequence the chain has settled, as the keeper last reported it.
    pub fn chain_floor(&self) -> Result<u64> {
        meta_value(&self.txn.open_table(META)?, CHAIN_FLOOR)
    }

    /// The MirrorMeterReading attested for `flow` of `lfdi`, if one is designated.
    pub fn designated(&self, lfdi: &str, flow: Flow) -> Result<Option<String>> {
        Ok(self
            .txn
            .open_table(DESIGNATED)?
            .get(latest_key(lfdi, flow).as_str())?
            .map(|v| v.value().to_string()))
    }

    /// The mirrors of device `lfdi`, in the order IEEE 2030.5 lists them (mRID descending).
    pub fn mirrors_of(&self, lfdi: &str) -> Result<Vec<MirrorRecord>> {
        let keys = self.txn.open_table(MIRROR_KEYS)?;
        let mirrors = self.txn.open_table(MIRRORS)?;
        let prefix = format!("{lfdi}/");
        let mut out = Vec::new();
        for entry in keys.range(prefix.as_str()..)? {
            let (key, id) = entry?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            if let Some(v) = mirrors.get(id.value())? {
                out.push(from_json::<MirrorRecord>(v.value())?);
            }
        }
        out.sort_by_key(|m| std::cmp::Reverse(mrid_order(&m.mup.mrid)));
        Ok(out)
    }

    pub fn mirror(&self, id: u64) -> Result<Option<MirrorRecord>> {
        json_at(&self.txn.open_table(MIRRORS)?, id)
    }

    pub fn mirror_count(&self) -> Result<u64> {
        use redb::ReadableTableMetadata;
        Ok(self.txn.open_table(MIRRORS)?.len()?)
    }

    /// Every accepted reading, in time order (then by register name).
    pub fn readings(&self) -> Result<Vec<StoredReading>> {
        let table = self.txn.open_table(READINGS)?;
        let names = self.txn.open_table(REGISTER_NAMES)?;
        let mut known: HashMap<u32, String> = HashMap::new();
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let (timestamp, id) = records::split_key(k.value());
            let name = register_name(&names, &mut known, id)?;
            out.push(records::decode_reading(name, timestamp, v.value())?);
        }
        out.sort_by(|a, b| {
            (a.reading.timestamp, &a.lfdi, &a.mmr).cmp(&(b.reading.timestamp, &b.lfdi, &b.mmr))
        });
        Ok(out)
    }

    /// The latest reading of `lfdi`'s `flow` register, as committed now.
    pub fn latest(&self, lfdi: &str, flow: Flow) -> Result<Option<RegisterReading>> {
        Ok(self
            .shared
            .hot()
            .latest
            .get(&latest_key(lfdi, flow))
            .copied())
    }

    /// Up to `limit` readings of the export queue after position `after`, in queue order.
    pub fn export_page(&self, after: u64, limit: usize) -> Result<Vec<(u64, StoredReading)>> {
        let queue = self.txn.open_table(EXPORT_QUEUE)?;
        let names = self.txn.open_table(REGISTER_NAMES)?;
        let mut known: HashMap<u32, String> = HashMap::new();
        let mut out = Vec::new();
        let Some(first) = after.checked_add(1) else {
            return Ok(out);
        };
        for entry in queue.range(first..)? {
            if out.len() == limit {
                break;
            }
            let (position, value) = entry?;
            let value = value.value();
            let (register, timestamp, reading) = records::split_export(value);
            let name = register_name(&names, &mut known, register)?;
            out.push((
                position.value(),
                records::decode_reading(name, timestamp, reading)?,
            ));
        }
        Ok(out)
    }

    /// The export queue's marks and what waits in it.
    pub fn export_status(&self) -> Result<super::ExportQueue> {
        let meta = self.txn.open_table(META)?;
        let m = |key| meta_value(&meta, key);
        let (last, exported_through, dropped_through) = (
            m(EXPORT_LAST)?,
            m(EXPORTED_THROUGH)?,
            m(EXPORT_DROPPED_THROUGH)?,
        );
        let from = exported_through.max(dropped_through);
        let oldest_received_at = match self.txn.open_table(EXPORT_QUEUE)?.range(from + 1..)?.next()
        {
            Some(entry) => {
                let entry = entry?;
                let value = entry.1.value();
                let (_, _, reading) = records::split_export(value);
                Some(records::reading_received_at(reading))
            }
            None => None,
        };
        Ok(super::ExportQueue {
            last,
            exported_through,
            dropped_through,
            dropped: m(EXPORT_DROPPED)?,
            exported: m(EXPORT_ACKNOWLEDGED)?,
            waiting: self.txn.open_table(EXPORT_QUEUE)?.len()?,
            oldest_received_at,
            batches_exported_through: m(BATCHES_EXPORTED_THROUGH)?,
            last_batch: m(LAST_BATCH)?,
            batches_dropped: m(EXPORT_BATCHES_DROPPED)?,
        })
    }

    /// The last batch sequence signed (0: none).
    pub fn last_batch(&self) -> Result<u64> {
        meta_value(&self.txn.open_table(META)?, LAST_BATCH)
    }

    /// Up to `limit` signed batches after sequence `after` (acknowledged or not), by
    /// sequence.
    pub fn batches_after(&self, after: u64, limit: usize) -> Result<Vec<SignedBatch>> {
        let mut out = Vec::new();
        let Some(first) = after.checked_add(1) else {
            return Ok(out);
        };
        for entry in self.txn.open_table(BATCHES)?.range(first..)? {
            if out.len() == limit {
                break;
            }
            out.push(from_json(entry?.1.value())?);
        }
        Ok(out)
    }

    /// Up to `limit` unacknowledged batches, oldest first. The scan starts after the
    /// acknowledged-through mark, so it does not grow with the bridge's history.
    pub fn unacknowledged(&self, limit: usize) -> Result<Vec<SignedBatch>> {
        let through = meta_value(&self.txn.open_table(META)?, ACKNOWLEDGED_THROUGH)?;
        let mut out = Vec::new();
        let Some(first) = through.checked_add(1) else {
            return Ok(out);
        };
        for entry in self.txn.open_table(BATCHES)?.range(first..)? {
            if out.len() == limit {
                break;
            }
            let batch: SignedBatch = from_json(entry?.1.value())?;
            if !batch.acknowledged {
                out.push(batch);
            }
        }
        Ok(out)
    }
}

/// The name ("LFDI/MMR-mRID") of register `id`, looked up once per read (`known`).
fn register_name<'k>(
    names: &impl ReadableTable<u32, &'static str>,
    known: &'k mut HashMap<u32, String>,
    id: u32,
) -> Result<&'k str> {
    Ok(match known.entry(id) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(
            names
                .get(id)?
                .with_context(|| format!("register {id} has no name"))?
                .value()
                .to_string(),
        ),
    })
}
