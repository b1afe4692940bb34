//! What a write does: the changes one request (a post, an attestation, an acknowledgement,
//! a pruning step) makes inside a write transaction, and the key helpers they use. A
//! `Writer` sees the transaction's own changes to the latest registers (its overlay) over
//! the committed ones; the engine (`store/engine.rs`) decides when the transaction commits.
use std::cell::RefCell;
use std::sync::Arc;

use anyhow::{Context, Result};
use redb::{ReadableTable, ReadableTableMetadata};

use super::cache;
use super::engine::Shared;
use super::hot::Overlay;
use super::records;
use super::tables::*;
use super::wal;
use super::{Attested, MirrorRecord, Pair, Pruned, SignedBatch, StoredReading};
use crate::normalize::{Flow, Measurement, RegisterReading};
use sep2::MirrorUsagePoint;

/// Changes inside one write transaction; nothing is visible or durable until it commits.
pub struct Writer<'a> {
    pub(super) txn: &'a redb::WriteTransaction,
    shared: &'a Shared,
    /// The transaction's changes to the latest registers and pairs.
    overlay: &'a RefCell<Overlay>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(
        txn: &'a redb::WriteTransaction,
        shared: &'a Shared,
        overlay: &'a RefCell<Overlay>,
    ) -> Writer<'a> {
        Writer {
            txn,
            shared,
            overlay,
        }
    }

    /// Inserts into a table; noted in the store's log when the transaction is batched
    /// (store/wal.rs). Every change a writer makes goes through this or [`Writer::remove`].
    pub(super) fn insert<'k, 'v, K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: redb::TableDefinition<K, V>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
    ) -> Result<()> {
        wal::insert(
            self.txn,
            self.overlay.borrow_mut().log.as_mut(),
            table,
            key,
            value,
        )
    }

    pub(super) fn remove<'k, K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: redb::TableDefinition<K, V>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<()> {
        wal::remove(self.txn, self.overlay.borrow_mut().log.as_mut(), table, key)
    }

    pub(super) fn next(&self, counter: &str) -> Result<u64> {
        let current = self.meta(counter)?;
        let next = current.checked_add(1).context("counter overflow")?;
        self.insert(META, counter, next)?;
        Ok(next)
    }

    pub fn mirror_id(&self, lfdi: &str, mrid: &str) -> Result<Option<u64>> {
        Ok(self
            .txn
            .open_table(MIRROR_KEYS)?
            .get(mirror_key(lfdi, mrid).as_str())?
            .map(|v| v.value()))
    }

    pub fn mirror(&self, id: u64) -> Result<Option<MirrorRecord>> {
        let changed = self.overlay.borrow().cache.mirrors.get(&id).cloned();
        let record = cache::layered(
            changed,
            &self.shared.cache,
            |c| &mut c.mirrors,
            &id,
            || Ok(json_at::<u64, MirrorRecord>(&self.txn.open_table(MIRRORS)?, id)?.map(Arc::new)),
        )?;
        Ok(record.map(|r| MirrorRecord::clone(&r)))
    }

    /// Stores a mirror; a new one gets the next id. Returns the id.
    pub fn put_mirror(&self, id: Option<u64>, lfdi: &str, mup: &MirrorUsagePoint) -> Result<u64> {
        let id = match id {
            Some(id) => id,
            None => self.next(NEXT_MIRROR)?,
        };
        let record = MirrorRecord {
            id,
            lfdi: lfdi.to_string(),
            mup: mup.clone(),
        };
        self.insert(MIRRORS, id, to_json(&record).as_slice())?;
        self.insert(MIRROR_KEYS, mirror_key(lfdi, &mup.mrid).as_str(), id)?;
        self.overlay
            .borrow_mut()
            .cache
            .mirrors
            .insert(id, Some(Arc::new(record)));
        Ok(id)
    }

    pub fn delete_mirror(&self, record: &MirrorRecord) -> Result<()> {
        self.remove(MIRRORS, record.id)?;
        self.remove(
            MIRROR_KEYS,
            mirror_key(&record.lfdi, &record.mup.mrid).as_str(),
        )?;
        self.overlay
            .borrow_mut()
            .cache
            .mirrors
            .insert(record.id, None);
        for mmr in &record.mup.mirror_meter_readings {
            self.remove(MMR_OWNERS, mmr.mrid.as_str())?;
            self.overlay
                .borrow_mut()
                .cache
                .mmr_owners
                .insert(mmr.mrid.clone(), None);
            // A register designated for attestation is released with its mirror: the
            // device's next whole Wh register in that direction takes its place.
            for flow in [Flow::Import, Flow::Export] {
                let key = latest_key(&record.lfdi, flow);
                let held = self
                    .txn
                    .open_table(DESIGNATED)?
                    .get(key.as_str())?
                    .is_some_and(|v| v.value() == mmr.mrid);
                if held {
                    self.remove(DESIGNATED, key.as_str())?;
                    self.overlay.borrow_mut().cache.designated.insert(key, None);
                }
            }
        }
        Ok(())
    }

    /// How many mirrors device `lfdi` has.
    pub fn mirror_count_of(&self, lfdi: &str) -> Result<usize> {
        let keys = self.txn.open_table(MIRROR_KEYS)?;
        let prefix = format!("{lfdi}/");
        let mut n = 0;
        for entry in keys.range(prefix.as_str()..)? {
            let (key, _) = entry?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Makes MirrorMeterReading `mmr` the register attested for `flow` of `lfdi`.
    pub fn designate(&self, lfdi: &str, flow: Flow, mmr: &str) -> Result<()> {
        let key = latest_key(lfdi, flow);
        self.insert(DESIGNATED, key.as_str(), mmr)?;
        self.overlay
            .borrow_mut()
            .cache
            .designated
            .insert(key, Some(mmr.to_string()));
        Ok(())
    }

    /// Deletes, in one transaction and at most `max` of each, what is older than `cutoff`
    /// (Unix seconds): register readings and measurements whose time is before it, and acknowledged batches created before it.
    /// Unacknowledged batches are never deleted; the latest register values, pairs and
    /// attestation marks (one each per meter) stay.
    pub fn prune(&self, cutoff: i64, max: usize) -> Result<Pruned> {
        // Its deletions are not noted in the store's log: an immediate write is durable in
        // redb itself.
        anyhow::ensure!(
            self.overlay.borrow().log.is_none(),
            "pruning runs in an immediate write, never in a batched one"
        );
        let mut pruned = Pruned::default();
        let before = u32::try_from(cutoff.max(0)).unwrap_or(u32::MAX);
        {
            let mut readings = self.txn.open_table(READINGS)?;
            let mut old = Vec::new();
            for entry in readings.range(..records::reading_key(before, 0))? {
                old.push(entry?.0.value());
                if old.len() == max {
                    break;
                }
            }
            for key in &old {
                readings.remove(key)?;
            }
            pruned.readings = old.len();
        }
        pruned.measurements = prune_before(&mut self.txn.open_table(MEASUREMENTS)?, before, max)?;
        pruned.export_dropped = self.drop_over_cap(max)?;
        {
            let through = self.meta(ACKNOWLEDGED_THROUGH)?;
            // While the queue is kept, batches the history database does not have yet wait
            // for it, 30 days past the retention at most (then they go, as readings over the
            // queue's cap do).
            let exported = self
                .shared
                .export_enabled
                .load(std::sync::atomic::Ordering::Relaxed)
                .then(|| self.meta(BATCHES_EXPORTED_THROUGH))
                .transpose()?;
            let held_until = cutoff.saturating_sub(EXPORT_BATCH_HOLD_S);
            let mut batches = self.txn.open_table(BATCHES)?;
            let mut old = Vec::new();
            for entry in batches.range(..=through)? {
                let (sequence, v) = entry?;
                let b: SignedBatch = from_json(v.value())?;
                if b.created_at >= cutoff || old.len() == max {
                    break;
                }
                let unexported = exported.is_some_and(|e| sequence.value() > e);
                if unexported && b.created_at >= held_until {
                    break;
                }
                if unexported {
                    pruned.unexported_batches += 1;
                }
                old.push(sequence.value());
            }
            for sequence in &old {
                batches.remove(sequence)?;
            }
            pruned.batches = old.len();
        }
        if pruned.unexported_batches > 0 {
            let dropped = self.meta(EXPORT_BATCHES_DROPPED)?;
            self.insert(
                META,
                EXPORT_BATCHES_DROPPED,
                dropped + pruned.unexported_batches as u64,
            )?;
        }
        Ok(pruned)
    }

    /// Drops the oldest entries of the export queue while it holds more than its cap, at
    /// most `max` (counted in `export_dropped`, alerted); returns how many.
    pub fn drop_over_cap(&self, max: usize) -> Result<usize> {
        anyhow::ensure!(
            self.overlay.borrow().log.is_none(),
            "the export queue's cap is kept in an immediate write"
        );
        let cap = self
            .shared
            .export_max_waiting
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut queue = self.txn.open_table(EXPORT_QUEUE)?;
        let waiting = queue.len()?;
        if waiting <= cap {
            return Ok(0);
        }
        let n = (waiting - cap).min(max as u64) as usize;
        let mut old = Vec::with_capacity(n);
        for entry in queue.iter()? {
            old.push(entry?.0.value());
            if old.len() == n {
                break;
            }
        }
        for position in &old {
            queue.remove(position)?;
        }
        drop(queue);
        if let Some(last) = old.last() {
            self.insert(META, EXPORT_DROPPED_THROUGH, *last)?;
        }
        let dropped = self.meta(EXPORT_DROPPED)?;
        self.insert(META, EXPORT_DROPPED, dropped + old.len() as u64)?;
        Ok(old.len())
    }

    /// The last export queue position given (0: none).
    pub fn export_last(&self) -> Result<u64> {
        self.meta(EXPORT_LAST)
    }

    /// The history exporter has every queued reading through `through`: they leave the
    /// queue. Returns the new mark (never lowered, never past the last position given).
    pub fn export_acknowledged(&self, through: u64) -> Result<u64> {
        anyhow::ensure!(
            self.overlay.borrow().log.is_none(),
            "export acknowledgements run in an immediate write"
        );
        let before = self.meta(EXPORTED_THROUGH)?;
        let through = through.min(self.meta(EXPORT_LAST)?);
        if through <= before {
            return Ok(before);
        }
        let removed = {
            let mut queue = self.txn.open_table(EXPORT_QUEUE)?;
            let mut done = Vec::new();
            for entry in queue.range(..=through)? {
                done.push(entry?.0.value());
            }
            for position in &done {
                queue.remove(position)?;
            }
            done.len() as u64
        };
        let acknowledged = self.meta(EXPORT_ACKNOWLEDGED)?;
        self.insert(META, EXPORT_ACKNOWLEDGED, acknowledged + removed)?;
        self.insert(META, EXPORTED_THROUGH, through)?;
        Ok(through)
    }

    /// The history database has every batch through `through`; returns the new mark.
    pub fn batches_exported(&self, through: u64) -> Result<u64> {
        let before = self.meta(BATCHES_EXPORTED_THROUGH)?;
        let through = through.min(self.meta(LAST_BATCH)?).max(before);
        self.insert(META, BATCHES_EXPORTED_THROUGH, through)?;
        Ok(through)
    }

    /// The MirrorMeterReadings attested for `lfdi`'s import and export, if designated.
    pub fn designated_pair(&self, lfdi: &str) -> Result<[Option<String>; 2]> {
        let get = |flow| -> Result<Option<String>> {
            let key = latest_key(lfdi, flow);
            let changed = self.overlay.borrow().cache.designated.get(&key).cloned();
            cache::layered(
                changed,
                &self.shared.cache,
                |c| &mut c.designated,
                key.as_str(),
                || {
                    Ok(self
                        .txn
                        .open_table(DESIGNATED)?
                        .get(key.as_str())?
                        .map(|v| v.value().to_string()))
                },
            )
        };
        Ok([get(Flow::Import)?, get(Flow::Export)?])
    }

    /// Stores a reading that is not attested. The same reading again (a retry) is a no-op;
    /// another one at the same time is refused (`Ok(Err(stored))`).
    pub fn record_measurement(
        &self,
        lfdi: &str,
        mmr: &str,
        m: &Measurement,
    ) -> Result<Result<(), Measurement>> {
        let key = mirror_key(lfdi, mmr);
        let stored: Option<Measurement> =
            json_at(&self.txn.open_table(MEASUREMENTS)?, (m.end, key.as_str()))?;
        match stored {
            Some(s) if s == *m => Ok(Ok(())),
            Some(s) => Ok(Err(s)),
            None => {
                self.insert(MEASUREMENTS, (m.end, key.as_str()), to_json(m).as_slice())?;
                Ok(Ok(()))
            }
        }
    }

    pub fn mmr_owner(&self, mrid: &str) -> Result<Option<String>> {
        let changed = self.overlay.borrow().cache.mmr_owners.get(mrid).cloned();
        cache::layered(
            changed,
            &self.shared.cache,
            |c| &mut c.mmr_owners,
            mrid,
            || {
                Ok(self
                    .txn
                    .open_table(MMR_OWNERS)?
                    .get(mrid)?
                    .map(|v| v.value().to_string()))
            },
        )
    }

    pub fn set_mmr_owner(&self, mrid: &str, lfdi: &str) -> Result<()> {
        self.insert(MMR_OWNERS, mrid, lfdi)?;
        self.overlay
            .borrow_mut()
            .cache
            .mmr_owners
            .insert(mrid.to_string(), Some(lfdi.to_string()));
        Ok(())
    }

    pub fn latest(&self, lfdi: &str, flow: Flow) -> Result<Option<RegisterReading>> {
        let key = latest_key(lfdi, flow);
        if let Some(r) = self.overlay.borrow().latest.get(&key) {
            return Ok(Some(*r));
        }
        Ok(self.shared.hot().latest.get(&key).copied())
    }

    /// The Wh stored for MirrorMeterReading `mmr` of `lfdi` at `timestamp`, if any.
    pub fn reading_at(&self, lfdi: &str, mmr: &str, timestamp: u32) -> Result<Option<u64>> {
        let Some(id) = self.register_id(&mirror_key(lfdi, mmr), false)? else {
            return Ok(None);
        };
        let readings = self.txn.open_table(READINGS)?;
        let stored = readings.get(records::reading_key(timestamp, id))?;
        Ok(stored.map(|v| records::reading_wh(v.value())))
    }

    /// Stores an accepted reading and makes it the meter's latest; when the
    /// other register's latest reading has the same time, the two become the meter's pair.
    pub fn record_reading(&self, reading: &StoredReading) -> Result<()> {
        let r = &reading.reading;
        let name = mirror_key(&reading.lfdi, &reading.mmr);
        let id = self.register_id(&name, true)?.expect("assigned");
        let encoded = records::encode_reading(reading);
        self.insert(READINGS, records::reading_key(r.timestamp, id), &encoded)?;
        if self
            .shared
            .export_enabled
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let position = records::export_position(self.meta(EXPORT_LAST)?, reading.received_at);
            self.insert(META, EXPORT_LAST, position)?;
            self.insert(
                EXPORT_QUEUE,
                position,
                &records::encode_export(id, r.timestamp, &encoded),
            )?;
        }
        self.overlay
            .borrow_mut()
            .latest
            .insert(latest_key(&reading.lfdi, r.flow), *r);
        let other = match r.flow {
            Flow::Import => Flow::Export,
            Flow::Export => Flow::Import,
        };
        if let Some(o) = self.latest(&reading.lfdi, other)? {
            if o.timestamp == r.timestamp {
                let (import, export) = match r.flow {
                    Flow::Import => (r, &o),
                    Flow::Export => (&o, r),
                };
                let pair = Pair {
                    timestamp: r.timestamp,
                    import_wh: import.wh,
                    export_wh: export.wh,
                    quality: import.quality | export.quality,
                };
                self.overlay
                    .borrow_mut()
                    .pairs
                    .insert(reading.lfdi.clone(), pair);
            }
        }
        Ok(())
    }

    /// The id of register `name` ("LFDI/MMR-mRID"); a new one if `assign`.
    fn register_id(&self, name: &str, assign: bool) -> Result<Option<u32>> {
        let changed = self
            .overlay
            .borrow()
            .cache
            .register_ids
            .get(name)
            .map(|id| Some(*id));
        let id = cache::layered(
            changed,
            &self.shared.cache,
            |c| &mut c.register_ids,
            name,
            || register_id(self.txn, name, false),
        )?;
        if id.is_some() || !assign {
            return Ok(id);
        }
        let next = self.meta(NEXT_REGISTER)?;
        let id = u32::try_from(next).context("register ids exhausted")?;
        self.insert(META, NEXT_REGISTER, next + 1)?;
        self.insert(REGISTER_IDS, name, id)?;
        self.insert(REGISTER_NAMES, id, name)?;
        self.overlay
            .borrow_mut()
            .cache
            .register_ids
            .insert(name.to_string(), id);
        Ok(Some(id))
    }

    /// The meter's latest import and export measured at the same time.
    pub fn pair(&self, lfdi: &str) -> Result<Option<Pair>> {
        if let Some(p) = self.overlay.borrow().pairs.get(lfdi) {
            return Ok(Some(*p));
        }
        Ok(self.shared.hot().pairs.get(lfdi).copied())
    }

    pub fn attested(&self, lfdi: &str) -> Result<Option<Attested>> {
        json_at(&self.txn.open_table(ATTESTED)?, lfdi)
    }

    pub fn set_attested(&self, lfdi: &str, attested: &Attested) -> Result<()> {
        self.insert(ATTESTED, lfdi, to_json(attested).as_slice())?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<u64> {
        meta_value(&self.txn.open_table(META)?, key)
    }

    /// Keeps the meter directory's `key` (`tables::DIRECTORY`) as `json`.
    pub(super) fn put_directory(&self, key: &str, json: &[u8]) -> Result<()> {
        self.insert(DIRECTORY, key, json)
    }

    /// Signed batches awaiting the keeper (neither acknowledged nor re-signed).
    pub fn pending_batches(&self) -> Result<u64> {
        self.meta(UNACKNOWLEDGED)
    }

    /// The next batch's sequence: after the last one signed and after the chain's floor.
    pub fn next_batch_sequence(&self) -> Result<u64> {
        let next = self
            .meta(LAST_BATCH)?
            .max(self.meta(CHAIN_FLOOR)?)
            .checked_add(1)
            .context("batch sequence overflow")?;
        self.insert(META, LAST_BATCH, next)?;
        Ok(next)
    }

    /// The highest sequence the chain has settled, as last reported (0: never).
    pub fn chain_floor(&self) -> Result<u64> {
        self.meta(CHAIN_FLOOR)
    }

    /// Raises the chain's floor to `highest` (never lowers it); returns the floor.
    pub fn raise_chain_floor(&self, highest: u64) -> Result<u64> {
        let floor = self.meta(CHAIN_FLOOR)?.max(highest);
        self.insert(META, CHAIN_FLOOR, floor)?;
        Ok(floor)
    }

    /// Stores a newly signed batch.
    pub fn put_batch(&self, batch: &SignedBatch) -> Result<()> {
        anyhow::ensure!(
            self.txn.open_table(BATCHES)?.get(batch.sequence)?.is_none(),
            "batch {} is signed already",
            batch.sequence
        );
        self.write_batch(batch)?;
        if !batch.acknowledged {
            let pending = self.meta(UNACKNOWLEDGED)?;
            self.insert(META, UNACKNOWLEDGED, pending + 1)?;
        }
        Ok(())
    }

    fn write_batch(&self, batch: &SignedBatch) -> Result<()> {
        self.insert(BATCHES, batch.sequence, to_json(batch).as_slice())
    }

    pub fn batch(&self, sequence: u64) -> Result<Option<SignedBatch>> {
        json_at(&self.txn.open_table(BATCHES)?, sequence)
    }

    /// The oldest batch not acknowledged, if any.
    pub fn next_unacknowledged(&self) -> Result<Option<u64>> {
        let through = self.meta(ACKNOWLEDGED_THROUGH)?;
        let batches = self.txn.open_table(BATCHES)?;
        for entry in batches.range(through.saturating_add(1)..)? {
            let (sequence, value) = entry?;
            let batch: SignedBatch = from_json(value.value())?;
            if !batch.acknowledged {
                return Ok(Some(sequence.value()));
            }
        }
        Ok(None)
    }

    /// Marks batch `sequence` confirmed on-chain. Only the oldest batch not acknowledged
    /// may be (again is fine): a keeper cannot leave a gap behind it.
    pub fn acknowledge(&self, sequence: u64) -> Result<Acknowledged> {
        let Some(batch) = self.batch(sequence)? else {
            return Ok(Acknowledged::Unknown);
        };
        if batch.acknowledged {
            return Ok(Acknowledged::Already);
        }
        let next = self.next_unacknowledged()?;
        if next != Some(sequence) {
            return Ok(Acknowledged::NotNext(next.unwrap_or(sequence)));
        }
        self.settle(batch, None)?;
        Ok(Acknowledged::Done)
    }

    /// Takes unacknowledged `batch` off the keeper's list (acknowledged, or replaced by the
    /// re-signed copy `replaced_by`), and moves the acknowledged-through mark over every
    /// batch acknowledged behind it.
    pub(crate) fn settle(&self, mut batch: SignedBatch, replaced_by: Option<u64>) -> Result<()> {
        debug_assert!(!batch.acknowledged);
        batch.acknowledged = true;
        batch.replaced_by = replaced_by;
        self.write_batch(&batch)?;
        let pending = self.meta(UNACKNOWLEDGED)?;
        self.insert(META, UNACKNOWLEDGED, pending.saturating_sub(1))?;
        let mut through = self.meta(ACKNOWLEDGED_THROUGH)?;
        {
            let batches = self.txn.open_table(BATCHES)?;
            for entry in batches.range(through.saturating_add(1)..)? {
                let (sequence, value) = entry?;
                let b: SignedBatch = from_json(value.value())?;
                if !b.acknowledged {
                    break;
                }
                through = sequence.value();
            }
        }
        self.insert(META, ACKNOWLEDGED_THROUGH, through)?;
        Ok(())
    }
}

/// What an acknowledgement did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledged {
    Done,
    /// Acknowledged before (or replaced by a re-signed copy).
    Already,
    Unknown,
    /// Not the oldest batch awaiting acknowledgement: that one is.
    NotNext(u64),
}

