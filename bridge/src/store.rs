//! The bridge's durable state, in an embedded ACID database (redb). Every accepted reading is
//! committed here (fsync'd) before the meter gets its 201/204, and the attestor's batches wait
//! here until the keeper acknowledges them, so a crash loses nothing acknowledged.
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
#[cfg(test)]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use anyhow::{anyhow, Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::normalize::{Flow, RegisterReading};
use crate::xml::MirrorUsagePoint;

mod hot;
mod records;
use hot::{CheckpointPolicy, Hot, Overlay};
use records::READING_BYTES;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// mirror id -> MirrorRecord
const MIRRORS: TableDefinition<u64, &[u8]> = TableDefinition::new("mirrors");
/// "LFDI/mRID" -> mirror id: mirrors are keyed by device and mRID.
const MIRROR_KEYS: TableDefinition<&str, u64> = TableDefinition::new("mirror_keys");
/// MirrorMeterReading mRID -> LFDI of the device that first used it. mRIDs are globally
/// unique (IEEE 2030.5; CSIP-AUS S-ALL-05 refuses a colliding one).
const MMR_OWNERS: TableDefinition<&str, &str> = TableDefinition::new("mmr_owners");
/// `reading time << 32 | register id` -> StoredReading (store/records.rs): every accepted
/// register reading, so that a retried post (its reply lost) is recognised reading by
/// reading. Time first: the readings of one batch of posts (all of about the same moment)
/// land on adjacent pages of the tree, and pruning deletes a prefix. Fixed 8-byte keys and
/// 30-byte values: the readings of a second at 10,000 meters arrive in random register
/// order, so a commit rewrites every page the current second fills; small entries keep
/// those pages few (docs/benchmarks.md).
const READINGS: TableDefinition<u64, &[u8; READING_BYTES]> =
    TableDefinition::new("reading_records");
/// "LFDI/MMR-mRID" -> register id, given at the register's first reading; and back.
const REGISTER_IDS: TableDefinition<&str, u32> = TableDefinition::new("register_ids");
const REGISTER_NAMES: TableDefinition<u32, &str> = TableDefinition::new("register_names");
/// (reading time, "LFDI/MMR-mRID") -> Measurement (JSON): readings that are not the meter's
/// attested registers (power, voltage, frequency, other Wh registers...). Time first, as
/// READINGS.
const MEASUREMENTS: TableDefinition<(u32, &str), &[u8]> =
    TableDefinition::new("measurements_by_time");
/// Earlier layouts, moved into the tables above (and deleted) at the first start, oldest
/// first: an arrival-ordered log of JSON readings with a (register, time) index (the next
/// layout's bridge left the log unread beside its own table, so both may hold a reading:
/// it lands once, under one key); readings and measurements keyed register first; and
/// readings under `(time, "LFDI/MMR-mRID")` keys with JSON values.
const ARRIVAL_READINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("readings");
const ARRIVAL_INDEX: TableDefinition<(&str, u32), u64> = TableDefinition::new("reading_at");
const OLD_READINGS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("register_readings");
const OLD_MEASUREMENTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("measurements");
const JSON_READINGS: TableDefinition<(u32, &str), &[u8]> =
    TableDefinition::new("register_readings_by_time");
/// "LFDI/import" or "LFDI/export" -> the mRID of the MirrorMeterReading whose register is
/// attested for that direction (the first whole Wh register the device mirrored).
const DESIGNATED: TableDefinition<&str, &str> = TableDefinition::new("designated");
/// "LFDI/import" or "LFDI/export" -> the latest RegisterReading, as of the last
/// checkpoint: the store keeps them in memory, and JOURNAL holds the changes since
/// (store/hot.rs).
const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");
/// LFDI -> Pair: the latest import and export registers measured at the same time; as
/// LATEST.
const PAIRS: TableDefinition<&str, &[u8]> = TableDefinition::new("pairs");
/// sequence -> what one commit changed in LATEST and PAIRS since the last checkpoint
/// (binary, store/hot.rs).
const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
/// LFDI -> Attested: what the attestor last signed for the meter.
const ATTESTED: TableDefinition<&str, &[u8]> = TableDefinition::new("attested");
/// batch sequence -> SignedBatch
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");

const NEXT_MIRROR: &str = "next_mirror_id";
const NEXT_REGISTER: &str = "next_register_id";
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

/// Moves a register-first table of a store before 2026-11-23 into its time-first
/// successor and deletes it; returns how many entries moved (0 for a newer store).
fn move_to_time_first(
    txn: &redb::WriteTransaction,
    old: TableDefinition<(&str, u32), &[u8]>,
    new: TableDefinition<(u32, &str), &[u8]>,
) -> Result<u64> {
    let mut moved = 0u64;
    {
        let from = txn.open_table(old)?;
        let mut to = txn.open_table(new)?;
        for entry in from.iter()? {
            let (k, v) = entry?;
            let (key, t) = k.value();
            to.insert((t, key), v.value())?;
            moved += 1;
        }
    }
    txn.delete_table(old)?;
    Ok(moved)
}

