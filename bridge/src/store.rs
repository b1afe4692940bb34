//! The bridge's durable state, in an embedded ACID database (redb). Every accepted reading is
//! committed here (fsync'd) before the meter gets its 201/204, and the attestor's batches wait
//! here until the keeper acknowledges them, so a crash loses nothing acknowledged.
use std::path::Path;

use anyhow::{bail, Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::normalize::{Flow, RegisterReading};
use crate::xml::MirrorUsagePoint;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// mirror id -> MirrorRecord
const MIRRORS: TableDefinition<u64, &[u8]> = TableDefinition::new("mirrors");
/// "LFDI/mRID" -> mirror id: mirrors are keyed by device and mRID.
const MIRROR_KEYS: TableDefinition<&str, u64> = TableDefinition::new("mirror_keys");
/// MirrorMeterReading mRID -> LFDI of the device that first used it. mRIDs are globally
/// unique (IEEE 2030.5; CSIP-AUS S-ALL-05 refuses a colliding one).
const MMR_OWNERS: TableDefinition<&str, &str> = TableDefinition::new("mmr_owners");
/// ("LFDI/MMR-mRID", reading time) -> StoredReading: every accepted register reading, by
/// register and time, so that a retried post (its reply lost) is recognised reading by
/// reading and pruning goes by time. One table written per reading (with the latest value
/// and the pair), which keeps each post's commit small. (Stores before 2026-11-23 kept an
/// arrival-ordered log in "readings": no longer read.)
const READINGS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("register_readings");
/// ("LFDI/MMR-mRID", reading time) -> Measurement (JSON): readings that are not the meter's
/// attested registers (power, voltage, frequency, other Wh registers...).
const MEASUREMENTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("measurements");
/// "LFDI/import" or "LFDI/export" -> the mRID of the MirrorMeterReading whose register is
/// attested for that direction (the first whole Wh register the device mirrored).
const DESIGNATED: TableDefinition<&str, &str> = TableDefinition::new("designated");
/// "LFDI/import" or "LFDI/export" -> the latest RegisterReading.
const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");
/// LFDI -> Pair: the latest import and export registers measured at the same time.
const PAIRS: TableDefinition<&str, &[u8]> = TableDefinition::new("pairs");
/// LFDI -> Attested: what the attestor last signed for the meter.
const ATTESTED: TableDefinition<&str, &[u8]> = TableDefinition::new("attested");
/// batch sequence -> SignedBatch
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");

const NEXT_MIRROR: &str = "next_mirror_id";
const LAST_BATCH: &str = "last_batch_sequence";
/// Every batch up to this sequence is acknowledged: the keeper's reads start after it.
const ACKNOWLEDGED_THROUGH: &str = "acknowledged_through";

/// A mirror as stored: who owns it and its last posted definition (without readings).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MirrorRecord {
    pub id: u64,
    pub lfdi: String,
    pub mup: MirrorUsagePoint,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StoredReading {
    pub lfdi: String,
    pub mirror: u64,
    pub mmr: String,
    pub reading: RegisterReading,
    pub received_at: i64,
}

/// Deletes up to `max` entries of a table keyed by (register, time) whose time is before
/// `before`; returns how many.
fn prune_before(
    table: &mut redb::Table<(&str, u32), &[u8]>,
    before: u32,
    max: usize,
) -> Result<usize> {
    let mut old: Vec<(String, u32)> = Vec::new();
    for entry in table.iter()? {
        let (k, _) = entry?;
        let (key, t) = k.value();
        if t < before {
            old.push((key.to_string(), t));
            if old.len() == max {
                break;
            }
        }
    }
    for (key, t) in &old {
        table.remove((key.as_str(), *t))?;
    }
    Ok(old.len())
}

/// What one `prune` deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub readings: usize,
    pub measurements: usize,
    pub batches: usize,
}

impl Pruned {
    pub fn total(&self) -> usize {
        self.readings + self.measurements + self.batches
    }
}

/// A meter's import and export registers measured at the same time: what a reading of the
/// oracle carries. The attestor never combines registers of different times.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub timestamp: u32,
    pub import_wh: u64,
    pub export_wh: u64,
    pub quality: u8,
}

/// The last reading the attestor signed for a meter.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attested {
    pub timestamp: u32,
    pub import_wh: u64,
    pub export_wh: u64,
}