/// How long past the retention window pruning keeps a batch the history exporter has not
/// taken.
const EXPORT_BATCH_HOLD_S: i64 = 30 * 86_400;

/// Deletes up to `max` entries of a table keyed by (time, register) whose time is before
/// `before` (the table's first ones); returns how many.
fn prune_before(
    table: &mut redb::Table<(u32, &str), &[u8]>,
    before: u32,
    max: usize,
) -> Result<usize> {
    let mut old: Vec<(u32, String)> = Vec::new();
    for entry in table.range(..(before, ""))? {
        let (k, _) = entry?;
        let (t, key) = k.value();
        old.push((t, key.to_string()));
        if old.len() == max {
            break;
        }
    }
    for (t, key) in &old {
        table.remove((*t, key.as_str()))?;
    }
    Ok(old.len())
}

/// The id of register `name` ("LFDI/MMR-mRID"); a new one if `assign`.
fn register_id(txn: &redb::WriteTransaction, name: &str, assign: bool) -> Result<Option<u32>> {
    let mut ids = txn.open_table(REGISTER_IDS)?;
    if let Some(id) = ids.get(name)? {
        return Ok(Some(id.value()));
    }
    if !assign {
        return Ok(None);
    }
    let mut meta = txn.open_table(META)?;
    let id = meta.get(NEXT_REGISTER)?.map(|v| v.value()).unwrap_or(0);
    let id32 = u32::try_from(id).context("register ids exhausted")?;
    meta.insert(NEXT_REGISTER, id + 1)?;
    ids.insert(name, id32)?;
    txn.open_table(REGISTER_NAMES)?.insert(id32, name)?;
    Ok(Some(id32))
}

/// Stores one register reading under its compact key (`store/records.rs`).
pub(super) fn insert_reading(txn: &redb::WriteTransaction, reading: &StoredReading) -> Result<()> {
    let name = mirror_key(&reading.lfdi, &reading.mmr);
    let id = register_id(txn, &name, true)?.expect("assigned");
    txn.open_table(READINGS)?.insert(
        records::reading_key(reading.reading.timestamp, id),
        &records::encode_reading(reading),
    )?;
    Ok(())
}
