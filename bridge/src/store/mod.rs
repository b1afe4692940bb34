//! The bridge's durable state, in an embedded ACID database (redb). Every accepted reading is
//! committed here (fsync'd) before the meter gets its 201/204, and the attestor's batches wait
//! here until the keeper acknowledges them, so a crash loses nothing acknowledged.
//!
//! - `engine`: how a write reaches the disk (batched group commit on the writer thread,
//!   immediate commits, the dedicated thread), fail-stop;
//! - `writer` / `reader`: what a write changes and what a read sees;
//! - `tables` and `records`: the on-disk layout; `hot`: every meter's latest registers in
//!   memory, with their journal and checkpoints; `upgrade`: earlier layouts moved at start.
use std::path::Path;

use anyhow::{Context, Result};
use redb::{Database, ReadableTable, TableHandle};
use serde::{Deserialize, Serialize};

use crate::normalize::RegisterReading;
use sep2::MirrorUsagePoint;

mod cache;
mod engine;
mod hot;
pub mod market;
mod reader;
mod records;
mod tables;
#[cfg(test)]
mod tests;
mod upgrade;
mod wal;
mod writer;

use engine::Engine;
pub use engine::{StoreStats, MAX_JOBS_PER_BATCH};
use hot::CheckpointPolicy;
pub use reader::Reader;
pub use tables::mirror_key;
pub use writer::{Acknowledged, Writer};

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

/// What one `prune` deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub readings: usize,
    pub measurements: usize,
    pub batches: usize,
    /// Export queue entries dropped unexported (the queue was over its cap).
    pub export_dropped: usize,
    /// Of `batches`, those the history exporter had not taken (held past the retention).
    pub unexported_batches: usize,
}

impl Pruned {
    pub fn total(&self) -> usize {
        self.readings + self.measurements + self.batches + self.export_dropped
    }

    pub fn add(&mut self, other: Pruned) {
        self.readings += other.readings;
        self.measurements += other.measurements;
        self.batches += other.batches;
        self.export_dropped += other.export_dropped;
        self.unexported_batches += other.unexported_batches;
    }
}

/// The export queue, as `Reader::export_status` reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportQueue {
    pub last: u64,
    pub exported_through: u64,
    pub dropped_through: u64,
    pub dropped: u64,
    /// Readings the exporter acknowledged, ever.
    pub exported: u64,
    /// Readings waiting, and when the oldest was received.
    pub waiting: u64,
    pub oldest_received_at: Option<i64>,
    pub batches_exported_through: u64,
    pub last_batch: u64,
    /// Signed batches pruned before the exporter took them, ever.
    pub batches_dropped: u64,
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

/// The last reading the attestor signed for a meter, and what the oracle's rules then said
/// of its battery (`oracle::rules::Battery`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attested {
    pub timestamp: u32,
    pub import_wh: u64,
    pub export_wh: u64,
    /// `None` in records older than the battery rules: judged as a full battery then.
    #[serde(default)]
    pub stored_bound_wh: Option<u64>,
    #[serde(default)]
    pub stored_grid_wh: Option<u64>,
}

/// A signed batch waiting for (or acknowledged by) the keeper, stored as the keeper
/// interface serves it.
pub use keeper_protocol::SignedBatch;

/// The store can no longer make writes durable; the process must stop (a supervisor
/// restarts it on what is on disk).
#[derive(Debug, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct StorageFailed(pub String);

/// Most entries of each kind one pruning commit deletes: bounds how long it holds the write
/// lock.
const PRUNE_CHUNK: usize = 10_000;

pub struct Store {
    engine: Engine,
}

impl Store {
    /// Opens (or creates) the store at `path`, with its log beside it (`<path>.wal`, `<path>.wal.1`).
    pub fn open(path: &Path) -> Result<Store> {
        let existed = path.exists();
        let db =
            Database::create(path).with_context(|| format!("open store {}", path.display()))?;
        if !existed {
            crate::sync_parent_dir(path)?;
        }
        let log = std::sync::Arc::new(wal::FileLog::open(path)?);
        Store::start(db, existed, log)
    }

    /// Opens a store on other storage (fault injection in tests).
    #[cfg(test)]
    fn open_on(
        backend: impl redb::StorageBackend,
        log: std::sync::Arc<dyn wal::LogStorage>,
    ) -> Result<Store> {
        Store::start(
            Database::builder().create_with_backend(backend)?,
            false,
            log,
        )
    }