/// A signed batch waiting for (or acknowledged by) the keeper.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SignedBatch {
    pub sequence: u64,
    /// SHA-256 of the message, hex: the oracle names applied batches by it.
    pub hash: String,
    /// The attestation message (`oracle::attestation`), base64.
    pub message: String,
    /// The attestor's Ed25519 public key (32 bytes), base64.
    pub attestor: String,
    /// Ed25519 signature over `message`, base64.
    pub signature: String,
    /// The LFDIs (hex) of the readings' meters, in order: the keeper passes their registry
    /// `Meter` and oracle `MeterState` accounts (the message commits to the latter).
    pub meters: Vec<String>,
    pub readings: u16,
    pub created_at: i64,
    pub acknowledged: bool,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).context("corrupt record in the store")
}

/// The record at `key` of a JSON-valued table, read the same way in write and read
/// transactions.
fn json_at<'k, K: redb::Key + 'static, T: DeserializeOwned>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
) -> Result<Option<T>> {
    table.get(key)?.map(|v| from_json(v.value())).transpose()
}

pub fn mirror_key(lfdi: &str, mrid: &str) -> String {
    format!("{lfdi}/{mrid}")
}

fn latest_key(lfdi: &str, flow: Flow) -> String {
    match flow {
        Flow::Import => format!("{lfdi}/import"),
        Flow::Export => format!("{lfdi}/export"),
    }
}

pub struct Store {
    db: Database,
    sync: GroupSync,
}

/// Group commit. Each write transaction commits without syncing (`Durability::None`), then
/// waits for a synced commit that started after it: one fsync makes every earlier commit
/// durable (redb: a `None` commit persists with the next `Immediate` one). Concurrent
/// requests share fsyncs instead of queueing one each, and nobody returns before its data is
/// on disk.
#[derive(Default)]
struct GroupSync {
    state: std::sync::Mutex<SyncState>,
    done: std::sync::Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Tickets handed out: one per commit waiting to be made durable.
    requested: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    syncing: bool,
    /// Set by a failed or panicked sync: every write fails from then on.
    failed: Option<String>,
}

/// Puts `syncing` back and wakes the waiters however the sync ends, a panic included: a
/// sync that unwinds must not leave every later writer waiting for ever.
struct SyncGuard<'a> {
    sync: &'a GroupSync,
}

impl Drop for SyncGuard<'_> {
    fn drop(&mut self) {
        let mut state = match self.sync.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.syncing {
            // Still set: the sync did not return (it panicked). Writers fail from now on.
            state.syncing = false;
            state.failed = Some("the store's sync panicked".into());
        }
        self.sync.done.notify_all();
    }
}

impl GroupSync {
    /// Returns once everything committed before the call is durable. A failed sync fails
    /// the store for good (after an fsync error the kernel may have dropped the dirty pages,
    /// so a later successful fsync would prove nothing): the bridge stops and its supervisor
    /// restarts it on what is really on disk.
    fn wait_durable(&self, db: &Database) -> Result<()> {
        let mut state = self.state.lock().expect("sync lock");
        state.requested += 1;
        let ticket = state.requested;
        loop {
            if let Some(reason) = &state.failed {
                bail!(StorageFailed(reason.clone()));
            }
            if state.durable >= ticket {
                return Ok(());
            }
            if !state.syncing {
                state.syncing = true;
                let target = state.requested;
                drop(state);
                let guard = SyncGuard { sync: self };
                let result = (|| -> Result<()> {
                    let mut txn = db.begin_write()?;
                    txn.set_durability(redb::Durability::Immediate)?;
                    txn.commit()?;
                    Ok(())
                })();
                // It returned: the guard is only for an unwind.
                std::mem::forget(guard);
                state = self.state.lock().expect("sync lock");
                state.syncing = false;
                match &result {
                    Ok(()) => state.durable = state.durable.max(target),
                    Err(e) => state.failed = Some(format!("sync failed: {e:#}")),
                }
                self.done.notify_all();
                continue;
            }
            state = self.done.wait(state).expect("sync lock");
        }
    }

    fn failure(&self) -> Option<String> {
        match self.state.lock() {
            Ok(s) => s.failed.clone(),
            Err(_) => Some("the store's sync lock is poisoned".into()),
        }
    }