/// Moves the register readings of an earlier layout (JSON values, any key) into READINGS
/// and deletes its table, if the store has it (`tables`: the store's table names).
fn move_json_readings<K: redb::Key + 'static>(
    txn: &redb::WriteTransaction,
    tables: &[String],
    old: TableDefinition<K, &[u8]>,
) -> Result<()> {
    if !tables.iter().any(|t| t == old.name()) {
        return Ok(());
    }
    let mut moved = 0u64;
    {
        let from = txn.open_table(old)?;
        for entry in from.iter()? {
            let (_, v) = entry?;
            let reading: StoredReading = from_json(v.value())?;
            insert_reading(txn, &reading)?;
            moved += 1;
        }
    }
    txn.delete_table(old)?;
    tracing::info!(
        table = old.name(),
        moved,
        "store: register readings moved to the compact layout"
    );
    Ok(())
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

fn insert_reading(txn: &redb::WriteTransaction, reading: &StoredReading) -> Result<()> {
    let name = mirror_key(&reading.lfdi, &reading.mmr);
    let id = register_id(txn, &name, true)?.expect("assigned");
    txn.open_table(READINGS)?.insert(
        records::reading_key(reading.reading.timestamp, id),
        &records::encode_reading(reading),
    )?;
    Ok(())
}

/// Writes the journal's changes (a store closed or crashed since its last checkpoint) into
/// the LATEST and PAIRS tables and empties it; returns the sequence the next entry takes.
fn fold_journal(txn: &redb::WriteTransaction) -> Result<u64> {
    let mut journal = txn.open_table(JOURNAL)?;
    let mut changes = Overlay::default();
    let mut entries = Vec::new();
    for entry in journal.iter()? {
        let (sequence, bytes) = entry?;
        let overlay = hot::decode(bytes.value())
            .with_context(|| format!("journal entry {}", sequence.value()))?;
        changes.absorb(overlay);
        entries.push(sequence.value());
    }
    let next = entries.last().map_or(0, |last| last + 1);
    if entries.is_empty() {
        return Ok(next);
    }
    let mut latest = txn.open_table(LATEST)?;
    for (key, r) in &changes.latest {
        latest.insert(key.as_str(), to_json(r).as_slice())?;
    }
    let mut pairs = txn.open_table(PAIRS)?;
    for (key, p) in &changes.pairs {
        pairs.insert(key.as_str(), to_json(p).as_slice())?;
    }
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

/// Loads the latest registers and pairs (after [`fold_journal`]).
fn load_hot(db: &Database, journal_next: u64, policy: &CheckpointPolicy) -> Result<Hot> {
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

    pub fn add(&mut self, other: Pruned) {
        self.readings += other.readings;
        self.measurements += other.measurements;
        self.batches += other.batches;
    }
}

/// Most entries of each kind one pruning commit deletes: bounds how long it holds the write
/// lock.
const PRUNE_CHUNK: usize = 10_000;

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
    db: Arc<Database>,
    shared: Arc<Shared>,
    /// Jobs for the writer thread; `None` once the store is shutting down.
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Work for the direct thread ([`Store::direct`]); `None` once shutting down.
    direct: Option<mpsc::Sender<DirectJob>>,
}

type DirectJob = Box<dyn FnOnce() + Send>;

/// Most jobs one write transaction takes: bounds the transaction's size (a job may carry up
/// to 1,000 readings) and how long one fsync keeps the first job of a batch waiting.
pub const MAX_JOBS_PER_BATCH: usize = 1_024;

/// What the writer thread and the callers share.
struct Shared {
    /// Set by a failed commit or fsync: every write fails from then on (after an fsync error
    /// the kernel may have dropped the dirty pages, so a later successful fsync would prove
    /// nothing). The bridge stops and its supervisor restarts it on what is really on disk.
    failed: Mutex<Option<String>>,
    /// Callers of [`Store::write_now`] waiting for redb's write lock: the writer thread lets
    /// them in between batches, so that the attestor is not starved under load.
    direct_waiting: AtomicUsize,
    /// Batches committed, and jobs in them (read by the tests).
    #[cfg(test)]
    batches: AtomicU64,
    #[cfg(test)]
    jobs: AtomicU64,
    /// The latest registers and pairs, as committed (store/hot.rs). Locked after redb's
    /// write lock, never before: a commit holds it from before its commit until its changes
    /// are merged, so that the next write transaction reads them.
    hot: Mutex<Hot>,
    checkpoints: CheckpointPolicy,
}

impl Shared {
    fn new(hot: Hot, checkpoints: CheckpointPolicy) -> Shared {
        Shared {
            failed: Mutex::new(None),
            direct_waiting: AtomicUsize::new(0),
            #[cfg(test)]
            batches: AtomicU64::new(0),
            #[cfg(test)]
            jobs: AtomicU64::new(0),
            hot: Mutex::new(hot),
            checkpoints,
        }
    }

    /// The in-memory state. A panic while it was held (in a commit) leaves it as it was
    /// before that commit's merge, and the store failed: reads may go on.
    fn hot(&self) -> MutexGuard<'_, Hot> {
        match self.hot.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn failure(&self) -> Option<String> {
        match self.failed.lock() {
            Ok(f) => f.clone(),
            Err(_) => Some("the store's failure lock is poisoned".into()),
        }
    }

    fn fail(&self, reason: String) {
        let mut failed = match self.failed.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        if failed.is_none() {
            tracing::error!(reason, "storage failure");
            *failed = Some(reason);
        }
    }
}

/// One request's changes, run by the writer thread inside a transaction shared with the
/// other requests of its batch.
trait Job: Send {
    /// Applies the changes; false if the job refused (or panicked), in which case the
    /// transaction holds a part of its changes and must be thrown away. A job that succeeded
    /// may run again, in a fresh transaction, when another job of its batch failed after it
    /// (replay); it must then make the same changes (it is deterministic in the store's state).
    fn run(&mut self, w: &Writer) -> bool;
    /// Delivers the job's result once its fate is known: `committed` is the batch's commit
    /// for a job that succeeded; a job that refused gets its own error whatever happened.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct TypedJob<F, T, E> {
    f: F,
    result: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for TypedJob<F, T, E>
where
    F: FnMut(&Writer) -> Result<T, E> + Send,
    T: Send,
    E: From<anyhow::Error> + Send,
{
    fn run(&mut self, w: &Writer) -> bool {
        let result = match catch_unwind(AssertUnwindSafe(|| (self.f)(w))) {
            Ok(r) => r,
            Err(_) => Err(E::from(anyhow!(
                "a write panicked; its changes were discarded"
            ))),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(mut self: Box<Self>, committed: Result<(), String>) {
        let result = match (self.result.take(), committed) {
            // Refused: none of its changes was committed, whatever happened to the others.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(reason)) => Err(E::from(StorageFailed(reason).into())),
            (None, Ok(())) => Err(E::from(anyhow!("a write job was never run"))),
        };
        // The caller may have gone (its thread unwound); nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// The writer thread: takes every waiting job (up to [`MAX_JOBS_PER_BATCH`]), applies them in
/// one write transaction, commits it with one fsync, and only then answers them all. A job
/// that refuses is taken out: the transaction is thrown away, the jobs before it replayed in a
/// fresh one and committed (not yet synced: the batch's final commit syncs them), and the
/// batch goes on in another; so each job runs at most twice and one bad request costs one
/// extra commit, never the others' writes.
fn writer_loop(db: Arc<Database>, shared: Arc<Shared>, jobs: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_JOBS_PER_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Some(reason) = shared.failure() {
            for job in batch {
                job.finish(Err(reason.clone()));
            }
            continue;
        }
        // Direct writers (the attestor, acknowledgements, pruning) go first.
        while shared.direct_waiting.load(Ordering::Acquire) > 0 {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let count = batch.len() as u64;
        let started = std::time::Instant::now();
        let (succeeded, refused, committed) = run_batch(&db, &shared, batch);
        tracing::debug!(
            jobs = count,
            refused = refused.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "store: batch committed"
        );
        if let Err(reason) = &committed {
            shared.fail(reason.clone());
        } else {
            #[cfg(test)]
            {
                shared.batches.fetch_add(1, Ordering::Relaxed);
                shared.jobs.fetch_add(count, Ordering::Relaxed);
            }
        }
        for job in refused {
            job.finish(Ok(()));
        }
        for job in succeeded {
            job.finish(committed.clone());
        }
    }
}

/// Runs one batch; returns the jobs that succeeded, those that refused, and the outcome of the
/// commit that decides the first group's fate.
type BatchOutcome = (Vec<Box<dyn Job>>, Vec<Box<dyn Job>>, Result<(), String>);

fn run_batch(db: &Database, shared: &Shared, batch: Vec<Box<dyn Job>>) -> BatchOutcome {
    let begin = |durability| -> Result<redb::WriteTransaction, String> {
        let mut txn = db.begin_write().map_err(|e| format!("begin write: {e}"))?;
        txn.set_durability(durability)
            .map_err(|e| format!("set durability: {e}"))?;
        Ok(txn)
    };
    let mut succeeded: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    let mut refused: Vec<Box<dyn Job>> = Vec::new();
    // Succeeded in the open transaction, not committed yet.
    let mut pending: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    let mut txn = match begin(redb::Durability::Immediate) {
        Ok(t) => Some(t),
        Err(e) => return (batch, refused, Err(e)),
    };
    // The transaction's changes to the in-memory state, thrown away with it.
    let mut overlay = RefCell::new(Overlay::default());
    let mut rest = batch.into_iter();
    while let Some(mut job) = rest.next() {
        let Some(open) = &txn else { break };
        if job.run(&Writer::new(open, shared, &overlay)) {
            pending.push(job);
            continue;
        }
        refused.push(job);
        // Throw the transaction away, replay the jobs before it and commit them.
        let replayed = (|| -> Result<(), String> {
            loop {
                if let Some(t) = txn.take() {
                    let _ = t.abort();
                }
                overlay = RefCell::default();
                let t = begin(redb::Durability::None)?;
                let position = pending
                    .iter_mut()
                    .position(|p| !p.run(&Writer::new(&t, shared, &overlay)));
                match position {
                    // Not expected (same state, same job), but then it refused too.
                    Some(i) => {
                        refused.push(pending.remove(i));
                        txn = Some(t);
                    }
                    None => {
                        commit(t, overlay.take(), shared).map_err(|e| format!("commit: {e:#}"))?;
                        break;
                    }
                }
            }
            txn = Some(begin(redb::Durability::Immediate)?);
            Ok(())
        })();
        succeeded.append(&mut pending);
        if let Err(e) = replayed {
            succeeded.extend(rest);
            return (succeeded, refused, Err(e));
        }
    }
    succeeded.append(&mut pending);
    let applied = std::time::Instant::now();
    let committed = match txn {
        Some(t) => commit(t, overlay.into_inner(), shared).map_err(|e| format!("commit: {e:#}")),
        None => Err("no transaction".into()),
    };
    tracing::debug!(
        commit_ms = applied.elapsed().as_secs_f64() * 1e3,
        "store: final commit of a batch"
    );
    (succeeded, refused, committed)
}

/// Commits `txn` with its changes to the in-memory state (`overlay`): journalled in the
/// transaction, with a checkpoint slice when one is due (store/hot.rs); and merged into the
/// in-memory state once committed.
fn commit(txn: redb::WriteTransaction, overlay: Overlay, shared: &Shared) -> Result<()> {
    if overlay.is_empty() {
        txn.commit()?;
        return Ok(());
    }
    let mut hot = shared.hot();
    let entry = hot::encode(&overlay);
    let started = std::time::Instant::now();
    txn.open_table(JOURNAL)?
        .insert(hot.journal_next, entry.as_slice())?;
    let written = hot.slice_due(&shared.checkpoints, entry.len());
    if let Some(w) = written {
        let count = hot.slices.len();
        let slice = &hot.slices[w.slice];
        let mut latest = txn.open_table(LATEST)?;
        let ours = overlay
            .latest
            .keys()
            .filter(|k| hot::slice_of(k, count) == w.slice);
        for key in slice
            .latest
            .iter()
            .filter(|k| !overlay.latest.contains_key(*k))
            .chain(ours)
        {
            if let Some(r) = overlay.latest.get(key).or_else(|| hot.latest.get(key)) {
                latest.insert(key.as_str(), to_json(r).as_slice())?;
            }
        }
        let mut pairs = txn.open_table(PAIRS)?;
        let ours = overlay
            .pairs
            .keys()
            .filter(|k| hot::slice_of(k, count) == w.slice);
        for key in slice
            .pairs
            .iter()
            .filter(|k| !overlay.pairs.contains_key(*k))
            .chain(ours)
        {
            if let Some(p) = overlay.pairs.get(key).or_else(|| hot.pairs.get(key)) {
                pairs.insert(key.as_str(), to_json(p).as_slice())?;
            }
        }
        let mut journal = txn.open_table(JOURNAL)?;
        for sequence in hot.journal_first..w.delete_before {
            journal.remove(sequence)?;
        }
    }
    txn.commit()?;
    if let Some(w) = written {
        tracing::debug!(
            slice = w.slice,
            latest = hot.slices[w.slice].latest.len(),
            released = w.delete_before - hot.journal_first,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "store: checkpoint slice written"
        );
    }
    hot.committed(overlay, entry.len(), written);
    Ok(())
}

/// The store can no longer make writes durable; the process must stop (a supervisor
/// restarts it on what is on disk).
#[derive(Debug, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct StorageFailed(pub String);

/// Changes inside one write transaction; nothing is visible or durable until it commits.
pub struct Writer<'a> {
    txn: &'a redb::WriteTransaction,
    shared: &'a Shared,
    /// The transaction's changes to the latest registers and pairs.
    overlay: &'a RefCell<Overlay>,
}

/// A consistent snapshot for reads (but the latest registers: the committed state at the
/// time of the call).
pub struct Reader {
    txn: redb::ReadTransaction,
    shared: Arc<Shared>,
}

impl Store {
    /// Prunes everything older than `cutoff` in transactions of at most 10,000 deletions
    /// each (so that posts wait at most one of them), until nothing is left to prune.
    pub fn prune(&self, cutoff: i64) -> Result<Pruned> {
        let mut all = Pruned::default();
        loop {
            let p = self.prune_some(cutoff)?;
            all.add(p);
            if p.total() == 0 {
                return Ok(all);
            }
        }
    }

    /// One commit of [`Store::prune`]: up to [`PRUNE_CHUNK`] entries of each kind; nothing
    /// deleted means nothing is left to prune.
    pub fn prune_some(&self, cutoff: i64) -> Result<Pruned> {
        self.write_now(|w| w.prune(cutoff, PRUNE_CHUNK))
    }

    pub fn open(path: &Path) -> Result<Store> {
        let existed = path.exists();
        let db =
            Database::create(path).with_context(|| format!("open store {}", path.display()))?;
        if !existed {
            crate::sync_parent_dir(path)?;
        }
        Store::start(db, existed)
    }

    /// Opens a store on another storage backend (fault injection in tests).
    #[doc(hidden)]
    pub fn open_on(backend: impl redb::StorageBackend) -> Result<Store> {
        Store::start(Database::builder().create_with_backend(backend)?, false)
    }

    fn start(db: Database, compact: bool) -> Result<Store> {
        Store::start_with(db, compact, CheckpointPolicy::default())
    }

    fn start_with(mut db: Database, compact: bool, checkpoints: CheckpointPolicy) -> Result<Store> {
        let txn = db.begin_write()?;
        let old_tables: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
        let exists = |name: &str| old_tables.iter().any(|t| t == name);
        if exists(OLD_MEASUREMENTS.name()) {
            let moved = move_to_time_first(&txn, OLD_MEASUREMENTS, MEASUREMENTS)?;
            tracing::info!(moved, "store: measurements moved to time-first keys");
        }
        if exists(ARRIVAL_INDEX.name()) {
            txn.delete_table(ARRIVAL_INDEX)?;
        }
        move_json_readings(&txn, &old_tables, ARRIVAL_READINGS)?;
        move_json_readings(&txn, &old_tables, OLD_READINGS)?;
        move_json_readings(&txn, &old_tables, JSON_READINGS)?;
        {
            // Create every table so that readers never meet a missing one.
            txn.open_table(META)?;
            txn.open_table(MIRRORS)?;
            txn.open_table(MIRROR_KEYS)?;
            txn.open_table(MMR_OWNERS)?;
            txn.open_table(READINGS)?;
            txn.open_table(REGISTER_IDS)?;
            txn.open_table(REGISTER_NAMES)?;
            txn.open_table(JOURNAL)?;
            txn.open_table(LATEST)?;
            txn.open_table(MEASUREMENTS)?;
            txn.open_table(DESIGNATED)?;
            txn.open_table(PAIRS)?;
            txn.open_table(ATTESTED)?;
            txn.open_table(BATCHES)?;
        }
        let journal_next = fold_journal(&txn)?;
        txn.commit()?;
        let hot = load_hot(&db, journal_next, &checkpoints)?;
        // Space freed by pruning goes back to the file system at start (last: a write after
        // it would grow the file again).
        if compact {
            db.compact().context("compact the store")?;
        }
        let db = Arc::new(db);
        let shared = Arc::new(Shared::new(hot, checkpoints));
        let (jobs, queue) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn({
                let (db, shared) = (db.clone(), shared.clone());
                move || writer_loop(db, shared, queue)
            })
            .context("start the store's writer thread")?;
        let (direct, direct_queue) = mpsc::channel::<DirectJob>();
        std::thread::Builder::new()
            .name("store-direct".into())
            .spawn(move || {
                while let Ok(job) = direct_queue.recv() {
                    // A panicking job drops its reply: its caller is told (see `direct`).
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })
            .context("start the store's direct-write thread")?;
        Ok(Store {
            db,
            shared,
            jobs: Some(jobs),
            writer: Some(writer),
            direct: Some(direct),
        })
    }

    /// Runs `f` on the store's direct thread, one job at a time, and returns its result:
    /// for the work that calls [`Store::write_now`] from the async runtime (attestation,
    /// acknowledgements, pruning). That thread keeps the priority of the thread that opened
    /// the store, as the writer thread does, whereas the runtime's threads may run at a lower
    /// one (`network_nice`), and so would a blocking thread they start: a direct write holds
    /// the write lock the writer thread waits for, and must not be slowed by the connections.
    pub async fn direct<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: DirectJob = Box::new(move || {
            let _ = reply.send(f());
        });
        self.direct
            .as_ref()
            .context("the store is shutting down")?
            .send(job)
            .map_err(|_| anyhow!("the store's direct thread has stopped"))?;
        result
            .await
            .map_err(|_| anyhow!("a direct store job panicked"))
    }

    /// Runs `f` in the writer thread's next batch (one write transaction, one fsync for all
    /// the requests in it) and returns its result once the batch is on disk. If `f` fails,
    /// none of its changes is kept. `f` may run twice (see [`Job::run`]): it must not consume
    /// what it captured. Readers see the changes once they are durable, unless a request in
    /// the same batch refused (its predecessors are then committed ahead of the fsync).
    /// The caller's task waits without holding a thread, so that every request in flight can
    /// join the batch.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&Writer) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<anyhow::Error> + Send + 'static,
    {
        let result = self.submit(f)?;
        self.outcome(result.await)
    }

    /// [`Store::write`] for threads outside the async runtime (the tests).
    #[cfg(test)]
    fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&Writer) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<anyhow::Error> + Send + 'static,
    {
        let result = self.submit(f)?;
        self.outcome(result.blocking_recv())
    }

    fn submit<T, E, F>(&self, f: F) -> Result<tokio::sync::oneshot::Receiver<Result<T, E>>, E>
    where
        F: FnMut(&Writer) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<anyhow::Error> + Send + 'static,
    {
        self.check()?;
        let (reply, result) = tokio::sync::oneshot::channel();
        let job = Box::new(TypedJob {
            f,
            result: None,
            reply,
        });
        match self.jobs.as_ref().map(|q| q.send(job)) {
            Some(Ok(())) => Ok(result),
            _ => Err(E::from(
                StorageFailed("the store's writer has stopped".into()).into(),
            )),
        }
    }

    fn outcome<T, E: From<anyhow::Error>>(
        &self,
        received: Result<Result<T, E>, tokio::sync::oneshot::error::RecvError>,
    ) -> Result<T, E> {
        match received {
            Ok(r) => r,
            // The writer thread died with the job: nothing is known about it, and nothing
            // more can be written.
            Err(_) => {
                self.shared.fail("the store's writer thread stopped".into());
                Err(E::from(
                    StorageFailed("the store's writer thread stopped".into()).into(),
                ))
            }
        }
    }

    /// Runs `f` in a write transaction of its own, committed and fsync'd before it returns;
    /// the commit becomes visible to readers only once it is on disk (with every earlier
    /// commit). For what leaves the process on a read, such as the signed batches the keeper
    /// fetches (a batch served before its fsync could be lost in a crash and its sequence
    /// re-signed with other content), and for the rare writes that need no batching.
    pub fn write_now<T, E: From<anyhow::Error>>(
        &self,
        f: impl FnOnce(&Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        self.check()?;
        self.shared.direct_waiting.fetch_add(1, Ordering::AcqRel);
        let txn = self.db.begin_write();
        self.shared.direct_waiting.fetch_sub(1, Ordering::AcqRel);
        let mut txn = txn.map_err(anyhow::Error::from)?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(anyhow::Error::from)?;
        let overlay = RefCell::default();
        let value = f(&Writer::new(&txn, &self.shared, &overlay))?;
        // A panic inside the commit (redb, the file system) leaves the file and the
        // in-memory registers in an unknown relation: the store stops, as for the writer.
        let committed = catch_unwind(AssertUnwindSafe(|| {
            commit(txn, overlay.into_inner(), &self.shared)
        }));
        let reason = match committed {
            Ok(Ok(())) => return Ok(value),
            Ok(Err(e)) => format!("durable commit failed: {e:#}"),
            Err(_) => "a durable commit panicked".to_string(),
        };
        self.shared.fail(reason.clone());
        Err(E::from(StorageFailed(reason).into()))
    }

    /// Why the store stopped accepting writes, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Write transactions the writer thread committed, and the jobs in them.
    #[cfg(test)]
    fn batch_counts(&self) -> (u64, u64) {
        (
            self.shared.batches.load(Ordering::Relaxed),
            self.shared.jobs.load(Ordering::Relaxed),
        )
    }

    fn check(&self) -> Result<()> {
        match self.shared.failure() {
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
            shared: self.shared.clone(),
        })
    }
}

impl Drop for Store {
    /// Lets the writer finish what is queued, so that the database is closed when the
    /// store is dropped (it can be reopened at once).
    fn drop(&mut self) {
        self.direct = None;
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            // A job on the writer thread may hold the last reference (the writer then ends
            // once this job returns, its queue closed); it cannot wait for itself.
            if writer.thread().id() == std::thread::current().id() {
                return;
            }
            let _ = writer.join();
        }
    }
}

impl<'a> Writer<'a> {
    fn new(
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
        let stored: Option<crate::normalize::Measurement> = json_at(&table, (m.end, key.as_str()))?;
        match stored {
            Some(s) if s == *m => Ok(Ok(())),
            Some(s) => Ok(Err(s)),
            None => {
                table.insert((m.end, key.as_str()), to_json(m).as_slice())?;
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
        let key = latest_key(lfdi, flow);
        if let Some(r) = self.overlay.borrow().latest.get(&key) {
            return Ok(Some(*r));
        }
        Ok(self.shared.hot().latest.get(&key).copied())
    }

    /// The Wh stored for MirrorMeterReading `mmr` of `lfdi` at `timestamp`, if any.
    pub fn reading_at(&self, lfdi: &str, mmr: &str, timestamp: u32) -> Result<Option<u64>> {
        let Some(id) = register_id(self.txn, &mirror_key(lfdi, mmr), false)? else {
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
        insert_reading(self.txn, reading)?;
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
    /// The non-attested readings stored for MirrorMeterReading `mmr` of `lfdi`, in time
    /// order. Reads the whole table (it is keyed by time): for inspection and tests.
    pub fn measurements(
        &self,
        lfdi: &str,
        mmr: &str,
    ) -> Result<Vec<crate::normalize::Measurement>> {
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
            let name = match known.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    names
                        .get(id)?
                        .with_context(|| format!("register {id} has no name"))?
                        .value()
                        .to_string(),
                ),
            };
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
                .write_now(|w| -> Result<()> {
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
            .write_now(|w| -> Result<()> {
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
            .write_now(|w| -> Result<()> {
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
    fn the_readings_of_earlier_layouts_are_moved_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.redb");
        let lfdi = "AA".repeat(20);
        let reading = |t: u32| StoredReading {
            lfdi: lfdi.clone(),
            mirror: 1,
            mmr: "0B".into(),
            reading: RegisterReading {
                flow: Flow::Export,
                timestamp: t,
                start: t - 60,
                wh: u64::from(t),
                quality: 0,
            },
            received_at: i64::from(t),
        };
        let measurement = |t: u32| crate::normalize::Measurement {
            start: t - 60,
            end: t,
            value: 230,
            power: 0,
            quality: 0,
            tou_tier: None,
        };
        // A store as the bridge wrote it register first, with one reading as it wrote them
        // time first in JSON, and the first layout's arrival log (with its index) holding
        // one reading of its own and one the register-first table repeats.
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut arrival = txn.open_table(ARRIVAL_READINGS).unwrap();
                let mut index = txn.open_table(ARRIVAL_INDEX).unwrap();
                for (id, t) in [(1u64, 60u32), (2, 120)] {
                    arrival.insert(id, to_json(&reading(t)).as_slice()).unwrap();
                    index
                        .insert((mirror_key(&lfdi, "0B").as_str(), t), id)
                        .unwrap();
                }
                let mut readings = txn.open_table(OLD_READINGS).unwrap();
                let mut json_readings = txn.open_table(JSON_READINGS).unwrap();
                let mut measurements = txn.open_table(OLD_MEASUREMENTS).unwrap();
                let key = mirror_key(&lfdi, "0B");
                let other = mirror_key(&lfdi, "0C");
                for t in [600u32, 120, 300] {
                    let value = to_json(&reading(t));
                    if t == 300 {
                        json_readings.insert((t, key.as_str()), value.as_slice())
                    } else {
                        readings.insert((key.as_str(), t), value.as_slice())
                    }
                    .unwrap();
                    measurements
                        .insert((other.as_str(), t), to_json(&measurement(t)).as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let reader = store.read().unwrap();
        let times: Vec<u32> = reader
            .readings()
            .unwrap()
            .iter()
            .map(|r| r.reading.timestamp)
            .collect();
        assert_eq!(times, [60, 120, 300, 600]);
        assert_eq!(reader.readings().unwrap()[0], reading(60));
        assert_eq!(reader.readings().unwrap()[1], reading(120));
        assert_eq!(reader.readings().unwrap()[2], reading(300));
        assert_eq!(
            reader.measurements(&lfdi, "0C").unwrap(),
            [measurement(120), measurement(300), measurement(600)]
        );
        drop(reader);
        store
            .write_now(|w| -> Result<()> {
                // The retry index finds moved readings; a moved measurement is a duplicate.
                assert_eq!(w.reading_at(&lfdi, "0B", 300)?, Some(300));
                assert!(w
                    .record_measurement(&lfdi, "0C", &measurement(300))?
                    .is_ok());
                Ok(())
            })
            .unwrap();
        drop(store);
        // The old tables are gone; a second start moves nothing.
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        assert!(
            !names.iter().any(|n| n == "readings"
                || n == "reading_at"
                || n == "register_readings"
                || n == "register_readings_by_time"
                || n == "measurements"),
            "{names:?}"
        );
        drop(txn);
        drop(db);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.read().unwrap().readings().unwrap().len(), 4);
    }

    #[test]
    fn mirrors_are_keyed_by_device_and_mrid_and_listed_by_mrid_descending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
        let (a, b) = ("AA".repeat(20), "BB".repeat(20));
        store
            .write_now(|w| -> Result<()> {
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
        let result: Result<()> = store.write_now(|w| {
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
            .write_now(|w| -> Result<()> {
                for s in 1..=3 {
                    w.put_batch(&batch(s))?;
                }
                Ok(())
            })
            .unwrap();
        assert!(store.write_now(|w| w.acknowledge(2)).unwrap());
        assert_eq!(unacked(&store), vec![1, 3]);
        assert!(store.write_now(|w| w.acknowledge(1)).unwrap());
        assert_eq!(unacked(&store), vec![3]);
        assert!(!store.write_now(|w| w.acknowledge(9)).unwrap());
        assert_eq!(store.read().unwrap().unacknowledged(0).unwrap().len(), 0);
    }

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .write_now(|w| -> Result<()> {
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

    /// In-memory storage whose fsync can be slowed down (so that requests queue into one
    /// batch) or made to fail; it keeps an image of what was on "disk" at the last fsync.
    #[derive(Debug, Default, Clone)]
    struct Faulty {
        inner: Arc<redb::backends::InMemoryBackend>,
        fail_sync: Arc<std::sync::atomic::AtomicBool>,
        panic_sync: Arc<std::sync::atomic::AtomicBool>,
        sync_delay_ms: Arc<AtomicU64>,
        /// Syncs started so far; when non-zero, the sync of this ordinal (1-based) and every
        /// later one fail (decided when the sync starts, before its delay).
        syncs: Arc<AtomicU64>,
        fail_sync_from: Arc<AtomicU64>,
        /// While set, a sync waits (after counting itself) until it is cleared.
        hold_sync: Arc<std::sync::atomic::AtomicBool>,
        synced: Arc<Mutex<Vec<u8>>>,
    }

    impl Faulty {
        /// The storage as a power cut leaves it: what was synced, nothing written after.
        fn after_power_cut(&self) -> Faulty {
            let image = self.synced.lock().unwrap().clone();
            let cut = Faulty::default();
            use redb::StorageBackend;
            cut.inner.set_len(image.len() as u64).unwrap();
            StorageBackend::write(&*cut.inner, 0, &image).unwrap();
            *cut.synced.lock().unwrap() = image;
            cut
        }
    }

    impl redb::StorageBackend for Faulty {
        fn len(&self) -> Result<u64, std::io::Error> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            let ordinal = self.syncs.fetch_add(1, Ordering::AcqRel) + 1;
            let from = self.fail_sync_from.load(Ordering::Acquire);
            let delay = self.sync_delay_ms.load(Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(delay));
            while self.hold_sync.load(Ordering::Acquire) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if self.fail_sync.load(Ordering::Relaxed) || (from != 0 && ordinal >= from) {
                return Err(std::io::Error::other("injected fsync failure"));
            }
            if self.panic_sync.load(Ordering::Relaxed) {
                panic!("injected panic in fsync");
            }
            self.inner.sync_data()?;
            let mut image = vec![0; self.inner.len()? as usize];
            self.inner.read(0, &mut image)?;
            *self.synced.lock().unwrap() = image;
            Ok(())
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            self.inner.write(offset, data)
        }
    }

    fn assert_storage_failed(err: &anyhow::Error) {
        assert!(err.downcast_ref::<StorageFailed>().is_some(), "{err:#}");
    }

    fn owner(store: &Store, mrid: &str) -> Option<String> {
        let txn = store.db.begin_read().unwrap();
        let table = txn.open_table(MMR_OWNERS).unwrap();
        table.get(mrid).unwrap().map(|v| v.value().to_string())
    }

    /// Starts `writes` threads, 5 ms apart, each running `job(i)` through the writer while
    /// its fsyncs take 100 ms, so that they queue into shared batches; returns their results.
    fn queued(
        store: &Arc<Store>,
        writes: usize,
        job: impl Fn(usize) -> Box<dyn FnMut(&Writer) -> Result<()> + Send> + Send + Sync,
    ) -> Vec<Result<()>> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writes)
                .map(|i| {
                    let (store, f) = (store.clone(), job(i));
                    let handle = scope.spawn(move || store.write_blocking(f));
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    handle
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn concurrent_writes_share_one_transaction_and_fsync() {
        let backend = Faulty::default();
        let store = Arc::new(Store::open_on(backend.clone()).unwrap());
        backend.sync_delay_ms.store(100, Ordering::Relaxed);
        let results = queued(&store, 12, |i| {
            Box::new(move |w: &Writer| w.set_mmr_owner(&format!("M{i}"), "AA"))
        });
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        let (batches, jobs) = store.batch_counts();
        assert_eq!(jobs, 12);
        // The first job syncs alone; the others queue behind it and share the next syncs.
        assert!(batches <= 4, "{batches} batches for 12 jobs");
        for i in 0..12 {
            assert_eq!(owner(&store, &format!("M{i}")).as_deref(), Some("AA"));
        }
    }

    #[test]
    fn a_refused_or_panicking_write_is_discarded_alone() {
        let backend = Faulty::default();
        let store = Arc::new(Store::open_on(backend.clone()).unwrap());
        backend.sync_delay_ms.store(100, Ordering::Relaxed);
        // Job 0 occupies the writer; 1..=6 queue into one batch: ok, refuses, ok, panics,
        // ok, refuses. Each refusal wrote before failing, in the tables and in the latest
        // registers (kept in memory).
        let results = queued(&store, 7, |i| {
            Box::new(move |w: &Writer| {
                w.set_mmr_owner(&format!("M{i}"), "AA")?;
                w.record_reading(&export_at(&format!("M{i}"), 100, i as u64))?;
                match i {
                    2 | 6 => Err(anyhow!("refused {i}")),
                    4 => panic!("job {i} panics"),
                    _ => Ok(()),
                }
            })
        });
        let (batches, jobs) = store.batch_counts();
        assert_eq!(jobs, 7);
        assert!(batches <= 3, "{batches} batches for 7 jobs");
        for (i, result) in results.iter().enumerate() {
            match i {
                2 | 6 => assert_eq!(
                    result.as_ref().unwrap_err().to_string(),
                    format!("refused {i}")
                ),
                4 => assert!(result
                    .as_ref()
                    .unwrap_err()
                    .to_string()
                    .contains("panicked")),
                _ => assert!(result.is_ok(), "job {i}: {result:?}"),
            }
            let kept = owner(&store, &format!("M{i}")).is_some();
            assert_eq!(kept, ![2, 4, 6].contains(&i), "job {i}");
            let latest = store
                .read()
                .unwrap()
                .latest(&format!("M{i}"), Flow::Export)
                .unwrap();
            assert_eq!(latest.map(|r| r.wh), kept.then_some(i as u64), "job {i}");
        }
        // The writer lives on.
        store
            .write_blocking(|w| w.set_mmr_owner("after", "AA"))
            .unwrap();
        assert!(store.failure().is_none());
    }

    #[test]
    fn a_failed_fsync_fails_the_store_for_good() {
        let backend = Faulty::default();
        let store = Arc::new(Store::open_on(backend.clone()).unwrap());
        store
            .write_blocking(|w| w.set_mmr_owner("before", "AA"))
            .unwrap();
        backend.fail_sync.store(true, Ordering::Relaxed);
        let err = store
            .write_blocking(|w| w.set_mmr_owner("lost", "AA"))
            .unwrap_err();
        assert_storage_failed(&err);
        assert!(store.failure().unwrap().contains("injected fsync failure"));
        // Even once the disk answers again, nothing more is accepted: the process must
        // restart on what is really on disk.
        backend.fail_sync.store(false, Ordering::Relaxed);
        let err = store
            .write_blocking(|w| w.set_mmr_owner("later", "AA"))
            .unwrap_err();
        assert_storage_failed(&err);
        let err = store
            .write_now(|w| w.set_mmr_owner("later", "AA"))
            .unwrap_err();
        assert_storage_failed(&err);
    }

    #[test]
    fn a_failed_durable_commit_fails_the_store() {
        let backend = Faulty::default();
        let store = Store::open_on(backend.clone()).unwrap();
        backend.fail_sync.store(true, Ordering::Relaxed);
        assert!(store.write_now(|w| w.put_batch(&batch(1, 0))).is_err());
        assert!(store.failure().unwrap().contains("durable commit failed"));
        backend.fail_sync.store(false, Ordering::Relaxed);
        let err = store
            .write_blocking(|w| w.set_mmr_owner("later", "AA"))
            .unwrap_err();
        assert_storage_failed(&err);
    }

    fn latest_wh(store: &Store, lfdi: &str) -> Option<u64> {
        let reader = store.read().unwrap();
        reader.latest(lfdi, Flow::Export).unwrap().map(|r| r.wh)
    }

    #[test]
    fn a_panic_in_the_writers_commit_fails_the_store_instead_of_hanging() {
        let backend = Faulty::default();
        let store = Arc::new(Store::open_on(backend.clone()).unwrap());
        let lfdi = "AA".repeat(20);
        store
            .write_blocking({
                let r = export_at(&lfdi, 100, 5);
                move |w| w.record_reading(&r)
            })
            .unwrap();
        backend.panic_sync.store(true, Ordering::Relaxed);
        // The writer thread unwinds inside redb's commit: the waiting request is answered.
        let err = store
            .write_blocking({
                let r = export_at(&lfdi, 160, 9);
                move |w| w.record_reading(&r)
            })
            .unwrap_err();
        assert_storage_failed(&err);
        assert!(store.failure().unwrap().contains("writer thread stopped"));
        backend.panic_sync.store(false, Ordering::Relaxed);
        let err = store
            .write_blocking(|w| w.set_mmr_owner("later", "AA"))
            .unwrap_err();
        assert_storage_failed(&err);
        let err = store
            .write_now(|w| w.record_reading(&export_at(&lfdi, 220, 12)))
            .unwrap_err();
        assert_storage_failed(&err);
        // The registers in memory are those of the last commit that returned.
        assert_eq!(latest_wh(&store, &lfdi), Some(5));
    }

    #[test]
    fn a_panic_in_a_direct_commit_fails_the_store() {
        let backend = Faulty::default();
        let store = Store::open_on(backend.clone()).unwrap();
        let lfdi = "AA".repeat(20);
        store
            .write_now(|w| w.record_reading(&export_at(&lfdi, 100, 5)))
            .unwrap();
        backend.panic_sync.store(true, Ordering::Relaxed);
        // The caller gets an error (not the panic), and the store stops.
        let err = store
            .write_now(|w| w.record_reading(&export_at(&lfdi, 160, 9)))
            .unwrap_err();
        assert_storage_failed(&err);
        assert!(store.failure().unwrap().contains("durable commit panicked"));
        backend.panic_sync.store(false, Ordering::Relaxed);
        let err = store
            .write_now(|w| w.record_reading(&export_at(&lfdi, 220, 12)))
            .unwrap_err();
        assert_storage_failed(&err);
        let err = store
            .write_blocking(|w| w.set_mmr_owner("later", "AA"))
            .unwrap_err();
        assert_storage_failed(&err);
        assert_eq!(latest_wh(&store, &lfdi), Some(5));
    }

    #[tokio::test]
    async fn direct_jobs_run_one_at_a_time_on_the_stores_thread_and_survive_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("bridge.redb")).unwrap());
        let name = store
            .direct(|| std::thread::current().name().map(String::from))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("store-direct"));
        let err = store
            .direct(|| -> u32 { panic!("injected panic in a direct job") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err:#}");
        // The thread goes on with the next job, which writes.
        let s = store.clone();
        store
            .direct(move || s.write_now(|w| w.set_mmr_owner("after", "AA")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(owner(&store, "after").as_deref(), Some("AA"));
    }

    /// The direct thread keeps the priority of the thread that opened the store, however
    /// low the caller's (the runtime's threads run `network_nice` lower).
    #[cfg(target_os = "linux")]
    #[test]
    fn direct_jobs_keep_the_openers_priority() {
        use crate::tests::niceness;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("bridge.redb")).unwrap());
        let opener = niceness();
        if opener > 15 {
            eprintln!("skipped: the tests already run at niceness {opener}");
            return;
        }
        let (caller, job) = std::thread::spawn(move || {
            crate::lower_thread_priority(4).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let job = runtime.block_on(store.direct(niceness)).unwrap();
            (niceness(), job)
        })
        .join()
        .unwrap();
        assert!(
            caller > opener,
            "the caller runs lower: {caller} vs {opener}"
        );
        assert_eq!(job, opener);
    }

    fn export_at(lfdi: &str, timestamp: u32, wh: u64) -> StoredReading {
        reading_at(lfdi, Flow::Export, timestamp, wh)
    }

    fn reading_at(lfdi: &str, flow: Flow, timestamp: u32, wh: u64) -> StoredReading {
        StoredReading {
            lfdi: lfdi.into(),
            mirror: 1,
            mmr: format!("{flow:?}"),
            reading: RegisterReading {
                flow,
                timestamp,
                start: timestamp - 1,
                wh,
                quality: 0,
            },
            received_at: i64::from(timestamp),
        }
    }

    fn journal_entries(store: &Store) -> u64 {
        use redb::ReadableTableMetadata;
        let txn = store.db.begin_read().unwrap();
        txn.open_table(JOURNAL).unwrap().len().unwrap()
    }

    fn open_with(backend: &Faulty, slices: usize, slice_entries: u64) -> Store {
        let db = Database::builder()
            .create_with_backend(backend.clone())
            .unwrap();
        let policy = CheckpointPolicy {
            slices,
            slice_entries,
            ..CheckpointPolicy::default()
        };
        Store::start_with(db, false, policy).unwrap()
    }

    #[test]
    fn the_latest_registers_survive_a_power_cut_from_the_journal_and_the_checkpoints() {
        let backend = Faulty::default();
        let store = open_with(&backend, 2, 3);
        // Six commits (journal entries 0..=5), two slices, a slice every third entry: entry
        // 2's commit writes slice 0 (nothing can go: slice 1 holds everything), entry 5's
        // writes slice 1 and lets entries 0..=2 go.
        for t in 1..=6u32 {
            store
                .write_blocking(move |w| {
                    w.record_reading(&reading_at("AA", Flow::Import, t * 10, u64::from(t)))?;
                    w.record_reading(&reading_at("AA", Flow::Export, t * 10, u64::from(t) * 2))?;
                    w.record_reading(&export_at("BB", t * 10 + 1, u64::from(t) * 3))
                })
                .unwrap();
        }
        assert_eq!(store.shared.hot().slices_written, 2);
        assert_eq!(journal_entries(&store), 3);
        let cut = backend.after_power_cut();
        drop(store);
        let store = open_with(&cut, 2, 3);
        assert_eq!(journal_entries(&store), 0, "folded at start");
        let reader = store.read().unwrap();
        assert_eq!(reader.latest("AA", Flow::Import).unwrap().unwrap().wh, 6);
        assert_eq!(reader.latest("AA", Flow::Export).unwrap().unwrap().wh, 12);
        assert_eq!(reader.latest("BB", Flow::Export).unwrap().unwrap().wh, 18);
        let pair = store.write_now(|w| w.pair("AA")).unwrap().unwrap();
        assert_eq!(
            (pair.timestamp, pair.import_wh, pair.export_wh),
            (60, 6, 12)
        );
        assert_eq!(store.write_now(|w| w.pair("BB")).unwrap(), None);
        // The tables themselves hold it all now (what `load_hot` reads).
        let txn = store.db.begin_read().unwrap();
        let stored: Pair = json_at(&txn.open_table(PAIRS).unwrap(), "AA")
            .unwrap()
            .unwrap();
        assert_eq!(stored, pair);
    }

    #[test]
    fn a_damaged_journal_entry_stops_the_start_with_its_sequence() {
        let backend = Faulty::default();
        {
            let store = open_with(&backend, 16, 100);
            store
                .write_blocking(|w| w.record_reading(&export_at("AA", 10, 1)))
                .unwrap();
            store
                .write_now(|w| -> Result<()> {
                    w.txn.open_table(JOURNAL)?.insert(0, [1u8, 9].as_slice())?;
                    Ok(())
                })
                .unwrap();
        }
        let db = Database::builder().create_with_backend(backend).unwrap();
        let err = Store::start(db, false).err().unwrap();
        assert!(format!("{err:#}").contains("journal entry 0"), "{err:#}");
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// Meter `m` posts import and/or export at its next time (`+dt`), adding `wh`.
        Post {
            m: usize,
            import: bool,
            export: bool,
            dt: u32,
            wh: u64,
        },
        /// The same, refused after writing: changes nothing.
        Refused {
            m: usize,
            dt: u32,
        },
        /// Through `write_now` instead of the writer thread.
        Direct {
            m: usize,
            dt: u32,
        },
        /// Posts queued behind a slow fsync so that the writer takes them in one batch, with
        /// a refused one at `refuse_at` (its predecessors are replayed and committed without
        /// a sync); if `fail`, the batch's final fsync fails, the store stops and the power
        /// is cut.
        Batch {
            posts: Vec<(usize, bool, bool, u32, u64)>,
            refuse_at: usize,
            fail: bool,
        },
        PowerCut,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0..4usize, any::<bool>(), any::<bool>(), 1..100u32, 0..1_000u64)
                .prop_map(|(m, import, export, dt, wh)| Step::Post { m, import, export, dt, wh }),
            1 => (0..4usize, 1..100u32).prop_map(|(m, dt)| Step::Refused { m, dt }),
            1 => (0..4usize, 1..100u32).prop_map(|(m, dt)| Step::Direct { m, dt }),
            2 => (
                proptest::collection::vec(
                    (0..4usize, any::<bool>(), any::<bool>(), 1..100u32, 0..1_000u64),
                    1..5,
                ),
                0..5usize,
                any::<bool>(),
            )
                .prop_map(|(posts, refuse_at, fail)| Step::Batch {
                    refuse_at: refuse_at.min(posts.len()),
                    posts,
                    fail,
                }),
            1 => Just(Step::PowerCut),
        ]
    }

    /// What the latest registers and pairs must be: the rules of `record_reading`, on maps.
    #[derive(Default)]
    struct Model {
        latest: HashMap<(usize, Flow), (u32, u64)>,
        pairs: HashMap<usize, (u32, u64, u64)>,
        clock: HashMap<usize, u32>,
    }

    impl Model {
        fn record(&mut self, m: usize, flow: Flow, t: u32, wh: u64) {
            self.latest.insert((m, flow), (t, wh));
            let other = if flow == Flow::Import {
                Flow::Export
            } else {
                Flow::Import
            };
            if let Some(&(ot, owh)) = self.latest.get(&(m, other)) {
                if ot == t {
                    let (i, e) = if flow == Flow::Import {
                        (wh, owh)
                    } else {
                        (owh, wh)
                    };
                    self.pairs.insert(m, (t, i, e));
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(48))]
        /// Whatever the order of posts, refusals, direct writes, checkpoint slices (one of
        /// `slices` every `slice_entries` commits) and power cuts, the store's latest
        /// registers and pairs are those of the committed posts.
        #[test]
        fn the_latest_registers_are_those_committed_whatever_the_power_cuts(
            steps in proptest::collection::vec(step(), 1..40),
            slices in 1..4usize,
            slice_entries in 1..5u64,
        ) {
            let mut backend = Faulty::default();
            let mut store = open_with(&backend, slices, slice_entries);
            let mut model = Model::default();
            // Leads 07, 47, 87, C7: one meter in each quarter of the checkpoint slices.
            let lfdi = |m: usize| format!("{:02X}", m * 64 + 7);
            for step in steps {
                match step {
                    Step::Post { m, import, export, dt, wh } => {
                        let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                        model.clock.insert(m, t);
                        let flows: Vec<Flow> = [(import, Flow::Import), (export, Flow::Export)]
                            .into_iter().filter(|f| f.0).map(|f| f.1).collect();
                        let who = lfdi(m);
                        store.write_blocking(move |w| {
                            for flow in &flows {
                                w.record_reading(&reading_at(&who, *flow, t, wh))?;
                            }
                            Ok::<_, anyhow::Error>(())
                        }).unwrap();
                        for flow in [Flow::Import, Flow::Export] {
                            if (flow == Flow::Import && import) || (flow == Flow::Export && export) {
                                model.record(m, flow, t, wh);
                            }
                        }
                    }
                    Step::Refused { m, dt } => {
                        let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                        let who = lfdi(m);
                        let refused = store.write_blocking(move |w| {
                            w.record_reading(&reading_at(&who, Flow::Import, t, 7))?;
                            w.record_reading(&reading_at(&who, Flow::Export, t, 7))?;
                            Err::<(), _>(anyhow!("refused"))
                        });
                        proptest::prop_assert!(refused.is_err());
                    }
                    Step::Direct { m, dt } => {
                        let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                        model.clock.insert(m, t);
                        store.write_now(|w| w.record_reading(&reading_at(&lfdi(m), Flow::Export, t, 3))).unwrap();
                        model.record(m, Flow::Export, t, 3);
                    }
                    Step::Batch { posts, refuse_at, fail } => {
                        // Job 0 holds the writer in its fsync until the batch has queued.
                        backend.hold_sync.store(true, Ordering::Release);
                        let before = backend.syncs.load(Ordering::Acquire);
                        let (batches_before, _) = store.batch_counts();
                        if fail {
                            backend.fail_sync_from.store(before + 2, Ordering::Release);
                        }
                        let first = store.submit(|w| w.set_mmr_owner("hold", "AA")).unwrap();
                        while backend.syncs.load(Ordering::Acquire) == before {
                            std::thread::yield_now();
                        }
                        let mut queued = Vec::new();
                        let mut done = Vec::new();
                        for (i, &(m, import, export, dt, wh)) in posts.iter().enumerate() {
                            if i == refuse_at {
                                let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                                let who = lfdi(m);
                                queued.push((store.submit(move |w| {
                                    w.record_reading(&reading_at(&who, Flow::Import, t, 7))?;
                                    w.record_reading(&reading_at(&who, Flow::Export, t, 7))?;
                                    Err::<(), _>(anyhow!("refused"))
                                }).unwrap(), false));
                            }
                            let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                            model.clock.insert(m, t);
                            let who = lfdi(m);
                            queued.push((store.submit(move |w| {
                                if import {
                                    w.record_reading(&reading_at(&who, Flow::Import, t, wh))?;
                                }
                                if export {
                                    w.record_reading(&reading_at(&who, Flow::Export, t, wh))?;
                                }
                                Ok::<_, anyhow::Error>(())
                            }).unwrap(), true));
                            done.push((m, import, export, t, wh));
                        }
                        if refuse_at == posts.len() {
                            let who = lfdi(0);
                            queued.push((store.submit(move |w| {
                                w.set_mmr_owner("refused", &who)?;
                                Err::<(), _>(anyhow!("refused"))
                            }).unwrap(), false));
                        }
                        backend.hold_sync.store(false, Ordering::Release);
                        proptest::prop_assert!(store.outcome(first.blocking_recv()).is_ok());
                        for (reply, post) in queued {
                            let result = store.outcome(reply.blocking_recv());
                            match (post, fail) {
                                (true, false) => proptest::prop_assert!(result.is_ok(), "{:?}", result),
                                (true, true) => proptest::prop_assert!(
                                    result.as_ref().is_err_and(|e| e.downcast_ref::<StorageFailed>().is_some()),
                                    "{:?}", result
                                ),
                                (false, false) => proptest::prop_assert_eq!(
                                    result.unwrap_err().to_string(), "refused"
                                ),
                                (false, true) => proptest::prop_assert_eq!(
                                    result.unwrap_err().to_string(), "refused"
                                ),
                            }
                        }
                        backend.fail_sync_from.store(0, Ordering::Release);
                        // Job 0's batch, then the queued jobs in one (counted if committed).
                        proptest::prop_assert_eq!(
                            store.batch_counts().0 - batches_before,
                            if fail { 1 } else { 2 }
                        );
                        if fail {
                            // Nothing of the batch was synced: the power cut takes it all,
                            // the replayed predecessors of the refusal included.
                            proptest::prop_assert!(store.failure().is_some());
                            let cut = backend.after_power_cut();
                            drop(store);
                            backend = cut;
                            store = open_with(&backend, slices, slice_entries);
                        } else {
                            for (m, import, export, t, wh) in done {
                                if import {
                                    model.record(m, Flow::Import, t, wh);
                                }
                                if export {
                                    model.record(m, Flow::Export, t, wh);
                                }
                            }
                        }
                    }
                    Step::PowerCut => {
                        let cut = backend.after_power_cut();
                        drop(store);
                        backend = cut;
                        store = open_with(&backend, slices, slice_entries);
                    }
                }
            }
            let cut = backend.after_power_cut();
            drop(store);
            let store = open_with(&cut, slices, slice_entries);
            let reader = store.read().unwrap();
            for m in 0..4 {
                for flow in [Flow::Import, Flow::Export] {
                    let latest = reader.latest(&lfdi(m), flow).unwrap().map(|r| (r.timestamp, r.wh));
                    proptest::prop_assert_eq!(latest, model.latest.get(&(m, flow)).copied(), "meter {} {:?}", m, flow);
                }
                let pair = store.write_now(|w| w.pair(&lfdi(m))).unwrap()
                    .map(|p| (p.timestamp, p.import_wh, p.export_wh));
                proptest::prop_assert_eq!(pair, model.pairs.get(&m).copied(), "meter {}", m);
            }
        }
    }
}