    fn start(
        db: Database,
        compact: bool,
        log: std::sync::Arc<dyn wal::LogStorage>,
    ) -> Result<Store> {
        Store::start_with(db, compact, CheckpointPolicy::default(), log)
    }

    /// Brings the tables up to date (earlier layouts moved, the log's records after the
    /// last durable commit replayed, the journal folded), loads what the store keeps in
    /// memory, then starts the engine with an empty log.
    fn start_with(
        mut db: Database,
        compact: bool,
        checkpoints: CheckpointPolicy,
        log: std::sync::Arc<dyn wal::LogStorage>,
    ) -> Result<Store> {
        let txn = db.begin_write()?;
        let tables: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
        upgrade::upgrade(&txn, &tables)?;
        tables::create_all(&txn)?;
        let applied = txn
            .open_table(tables::META)?
            .get(tables::WAL_APPLIED)?
            .map(|v| v.value())
            .unwrap_or(0);
        let bytes = log.read_all().context("read the store's log")?;
        let (replayed, last, hot_changes) = wal::replay(&txn, &bytes, applied)?;
        if replayed > 0 {
            txn.open_table(tables::META)?
                .insert(tables::WAL_APPLIED, last)?;
            tracing::info!(
                records = replayed,
                through = last,
                "store: log replayed after the last durable commit"
            );
        }
        let journal_next = hot::fold_journal(&txn)?;
        // The log's changes to the latest registers came after everything journalled.
        hot::write_tables(&txn, &hot_changes)?;
        txn.commit()?;
        // Everything in the log is in the tables, durably: it starts empty.
        log.clear().context("empty the store's log")?;
        log.sync().context("sync the store's log")?;
        let hot = hot::load_hot(&db, journal_next, &checkpoints)?;
        // Space freed by pruning goes back to the file system at start (last: a write after
        // it would grow the file again).
        if compact {
            db.compact().context("compact the store")?;
        }
        Ok(Store {
            engine: Engine::start(db, hot, checkpoints, log, last + 1)?,
        })
    }