    fn fail(&self, reason: String) {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.failed.get_or_insert(reason);
        self.done.notify_all();
    }
}

/// The store can no longer make writes durable; the process must stop (a supervisor
/// restarts it on what is on disk).
#[derive(Debug, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct StorageFailed(pub String);

/// Changes inside one write transaction; nothing is visible or durable until it commits.
pub struct Writer<'a> {
    txn: &'a redb::WriteTransaction,
}

/// A consistent snapshot for reads.
pub struct Reader {
    txn: redb::ReadTransaction,
}

impl Store {
    /// Prunes everything older than `cutoff` in transactions of at most 10,000 deletions
    /// each (so that posts wait at most one of them), until nothing is left to prune.
    pub fn prune(&self, cutoff: i64) -> Result<Pruned> {
        let mut all = Pruned::default();
        loop {
            let p = self.write(|w| w.prune(cutoff, 10_000))?;
            all.readings += p.readings;
            all.measurements += p.measurements;
            all.batches += p.batches;
            if p.total() == 0 {
                return Ok(all);
            }
        }
    }

    pub fn open(path: &Path) -> Result<Store> {
        let existed = path.exists();
        let mut db =
            Database::create(path).with_context(|| format!("open store {}", path.display()))?;
        // Space freed by pruning goes back to the file system at start.
        if existed {
            db.compact()
                .with_context(|| format!("compact store {}", path.display()))?;
        }
        if !existed {
            crate::sync_parent_dir(path)?;
        }
        let txn = db.begin_write()?;
        {
            // Create every table so that readers never meet a missing one.
            txn.open_table(META)?;
            txn.open_table(MIRRORS)?;
            txn.open_table(MIRROR_KEYS)?;
            txn.open_table(MMR_OWNERS)?;
            txn.open_table(READINGS)?;
            txn.open_table(LATEST)?;
            txn.open_table(MEASUREMENTS)?;
            txn.open_table(DESIGNATED)?;
            txn.open_table(PAIRS)?;
            txn.open_table(ATTESTED)?;
            txn.open_table(BATCHES)?;
        }
        txn.commit()?;
        Ok(Store {
            db,
            sync: GroupSync::default(),
        })
    }

    /// Runs `f` in a write transaction and, if it returns Ok, commits; returns once the
    /// commit is on disk. Readers may see the commit a moment before it is durable (group
    /// commit); what others act on must be written with [`Store::write_durable`].
    pub fn write<T, E: From<anyhow::Error>>(
        &self,
        f: impl FnOnce(&Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        self.check()?;
        let mut txn = self.db.begin_write().map_err(anyhow::Error::from)?;
        txn.set_durability(redb::Durability::None)
            .map_err(anyhow::Error::from)?;
        let value = f(&Writer { txn: &txn })?;
        txn.commit().map_err(anyhow::Error::from)?;
        self.sync.wait_durable(&self.db)?;
        Ok(value)
    }

    /// Like [`Store::write`], but the commit becomes visible to readers only once it is on
    /// disk (with every earlier commit): for what leaves the process on a read, such as the
    /// signed batches the keeper fetches. A batch served before its fsync could be lost in
    /// a crash and its sequence re-signed with other content.
    pub fn write_durable<T, E: From<anyhow::Error>>(
        &self,
        f: impl FnOnce(&Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        self.check()?;
        let mut txn = self.db.begin_write().map_err(anyhow::Error::from)?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(anyhow::Error::from)?;
        let value = f(&Writer { txn: &txn })?;
        if let Err(e) = txn.commit() {
            self.sync.fail(format!("durable commit failed: {e}"));
            return Err(anyhow::Error::from(e).into());
        }
        Ok(value)
    }

    /// Why the store stopped accepting writes, if it did.
    pub fn failure(&self) -> Option<String> {
        self.sync.failure()
    }

    fn check(&self) -> Result<()> {
        match self.sync.failure() {
            Some(reason) => Err(StorageFailed(reason).into()),
            None => Ok(()),
        }
    }

    /// Batches signed so far (the last sequence handed out).
    pub fn batches_signed(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(LAST_BATCH)?.map(|v| v.value()).unwrap_or(0))
    }

    pub fn read(&self) -> Result<Reader> {
        Ok(Reader {
            txn: self.db.begin_read()?,
        })
    }
}

impl Writer<'_> {
    fn next(&self, counter: &str) -> Result<u64> {
        let mut meta = self.txn.open_table(META)?;
        let current = meta.get(counter)?.map(|v| v.value()).unwrap_or(0);
        let next = current.checked_add(1).context("counter overflow")?;
        meta.insert(counter, next)?;
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
        json_at(&self.txn.open_table(MIRRORS)?, id)
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
        self.txn
            .open_table(MIRRORS)?
            .insert(id, to_json(&record).as_slice())?;
        self.txn
            .open_table(MIRROR_KEYS)?
            .insert(mirror_key(lfdi, &mup.mrid).as_str(), id)?;
        Ok(id)
    }

    pub fn delete_mirror(&self, record: &MirrorRecord) -> Result<()> {
        self.txn.open_table(MIRRORS)?.remove(record.id)?;
        self.txn
            .open_table(MIRROR_KEYS)?
            .remove(mirror_key(&record.lfdi, &record.mup.mrid).as_str())?;
        let mut owners = self.txn.open_table(MMR_OWNERS)?;
        let mut designated = self.txn.open_table(DESIGNATED)?;
        for mmr in &record.mup.mirror_meter_readings {
            owners.remove(mmr.mrid.as_str())?;
            // A register designated for attestation is released with its mirror: the
            // device's next whole Wh register in that direction takes its place.
            for flow in [Flow::Import, Flow::Export] {
                let key = latest_key(&record.lfdi, flow);
                let held = designated
                    .get(key.as_str())?
                    .is_some_and(|v| v.value() == mmr.mrid);
                if held {
                    designated.remove(key.as_str())?;
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
        self.txn
            .open_table(DESIGNATED)?
            .insert(latest_key(lfdi, flow).as_str(), mmr)?;
        Ok(())
    }

    /// Deletes, in one transaction and at most `max` of each, what is older than `cutoff`
    /// (Unix seconds): register readings and measurements whose time is before it, and acknowledged batches created before it.
    /// Unacknowledged batches are never deleted; the latest register values, pairs and
    /// attestation marks (one each per meter) stay.
    pub fn prune(&self, cutoff: i64, max: usize) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        let before = u32::try_from(cutoff.max(0)).unwrap_or(u32::MAX);
        pruned.readings = prune_before(&mut self.txn.open_table(READINGS)?, before, max)?;
        pruned.measurements = prune_before(&mut self.txn.open_table(MEASUREMENTS)?, before, max)?;
        {
            let through = self
                .txn
                .open_table(META)?
                .get(ACKNOWLEDGED_THROUGH)?
                .map(|v| v.value())
                .unwrap_or(0);
            let mut batches = self.txn.open_table(BATCHES)?;
            let mut old = Vec::new();
            for entry in batches.range(..=through)? {
                let (sequence, v) = entry?;
                let b: SignedBatch = from_json(v.value())?;
                if b.created_at >= cutoff || old.len() == max {
                    break;
                }
                old.push(sequence.value());
            }
            for sequence in &old {
                batches.remove(sequence)?;
            }
            pruned.batches = old.len();
        }
        Ok(pruned)
    }

    /// The MirrorMeterReadings attested for `lfdi`'s import and export, if designated.
    pub fn designated_pair(&self, lfdi: &str) -> Result<[Option<String>; 2]> {
        let table = self.txn.open_table(DESIGNATED)?;
        let get = |flow| -> Result<Option<String>> {
            Ok(table
                .get(latest_key(lfdi, flow).as_str())?
                .map(|v| v.value().to_string()))
        };
        Ok([get(Flow::Import)?, get(Flow::Export)?])
    }

    /// Stores a reading that is not attested. The same reading again (a retry) is a no-op;
    /// another one at the same time is refused (`Ok(Err(stored))`).
    pub fn record_measurement(
        &self,
        lfdi: &str,
        mmr: &str,
        m: &crate::normalize::Measurement,
    ) -> Result<Result<(), crate::normalize::Measurement>> {
        let key = mirror_key(lfdi, mmr);
        let mut table = self.txn.open_table(MEASUREMENTS)?;
        let stored: Option<crate::normalize::Measurement> = json_at(&table, (key.as_str(), m.end))?;
        match stored {
            Some(s) if s == *m => Ok(Ok(())),
            Some(s) => Ok(Err(s)),
            None => {
                table.insert((key.as_str(), m.end), to_json(m).as_slice())?;
                Ok(Ok(()))
            }
        }
    }

    pub fn mmr_owner(&self, mrid: &str) -> Result<Option<String>> {
        Ok(self
            .txn
            .open_table(MMR_OWNERS)?
            .get(mrid)?
            .map(|v| v.value().to_string()))
    }

    pub fn set_mmr_owner(&self, mrid: &str, lfdi: &str) -> Result<()> {
        self.txn.open_table(MMR_OWNERS)?.insert(mrid, lfdi)?;
        Ok(())
    }

    pub fn latest(&self, lfdi: &str, flow: Flow) -> Result<Option<RegisterReading>> {
        json_at(
            &self.txn.open_table(LATEST)?,
            latest_key(lfdi, flow).as_str(),
        )
    }

    /// The Wh stored for MirrorMeterReading `mmr` of `lfdi` at `timestamp`, if any.
    pub fn reading_at(&self, lfdi: &str, mmr: &str, timestamp: u32) -> Result<Option<u64>> {
        let stored: Option<StoredReading> = json_at(
            &self.txn.open_table(READINGS)?,
            (mirror_key(lfdi, mmr).as_str(), timestamp),
        )?;
        Ok(stored.map(|r| r.reading.wh))
    }

    /// Stores an accepted reading and makes it the meter's latest; when the
    /// other register's latest reading has the same time, the two become the meter's pair.
    pub fn record_reading(&self, reading: &StoredReading) -> Result<()> {
        let r = &reading.reading;
        self.txn.open_table(READINGS)?.insert(
            (
                mirror_key(&reading.lfdi, &reading.mmr).as_str(),
                r.timestamp,
            ),
            to_json(reading).as_slice(),
        )?;
        let key = latest_key(&reading.lfdi, r.flow);
        self.txn
            .open_table(LATEST)?
            .insert(key.as_str(), to_json(r).as_slice())?;
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
                self.txn
                    .open_table(PAIRS)?
                    .insert(reading.lfdi.as_str(), to_json(&pair).as_slice())?;
            }
        }
        Ok(())
    }