    /// Runs `f` in the writer thread's next batch (one write transaction, one fsync for all
    /// the requests in it) and returns its result once the batch is on disk. If `f` fails,
    /// none of its changes is kept. `f` may run twice (a request after it in its batch
    /// refused, and the batch was replayed without it): it must not consume what it
    /// captured. Its answer (a refusal too) comes once the store's log holding the batch is
    /// synced (store/wal.rs); readers may see the changes up to one sync before that.
    /// Nothing that leaves the process toward the chain is written by a batched write:
    /// signed batches and attestation marks are immediate writes, durable with everything
    /// committed before them. The caller's
    /// task waits without holding a thread, so that every request in flight can join the
    /// batch. For the meters' posts.
    pub async fn write_batched<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&Writer) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<anyhow::Error> + Send + 'static,
    {
        let reply = self.engine.submit(f)?;
        self.engine.outcome(reply.await)
    }

    /// [`Store::write_batched`] for threads outside the async runtime (the tests).
    #[cfg(test)]
    fn write_batched_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&Writer) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<anyhow::Error> + Send + 'static,
    {
        let reply = self.engine.submit(f)?;
        self.engine.outcome(reply.blocking_recv())
    }

    /// Runs `f` in a write transaction of its own, committed and fsync'd before it returns;
    /// the commit becomes visible to readers only once it is on disk (with every earlier
    /// commit). For what leaves the process on a read, such as the signed batches the keeper
    /// fetches (a batch served before its fsync could be lost in a crash and its sequence
    /// re-signed with other content), and for the rare writes that need no batching. It
    /// blocks its thread: from the async runtime, call it inside [`Store::run_dedicated`].
    pub fn write_immediate<T, E: From<anyhow::Error>>(
        &self,
        f: impl FnOnce(&Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        self.engine.write_immediate(f)
    }

    /// Runs `f` on the store's dedicated thread, one job at a time, and returns its result:
    /// for the work that calls [`Store::write_immediate`] from the async runtime
    /// (attestation, acknowledgements, pruning). That thread keeps the priority of the
    /// thread that opened the store, as the writer thread does, whereas the runtime's
    /// threads may run at a lower one (`network_nice`), and so would a blocking thread they
    /// start: an immediate write holds the write lock the writer thread waits for, and must
    /// not be slowed by the connections.
    pub async fn run_dedicated<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.engine.run_dedicated(f).await
    }

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
        self.write_immediate(|w| w.prune(cutoff, PRUNE_CHUNK))
    }

    /// From now on, queues every accepted reading for the history exporter (`enabled`),
    /// keeping at most `max_waiting` unexported (older ones are dropped by pruning, and
    /// counted); while enabled, pruning keeps batches the exporter has not acknowledged.
    pub fn keep_export_queue(&self, enabled: bool, max_waiting: u64) {
        use std::sync::atomic::Ordering;
        let shared = &self.engine.shared;
        shared
            .export_max_waiting
            .store(max_waiting, Ordering::Relaxed);
        shared.export_enabled.store(enabled, Ordering::Relaxed);
    }

    /// Up to `limit` readings of the export queue after position `after`, and the queue's
    /// last position and drop mark, as durable: a no-op immediate write first makes every
    /// commit before it durable (redb), and only positions up to the last one it saw are
    /// served, so that nothing the exporter takes can vanish in a crash of the bridge (a
    /// position then given again to another reading). Blocks its thread (call it inside
    /// `run_dedicated`).
    pub fn export_page(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, StoredReading)>, ExportQueue)> {
        let durable = self.write_immediate(|w| w.export_last())?;
        let reader = self.read()?;
        let mut status = reader.export_status()?;
        let mut page = reader.export_page(after, limit)?;
        page.retain(|(position, _)| *position <= durable);
        status.last = durable;
        Ok((page, status))
    }

    /// Keeps the export queue under its cap (what pruning also does, hourly); returns how
    /// many readings were dropped. Blocks its thread.
    pub fn keep_export_cap(&self) -> Result<usize> {
        let mut all = 0;
        loop {
            let n = self.write_immediate(|w| w.drop_over_cap(PRUNE_CHUNK))?;
            all += n;
            if n == 0 {
                return Ok(all);
            }
        }
    }

    /// Whether accepted readings are queued for export, and the queue's cap.
    pub fn export_queue(&self) -> (bool, u64) {
        use std::sync::atomic::Ordering;
        let shared = &self.engine.shared;
        (
            shared.export_enabled.load(Ordering::Relaxed),
            shared.export_max_waiting.load(Ordering::Relaxed),
        )
    }

    /// Why the store stopped accepting writes, if it did.
    pub fn failure(&self) -> Option<String> {
        self.engine.shared.failure()
    }

    /// Keeps the registry's meters as the keeper last pushed them (applied again at start).
    /// Durable before it returns; blocks its thread (call it inside `run_dedicated`).
    pub fn save_registry(&self, meters: &[keeper_protocol::MeterRecord]) -> Result<()> {
        let json = tables::to_json(&meters);
        self.write_immediate(|w| w.put_directory(tables::DIRECTORY_REGISTRY, &json))
    }

    /// The registry's meters as the keeper last pushed them, if it ever did.
    pub fn registry(&self) -> Result<Option<Vec<keeper_protocol::MeterRecord>>> {
        self.read()?
            .directory(tables::DIRECTORY_REGISTRY)?
            .map(|b| tables::from_json(&b))
            .transpose()
    }

    /// Keeps the local deny list (durable before it returns; blocks its thread).
    pub fn save_denied(&self, denied: &[keeper_protocol::DeniedMeter]) -> Result<()> {
        let json = tables::to_json(&denied);
        self.write_immediate(|w| w.put_directory(tables::DIRECTORY_DENIED, &json))
    }

    /// The local deny list, as kept.
    pub fn denied(&self) -> Result<Vec<keeper_protocol::DeniedMeter>> {
        Ok(self
            .read()?
            .directory(tables::DIRECTORY_DENIED)?
            .map(|b| tables::from_json(&b))
            .transpose()?
            .unwrap_or_default())
    }

    /// What the writer measured (batch sizes, commit and checkpoint times).
    pub fn stats(&self) -> &StoreStats {
        &self.engine.shared.stats
    }

    /// Write transactions the writer thread committed, and the jobs in them.
    #[cfg(test)]
    fn batch_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.engine.shared.batches.load(Ordering::Relaxed),
            self.engine.shared.jobs.load(Ordering::Relaxed),
        )
    }

    /// Batches signed so far (the last sequence handed out).
    pub fn batches_signed(&self) -> Result<u64> {
        use redb::ReadableDatabase;
        let txn = self.engine.db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        Ok(meta
            .get(tables::LAST_BATCH)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    pub fn read(&self) -> Result<Reader> {
        use redb::ReadableDatabase;
        Ok(Reader {
            txn: self.engine.db.begin_read()?,
            shared: self.engine.shared.clone(),
        })
    }
}