    /// The meter's latest import and export measured at the same time.
    pub fn pair(&self, lfdi: &str) -> Result<Option<Pair>> {
        json_at(&self.txn.open_table(PAIRS)?, lfdi)
    }

    pub fn attested(&self, lfdi: &str) -> Result<Option<Attested>> {
        json_at(&self.txn.open_table(ATTESTED)?, lfdi)
    }

    pub fn set_attested(&self, lfdi: &str, attested: &Attested) -> Result<()> {
        self.txn
            .open_table(ATTESTED)?
            .insert(lfdi, to_json(attested).as_slice())?;
        Ok(())
    }

    pub fn next_batch_sequence(&self) -> Result<u64> {
        self.next(LAST_BATCH)
    }

    pub fn put_batch(&self, batch: &SignedBatch) -> Result<()> {
        self.txn
            .open_table(BATCHES)?
            .insert(batch.sequence, to_json(batch).as_slice())?;
        Ok(())
    }

    pub fn batch(&self, sequence: u64) -> Result<Option<SignedBatch>> {
        json_at(&self.txn.open_table(BATCHES)?, sequence)
    }

    /// Marks batch `sequence` confirmed on-chain (again is fine); false if it is unknown.
    /// Moves the acknowledged-through mark over every contiguous acknowledged batch.
    pub fn acknowledge(&self, sequence: u64) -> Result<bool> {
        let Some(mut batch) = self.batch(sequence)? else {
            return Ok(false);
        };
        batch.acknowledged = true;
        self.put_batch(&batch)?;
        let mut meta = self.txn.open_table(META)?;
        let mut through = meta
            .get(ACKNOWLEDGED_THROUGH)?
            .map(|v| v.value())
            .unwrap_or(0);
        let batches = self.txn.open_table(BATCHES)?;
        while let Some(next) = through.checked_add(1) {
            match json_at::<u64, SignedBatch>(&batches, next)? {
                Some(b) if b.acknowledged => through = next,
                _ => break,
            }
        }
        meta.insert(ACKNOWLEDGED_THROUGH, through)?;
        Ok(true)
    }
}

impl Reader {
    /// The non-attested readings stored for MirrorMeterReading `mmr` of `lfdi`, in time order.
    pub fn measurements(
        &self,
        lfdi: &str,
        mmr: &str,
    ) -> Result<Vec<crate::normalize::Measurement>> {
        let key = mirror_key(lfdi, mmr);
        let table = self.txn.open_table(MEASUREMENTS)?;
        let mut out = Vec::new();
        for entry in table.range((key.as_str(), 0u32)..=(key.as_str(), u32::MAX))? {
            let (_, v) = entry?;
            out.push(from_json(v.value())?);
        }
        Ok(out)
    }

    /// The last reading attested for `lfdi`.
    pub fn attested(&self, lfdi: &str) -> Result<Option<Attested>> {
        json_at(&self.txn.open_table(ATTESTED)?, lfdi)
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

    /// Every accepted reading, in arrival order.
    pub fn readings(&self) -> Result<Vec<StoredReading>> {
        let table = self.txn.open_table(READINGS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            out.push(from_json(v.value())?);
        }
        Ok(out)
    }

    pub fn latest(&self, lfdi: &str, flow: Flow) -> Result<Option<RegisterReading>> {
        json_at(
            &self.txn.open_table(LATEST)?,
            latest_key(lfdi, flow).as_str(),
        )
    }

    /// Up to `limit` unacknowledged batches, oldest first. The scan starts after the
    /// acknowledged-through mark, so it does not grow with the bridge's history.
    pub fn unacknowledged(&self, limit: usize) -> Result<Vec<SignedBatch>> {
        let through = self
            .txn
            .open_table(META)?
            .get(ACKNOWLEDGED_THROUGH)?
            .map(|v| v.value())
            .unwrap_or(0);
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

/// mRIDs compare as numbers: left-pad the hex to 32 digits.
fn mrid_order(mrid: &str) -> String {
    format!("{:0>32}", mrid.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mup(mrid: &str) -> MirrorUsagePoint {
        MirrorUsagePoint {
            mrid: mrid.into(),
            role_flags: "03".into(),
            service_category_kind: 0,
            status: 1,
            device_lfdi: "AB".repeat(20),
            ..Default::default()
        }
    }

    fn batch(sequence: u64, created_at: i64) -> SignedBatch {
        SignedBatch {
            sequence,
            hash: format!("{sequence:064x}"),
            message: String::new(),
            attestor: String::new(),
            signature: String::new(),
            meters: vec![],
            readings: 1,
            created_at,
            acknowledged: false,
        }
    }

    #[test]
    fn pruning_keeps_the_window_and_every_unacknowledged_batch_and_compacts_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.redb");
        let store = Store::open(&path).unwrap();
        let lfdi = "AA".repeat(20);
        let day = 86_400;
        // 40 days of one reading and one measurement every 5 minutes, then three batches: the
        // first two old (one acknowledged), the third recent.
        for d in 0..40i64 {
            store
                .write(|w| -> Result<()> {
                    for m in 0..288i64 {
                        let t = d * day + m * 300 + 61;
                        w.record_reading(&StoredReading {
                            lfdi: lfdi.clone(),
                            mirror: 1,
                            mmr: "0B".into(),
                            reading: RegisterReading {
                                flow: Flow::Export,
                                timestamp: t as u32,
                                start: t as u32 - 60,
                                wh: t as u64,
                                quality: 0,
                            },
                            received_at: t,
                        })?;
                        let m = crate::normalize::Measurement {
                            start: t as u32 - 60,
                            end: t as u32,
                            value: 230,
                            power: 0,
                            quality: 0,
                            tou_tier: None,
                        };
                        assert!(w.record_measurement(&lfdi, "0C", &m)?.is_ok());
                    }
                    Ok(())
                })
                .unwrap();
        }
        store
            .write(|w| -> Result<()> {
                w.put_batch(&batch(1, day))?;
                w.put_batch(&batch(2, 2 * day))?;
                w.put_batch(&batch(3, 39 * day))?;
                assert!(w.acknowledge(1)?);
                Ok(())
            })
            .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let cutoff = 10 * day + 60;
        let pruned = store.prune(cutoff).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                readings: 10 * 288,
                measurements: 10 * 288,
                batches: 1
            }
        );
        let reader = store.read().unwrap();
        let left = reader.readings().unwrap();
        assert_eq!(left.len(), 30 * 288);
        assert!(left.iter().all(|r| r.received_at >= cutoff));
        assert_eq!(reader.measurements(&lfdi, "0C").unwrap().len(), 30 * 288);
        // Batch 2 is old but not acknowledged: it stays, as does the recent one.
        assert_eq!(
            reader
                .unacknowledged(10)
                .unwrap()
                .iter()
                .map(|b| b.sequence)
                .collect::<Vec<_>>(),
            vec![2, 3]
        );
        drop(reader);
        // A pruned reading is forgotten by the retry index; a kept one is not.
        store
            .write(|w| -> Result<()> {
                assert_eq!(w.reading_at(&lfdi, "0B", 61)?, None);
                assert!(w.reading_at(&lfdi, "0B", (cutoff + 1) as u32)?.is_some());
                Ok(())
            })
            .unwrap();
        assert_eq!(store.prune(cutoff).unwrap(), Pruned::default());
        drop(store);
        // The next start compacts the file.
        let store = Store::open(&path).unwrap();
        drop(store);
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(
            after < before,
            "{after} bytes after compaction, {before} before"
        );
    }

    #[test]
    fn mirrors_are_keyed_by_device_and_mrid_and_listed_by_mrid_descending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
        let (a, b) = ("AA".repeat(20), "BB".repeat(20));
        store
            .write(|w| -> Result<()> {
                assert_eq!(w.put_mirror(None, &a, &mup("01"))?, 1);
                assert_eq!(w.put_mirror(None, &a, &mup("0F"))?, 2);
                // Another device may use the same mRID: it is a different mirror.
                assert_eq!(w.put_mirror(None, &b, &mup("01"))?, 3);
                assert_eq!(w.mirror_id(&a, "01")?, Some(1));
                assert_eq!(w.mirror_id(&b, "01")?, Some(3));
                Ok(())
            })
            .unwrap();
        let mirrors = store.read().unwrap().mirrors_of(&a).unwrap();
        assert_eq!(mirrors.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
        let result: Result<()> = store.write(|w| {
            w.put_mirror(None, "AA", &mup("01"))?;
            anyhow::bail!("refused")
        });
        assert!(result.is_err());
        assert_eq!(store.read().unwrap().mirror_count().unwrap(), 0);
    }

    #[test]
    fn acknowledging_out_of_order_keeps_the_gaps_unacknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
        let batch = |sequence| SignedBatch {
            sequence,
            hash: String::new(),
            message: String::new(),
            attestor: String::new(),
            signature: String::new(),
            meters: vec![],
            readings: 1,
            created_at: 0,
            acknowledged: false,
        };
        let unacked = |store: &Store| -> Vec<u64> {
            store
                .read()
                .unwrap()
                .unacknowledged(10)
                .unwrap()
                .iter()
                .map(|b| b.sequence)
                .collect()
        };
        store
            .write(|w| -> Result<()> {
                for s in 1..=3 {
                    w.put_batch(&batch(s))?;
                }
                Ok(())
            })
            .unwrap();
        assert!(store.write(|w| w.acknowledge(2)).unwrap());
        assert_eq!(unacked(&store), vec![1, 3]);
        assert!(store.write(|w| w.acknowledge(1)).unwrap());
        assert_eq!(unacked(&store), vec![3]);
        assert!(!store.write(|w| w.acknowledge(9)).unwrap());
        assert_eq!(store.read().unwrap().unacknowledged(0).unwrap().len(), 0);
    }

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .write(|w| -> Result<()> {
                    let id = w.put_mirror(None, "AA", &mup("01"))?;
                    w.record_reading(&StoredReading {
                        lfdi: "AA".into(),
                        mirror: id,
                        mmr: "02".into(),
                        reading: RegisterReading {
                            flow: Flow::Export,
                            timestamp: 100,
                            start: 40,
                            wh: 5,
                            quality: 0,
                        },
                        received_at: 1,
                    })?;
                    Ok(())
                })
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let reader = store.read().unwrap();
        assert_eq!(reader.readings().unwrap().len(), 1);
        assert_eq!(reader.latest("AA", Flow::Export).unwrap().unwrap().wh, 5);
        assert_eq!(reader.latest("AA", Flow::Import).unwrap(), None);
    }
}
