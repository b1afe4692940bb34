//! The store's engine: how writes reach the disk, whatever they change.
//!
//! Three ways in, named for what they do:
//! - **batched** ([`Engine::submit`]): the writer thread takes every waiting job (up to
//!   [`MAX_JOBS_PER_BATCH`]), applies them in one write transaction, commits it without
//!   syncing and appends its changes to the store's log (store/wal.rs); the sync thread
//!   syncs the log, once for every batch appended meanwhile, and only then answers their
//!   jobs (group commit), while the writer applies the next batch. A job that refuses or
//!   panics is taken out alone: the transaction is thrown away, the jobs before it replayed
//!   in a fresh one, and the batch goes on. Every so often the writer makes redb itself
//!   durable and empties the log (a checkpoint).
//! - **immediate** ([`Engine::write_immediate`]): a transaction of its own, committed and
//!   fsync'd before the call returns; the writer thread lets it in between batches.
//! - **dedicated** ([`Engine::run_dedicated`]): a closure run on the store's own thread, at
//!   the priority of the thread that opened the store, for the immediate writes the async
//!   runtime asks for (attestation, acknowledgements, pruning).
//!
//! Fail-stop: a failed (or panicking) commit or fsync fails the store for good; every later
//! write is refused with [`StorageFailed`] and the bridge exits for its supervisor to
//! restart it on what is really on disk.
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use anyhow::{anyhow, Context, Result};
use redb::Database;

use super::cache::{self, Cache};
use super::hot::{self, CheckpointPolicy, Hot, Overlay};
use super::tables::{META, WAL_APPLIED};
use super::wal::{Changes, LogStorage};
use super::writer::Writer;
use super::StorageFailed;

/// Most jobs one write transaction takes: bounds the transaction's size (a job may carry up
/// to 1,000 readings) and how long one fsync keeps the first job of a batch waiting.
pub const MAX_JOBS_PER_BATCH: usize = 1_024;

type DedicatedJob = Box<dyn FnOnce() + Send>;

/// What the writer thread and the callers share.
pub(super) struct Shared {
    /// Set by a failed commit or fsync: every write fails from then on (after an fsync error
    /// the kernel may have dropped the dirty pages, so a later successful fsync would prove
    /// nothing). The bridge stops and its supervisor restarts it on what is really on disk.
    failed: Mutex<Option<String>>,
    /// Immediate writers waiting for redb's write lock: the writer thread lets them in
    /// between batches, so that the attestor is not starved under load.
    immediate_waiting: AtomicUsize,
    /// Batches committed, and jobs in them (read by the tests).
    #[cfg(test)]
    pub batches: AtomicU64,
    #[cfg(test)]
    pub jobs: AtomicU64,
    /// Syncs of the log that answered jobs (read by the tests).
    #[cfg(test)]
    pub syncs: AtomicU64,
    /// The latest registers and pairs, as committed (store/hot.rs). Locked after redb's
    /// write lock, never before: a commit holds it from before its commit until its changes
    /// are merged, so that the next write transaction reads them.
    hot: Mutex<Hot>,
    /// What posts look up, as committed (store/cache.rs). Locked alone, or after `hot`.
    pub cache: Mutex<Cache>,
    /// The last record of the store's log known synced (store/wal.rs).
    pub synced_through: AtomicU64,
    checkpoints: CheckpointPolicy,
    /// What the writer measures, for the bridge's metrics.
    pub stats: StoreStats,
    /// Whether accepted readings are queued for the history exporter, and the queue's cap
    /// (`Store::keep_export_queue`).
    pub export_enabled: std::sync::atomic::AtomicBool,
    pub export_max_waiting: AtomicU64,
}

/// What the store's writer measures (the bridge's `/metrics`).
#[derive(Debug)]
pub struct StoreStats {
    /// Jobs (requests) per committed batch.
    pub batch_jobs: telemetry::Histogram,
    /// A batch's run and commit, before the log's sync.
    pub commit_seconds: telemetry::Histogram,
    pub checkpoint_seconds: telemetry::Histogram,
}

impl Default for StoreStats {
    fn default() -> Self {
        StoreStats {
            batch_jobs: telemetry::Histogram::new(telemetry::SIZE_BUCKETS),
            commit_seconds: telemetry::Histogram::new(telemetry::LATENCY_BUCKETS),
            checkpoint_seconds: telemetry::Histogram::new(telemetry::LATENCY_BUCKETS),
        }
    }
}

impl Shared {
    fn new(hot: Hot, checkpoints: CheckpointPolicy) -> Shared {
        Shared {
            failed: Mutex::new(None),
            immediate_waiting: AtomicUsize::new(0),
            #[cfg(test)]
            batches: AtomicU64::new(0),
            #[cfg(test)]
            jobs: AtomicU64::new(0),
            #[cfg(test)]
            syncs: AtomicU64::new(0),
            hot: Mutex::new(hot),
            cache: Mutex::default(),
            synced_through: AtomicU64::new(0),
            checkpoints,
            stats: StoreStats::default(),
            export_enabled: std::sync::atomic::AtomicBool::new(false),
            export_max_waiting: AtomicU64::new(0),
        }
    }

    /// The in-memory state. A panic while it was held (in a commit) leaves it as it was
    /// before that commit's merge, and the store failed: reads may go on.
    pub fn hot(&self) -> MutexGuard<'_, Hot> {
        match self.hot.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn failure(&self) -> Option<String> {
        match self.failed.lock() {
            Ok(f) => f.clone(),
            Err(_) => Some("the store's failure lock is poisoned".into()),
        }
    }

    pub fn fail(&self, reason: String) {
        let mut failed = match self.failed.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        if failed.is_none() {
            tracing::error!(reason, "storage failure");
            *failed = Some(reason);
        }
    }

    fn check(&self) -> Result<()> {
        match self.failure() {
            Some(reason) => Err(StorageFailed(reason).into()),
            None => Ok(()),
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
    /// Forgets the job's own result: it failed because the storage did (its error was an I/O
    /// error, found when the store could not go on), so its fate is the batch's commit's.
    fn forget(&mut self);
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

    fn forget(&mut self) {
        self.result = None;
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

/// The database and the two threads that write to it.
pub(super) struct Engine {
    pub db: Arc<Database>,
    pub shared: Arc<Shared>,
    /// Jobs for the writer thread; `None` once the store is shutting down.
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    syncer: Option<std::thread::JoinHandle<()>>,
    /// Work for the dedicated thread; `None` once shutting down.
    dedicated: Option<mpsc::Sender<DedicatedJob>>,
}

/// A batched job's answer, once its batch is on disk.
pub(super) type Reply<T, E> = tokio::sync::oneshot::Receiver<Result<T, E>>;

impl Engine {
    /// Starts the writer, sync and dedicated threads over `db`, whose latest registers are
    /// `hot`, with the store's log `log` (empty; its next record is `log_next`).
    pub fn start(
        db: Database,
        hot: Hot,
        checkpoints: CheckpointPolicy,
        log: Arc<dyn LogStorage>,
        log_next: u64,
    ) -> Result<Engine> {
        let db = Arc::new(db);
        let shared = Arc::new(Shared::new(hot, checkpoints));
        let (jobs, queue) = mpsc::channel();
        let (to_sync, sync_queue) = mpsc::channel();
        let syncer = std::thread::Builder::new()
            .name("store-sync".into())
            .spawn({
                let (log, shared) = (log.clone(), shared.clone());
                move || sync_loop(log, shared, sync_queue)
            })
            .context("start the store's sync thread")?;
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn({
                let (db, shared) = (db.clone(), shared.clone());
                let state = LogState {
                    log,
                    next: log_next,
                    bytes: 0,
                    since: std::time::Instant::now(),
                };
                move || writer_loop(db, shared, queue, state, to_sync)
            })
            .context("start the store's writer thread")?;
        let (dedicated, dedicated_queue) = mpsc::channel::<DedicatedJob>();
        std::thread::Builder::new()
            .name("store-dedicated".into())
            .spawn(move || {
                while let Ok(job) = dedicated_queue.recv() {
                    // A panicking job drops its reply: its caller is told (see `run_dedicated`).
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })
            .context("start the store's dedicated thread")?;
        Ok(Engine {
            db,
            shared,
            jobs: Some(jobs),
            writer: Some(writer),
            syncer: Some(syncer),
            dedicated: Some(dedicated),
        })
    }

    /// Queues `f` for the writer thread's next batch.
    pub fn submit<T, E, F>(&self, f: F) -> Result<Reply<T, E>, E>
    where
        F: FnMut(&Writer) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<anyhow::Error> + Send + 'static,
    {
        self.shared.check()?;
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

    /// A batched job's result, from what its reply channel received.
    pub fn outcome<T, E: From<anyhow::Error>>(
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

    /// Runs `f` in a write transaction of its own, committed and fsync'd before it returns.
    pub fn write_immediate<T, E: From<anyhow::Error>>(
        &self,
        f: impl FnOnce(&Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        self.shared.check()?;
        self.shared.immediate_waiting.fetch_add(1, Ordering::AcqRel);
        let txn = self.db.begin_write();
        self.shared.immediate_waiting.fetch_sub(1, Ordering::AcqRel);
        let mut txn = txn.map_err(anyhow::Error::from)?;
        // The store may have failed while this write waited for the lock (a failed sync of
        // the log): a durable commit now would make the failed batches durable.
        if let Err(e) = self.shared.check() {
            let _ = txn.abort();
            return Err(E::from(e));
        }
        txn.set_durability(redb::Durability::Immediate)
            .map_err(anyhow::Error::from)?;
        let overlay = RefCell::default();
        let value = match f(&Writer::new(&txn, &self.shared, &overlay)) {
            Ok(value) => value,
            Err(e) => {
                drop(txn);
                // An I/O error inside `f` latches in redb: then the store has failed, and says
                // so, rather than answering every later write with that error.
                if let Some(reason) = self.storage_broken() {
                    self.shared.fail(reason.clone());
                    return Err(E::from(StorageFailed(reason).into()));
                }
                return Err(e);
            }
        };
        // A panic inside the commit (redb, the file system) leaves the file and the
        // in-memory registers in an unknown relation: the store stops, as for the writer.
        let committed = catch_unwind(AssertUnwindSafe(|| {
            commit(txn, overlay.into_inner(), &self.shared, None)
        }));
        let reason = match committed {
            Ok(Ok(())) => return Ok(value),
            Ok(Err(e)) => format!("durable commit failed: {e:#}"),
            Err(_) => "a durable commit panicked".to_string(),
        };
        self.shared.fail(reason.clone());
        Err(E::from(StorageFailed(reason).into()))
    }

    /// Why the database can take no more writes, if it can't: redb refuses every
    /// transaction after an I/O error. Waits for the write lock like an immediate write.
    fn storage_broken(&self) -> Option<String> {
        self.shared.immediate_waiting.fetch_add(1, Ordering::AcqRel);
        let txn = self.db.begin_write();
        self.shared.immediate_waiting.fetch_sub(1, Ordering::AcqRel);
        match txn {
            Ok(txn) => {
                let _ = txn.abort();
                None
            }
            Err(e) => Some(format!("begin write: {e}")),
        }
    }

    /// Runs `f` on the dedicated thread, one job at a time, and returns its result.
    pub async fn run_dedicated<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: DedicatedJob = Box::new(move || {
            let _ = reply.send(f());
        });
        self.dedicated
            .as_ref()
            .context("the store is shutting down")?
            .send(job)
            .map_err(|_| anyhow!("the store's dedicated thread has stopped"))?;
        result
            .await
            .map_err(|_| anyhow!("a dedicated store job panicked"))
    }
}

impl Drop for Engine {
    /// Lets the writer finish what is queued, so that the database is closed when the
    /// store is dropped (it can be reopened at once).
    fn drop(&mut self) {
        self.dedicated = None;
        self.jobs = None;
        // A failed store is never closed: redb, closing, would make every commit durable,
        // the failed batches' (and their latest registers would not be journalled). The
        // process is about to exit; what is on disk is what the log and redb made durable.
        let _leak_on_failure = LeakOnFailure(self.db.clone(), self.shared.clone());
        if let Some(writer) = self.writer.take() {
            // A job on the writer thread may hold the last reference (the writer then ends
            // once this job returns, its queue closed); it cannot wait for itself.
            if writer.thread().id() == std::thread::current().id() {
                return;
            }
            if writer.join().is_err() {
                self.shared
                    .fail("the store's writer thread panicked".into());
            }
        }
        // The writer has gone, and with it the sync thread's queue: it answers what it holds.
        if let Some(syncer) = self.syncer.take() {
            if syncer.thread().id() == std::thread::current().id() {
                return;
            }
            if syncer.join().is_err() {
                self.shared.fail("the store's sync thread panicked".into());
            }
        }
    }
}

/// Keeps the database open for good (never closed) if the store has failed when dropped.
struct LeakOnFailure(Arc<Database>, Arc<Shared>);

impl Drop for LeakOnFailure {
    fn drop(&mut self) {
        if self.1.failure().is_some() {
            std::mem::forget(self.0.clone());
        }
    }
}

/// The writer thread's side of the store's log.
struct LogState {
    log: Arc<dyn LogStorage>,
    /// The next record's sequence.
    next: u64,
    /// Appended since the last checkpoint.
    bytes: u64,
    since: std::time::Instant,
}

/// The writer thread: takes every waiting job (up to [`MAX_JOBS_PER_BATCH`]), applies them in
/// one write transaction, commits it without syncing, appends its changes to the store's log
/// and hands the jobs to the sync thread, which answers them once the log is synced. A job
/// that refuses is taken out: the transaction is thrown away, the jobs before it replayed in
/// a fresh one and committed (a log record of their own), and the batch goes on in another;
/// so each job runs at most twice and one bad request costs one extra commit, never the
/// others' writes. After a batch, a checkpoint when one is due.
fn writer_loop(
    db: Arc<Database>,
    shared: Arc<Shared>,
    jobs: mpsc::Receiver<Box<dyn Job>>,
    mut log: LogState,
    to_sync: mpsc::Sender<ToSync>,
) {
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
        // Immediate writers (the attestor, acknowledgements, pruning) go first.
        while shared.immediate_waiting.load(Ordering::Acquire) > 0 {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let count = batch.len() as u64;
        let started = std::time::Instant::now();
        let (succeeded, refused, committed) = run_batch(&db, &shared, batch, &mut log);
        shared.stats.batch_jobs.observe(count as f64);
        shared.stats.commit_seconds.observe_since(started);
        tracing::debug!(
            jobs = count,
            refused = refused.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "store: batch committed"
        );
        match committed {
            Err(reason) => {
                shared.fail(reason.clone());
                for job in refused {
                    job.finish(Ok(()));
                }
                for job in succeeded {
                    job.finish(Err(reason.clone()));
                }
            }
            // Answered once the log holding them (and everything before) is synced: a
            // refusal too, since it may rest on what an earlier job of the batch (or an
            // earlier batch) committed, not yet durable.
            Ok(()) => {
                let handed = ToSync {
                    refused,
                    succeeded,
                    through: log.next.saturating_sub(1),
                };
                if let Err(mpsc::SendError(handed)) = to_sync.send(handed) {
                    let reason = "the store's sync thread stopped".to_string();
                    shared.fail(reason.clone());
                    for job in handed.refused {
                        job.finish(Ok(()));
                    }
                    for job in handed.succeeded {
                        job.finish(Err(reason.clone()));
                    }
                }
            }
        }
        if shared.failure().is_none()
            && (log.bytes >= shared.checkpoints.log_bytes
                || (log.bytes > 0 && log.since.elapsed() >= shared.checkpoints.log_interval))
        {
            if let Err(reason) = checkpoint(&db, &shared, &mut log) {
                shared.fail(reason);
            }
        }
    }
    // Closing: a last checkpoint journals the latest registers of the last batches (redb,
    // closing, makes its commits durable, but they are journalled only by a durable commit).
    if shared.failure().is_none() && log.bytes > 0 {
        if let Err(reason) = checkpoint(&db, &shared, &mut log) {
            shared.fail(reason);
        }
    }
}

/// Makes redb durable (an immediate commit covers every commit before it), then empties
/// the log, whose records redb now holds.
fn checkpoint(db: &Database, shared: &Shared, log: &mut LogState) -> Result<(), String> {
    let started = std::time::Instant::now();
    let committed = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let txn = db.begin_write()?;
        if let Some(reason) = shared.failure() {
            let _ = txn.abort();
            anyhow::bail!("{reason}");
        }
        // A change, so that the commit is written whatever redb does with empty ones.
        txn.open_table(META)?
            .insert(WAL_APPLIED, log.next.saturating_sub(1))?;
        // Journals the latest registers of the batched commits since the last one.
        commit(txn, Overlay::default(), shared, None)
    }));
    match committed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("checkpoint: {e:#}")),
        Err(_) => return Err("a checkpoint panicked".into()),
    }
    let committed_ms = started.elapsed().as_secs_f64() * 1e3;
    log.log
        .retire()
        .map_err(|e| format!("empty the store's log after a checkpoint: {e}"))?;
    shared.stats.checkpoint_seconds.observe_since(started);
    tracing::debug!(
        log_bytes = log.bytes,
        committed_ms,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "store: checkpoint"
    );
    log.bytes = 0;
    log.since = std::time::Instant::now();
    Ok(())
}

/// A committed batch's jobs, handed to the sync thread once the log holds its records
/// (through sequence `through`).
struct ToSync {
    refused: Vec<Box<dyn Job>>,
    succeeded: Vec<Box<dyn Job>>,
    through: u64,
}

/// The sync thread: takes every batch of jobs the writer has handed over, syncs the log once
/// for all of them (their records were appended before they were handed over) and answers
/// them. A failed sync fails the store: the jobs that succeeded get [`StorageFailed`], those
/// that refused their own error. It publishes the last record synced, which the writer
/// writes into every record (store/wal.rs: it tells a damaged log from one cut short).
fn sync_loop(log: Arc<dyn LogStorage>, shared: Arc<Shared>, queue: mpsc::Receiver<ToSync>) {
    while let Ok(first) = queue.recv() {
        let mut handed = vec![first];
        while let Ok(more) = queue.try_recv() {
            handed.push(more);
        }
        let synced = match shared.failure() {
            Some(reason) => Err(reason),
            None => match catch_unwind(AssertUnwindSafe(|| log.sync())) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("sync the store's log: {e}")),
                Err(_) => Err("a sync of the store's log panicked".into()),
            },
        };
        match &synced {
            Err(reason) => shared.fail(reason.clone()),
            Ok(()) => {
                let through = handed.iter().map(|h| h.through).max().unwrap_or(0);
                shared.synced_through.fetch_max(through, Ordering::AcqRel);
                #[cfg(test)]
                {
                    let batches = handed.iter().filter(|h| !h.succeeded.is_empty()).count();
                    let jobs: usize = handed
                        .iter()
                        .map(|h| h.refused.len() + h.succeeded.len())
                        .sum();
                    shared.batches.fetch_add(batches as u64, Ordering::Relaxed);
                    shared.jobs.fetch_add(jobs as u64, Ordering::Relaxed);
                    shared.syncs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for h in handed {
            for job in h.refused {
                job.finish(Ok(()));
            }
            for job in h.succeeded {
                job.finish(synced.clone());
            }
        }
    }
}

/// Runs one batch; returns the jobs that succeeded, those that refused, and the outcome of the
/// commit that decides the first group's fate.
type BatchOutcome = (Vec<Box<dyn Job>>, Vec<Box<dyn Job>>, Result<(), String>);

/// A batched transaction's in-memory changes, with the log of its table changes.
fn batched_overlay() -> RefCell<Overlay> {
    RefCell::new(Overlay {
        log: Some(Changes::default()),
        ..Overlay::default()
    })
}

fn run_batch(
    db: &Database,
    shared: &Shared,
    batch: Vec<Box<dyn Job>>,
    log: &mut LogState,
) -> BatchOutcome {
    let begin = || -> Result<redb::WriteTransaction, String> {
        let mut txn = db.begin_write().map_err(|e| format!("begin write: {e}"))?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| format!("set durability: {e}"))?;
        Ok(txn)
    };
    let mut succeeded: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    let mut refused: Vec<Box<dyn Job>> = Vec::new();
    // Succeeded in the open transaction, not committed yet.
    let mut pending: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    let mut txn = match begin() {
        Ok(t) => Some(t),
        Err(e) => return (batch, refused, Err(e)),
    };
    // The transaction's changes to the in-memory state, thrown away with it.
    let mut overlay = batched_overlay();
    let mut rest = batch.into_iter();
    while let Some(mut job) = rest.next() {
        let Some(open) = &txn else { break };
        if job.run(&Writer::new(open, shared, &overlay)) {
            pending.push(job);
            continue;
        }
        // Throw the transaction away, replay the jobs before it and commit them.
        let refused_before = refused.len();
        // Whether the storage still took a transaction after the job refused: then its
        // refusal was its own, whatever happens to the replay.
        let mut healthy_after = false;
        let replayed = (|| -> Result<(), String> {
            loop {
                if let Some(t) = txn.take() {
                    let _ = t.abort();
                }
                overlay = batched_overlay();
                let t = begin()?;
                healthy_after = true;
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
                        guarded_commit(t, overlay.replace(Overlay::default()), shared, &mut *log)?;
                        overlay = batched_overlay();
                        break;
                    }
                }
            }
            txn = Some(begin()?);
            Ok(())
        })();
        succeeded.append(&mut pending);
        if let Err(e) = replayed {
            // The store cannot go on. If it failed before the replay could begin (redb
            // latches an I/O error: every later transaction fails), the job's refusal may be
            // that error: it failed with the storage. If the replay began and then failed
            // (a commit that grows the file syncs it, and that sync can fail), the job had
            // refused on a healthy store: its refusal stands. Any job that refused inside
            // the replay failed with the storage.
            if healthy_after {
                refused.insert(refused_before, job);
            } else {
                job.forget();
                succeeded.push(job);
            }
            let first_of_replay = refused_before + usize::from(healthy_after);
            for mut failed in refused.drain(first_of_replay..) {
                failed.forget();
                succeeded.push(failed);
            }
            succeeded.extend(rest);
            return (succeeded, refused, Err(e));
        }
        refused.push(job);
    }
    succeeded.append(&mut pending);
    let applied = std::time::Instant::now();
    let committed = match txn {
        Some(t) => guarded_commit(t, overlay.into_inner(), shared, log),
        None => Err("no transaction".into()),
    };
    tracing::debug!(
        commit_ms = applied.elapsed().as_secs_f64() * 1e3,
        "store: final commit of a batch"
    );
    (succeeded, refused, committed)
}

/// A batched transaction's [`commit`]; a panic inside it (redb, the file system) is a
/// failed commit, which fails the store, rather than the writer thread's end.
fn guarded_commit(
    txn: redb::WriteTransaction,
    overlay: Overlay,
    shared: &Shared,
    log: &mut LogState,
) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| commit(txn, overlay, shared, Some(log)))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("commit: {e:#}")),
        Err(_) => Err("a commit panicked".into()),
    }
}

/// Commits `txn` with its changes to the in-memory state (`overlay`): journalled in the
/// transaction, with a checkpoint slice when one is due (store/hot.rs); and merged into the
/// in-memory state once committed, with its changes to the cached tables (store/cache.rs).
/// A batched transaction (`log`) records the sequence of its log record in the `meta`
/// table, and its record is appended to the log once it has committed.
fn commit(
    txn: redb::WriteTransaction,
    mut overlay: Overlay,
    shared: &Shared,
    log: Option<&mut LogState>,
) -> Result<()> {
    let cached = std::mem::take(&mut overlay.cache);
    let mut changes = overlay.log.take();
    let mut hot = shared.hot();
    let started = std::time::Instant::now();
    // A batched commit logs its changes to the latest registers; a durable one journals
    // them, with those of the batched commits before it (`Hot::pending`), which it makes
    // durable too.
    let journalled = match changes.as_mut() {
        Some(changes) => {
            if !overlay.is_empty() {
                changes.hot(&hot::encode(&overlay));
            }
            None
        }
        None => {
            // A durable commit after a failure (a batch committed in redb whose log append
            // failed, say) would make that batch durable without its registers.
            if let Some(reason) = shared.failure() {
                anyhow::bail!("{reason}");
            }
            // Taken: if this commit fails, the store fails and is never closed, so what
            // pending held stays in the log alone, which a restart replays.
            let own = Overlay {
                latest: std::mem::take(&mut overlay.latest),
                pairs: std::mem::take(&mut overlay.pairs),
                ..Overlay::default()
            };
            let mut merged = std::mem::take(&mut hot.pending);
            merged.absorb(own.clone());
            if merged.is_empty() {
                None
            } else {
                let (bytes, written) = hot::journal(&txn, &hot, &merged, &shared.checkpoints)?;
                Some((own, bytes, written))
            }
        }
    };
    let record = match (log.as_ref(), &changes) {
        (Some(log), Some(changes)) if !changes.is_empty() => {
            txn.open_table(META)?.insert(WAL_APPLIED, log.next)?;
            Some(changes.record(log.next, shared.synced_through.load(Ordering::Acquire)))
        }
        _ => None,
    };
    // Held from before the commit releases redb's write lock until the merge: the next
    // transaction reads the cache only once it holds this commit's changes.
    let mut cache = cache::lock(&shared.cache);
    txn.commit()?;
    // In redb from here on, whatever happens to the log: the next durable commit journals
    // its registers.
    if changes.is_some() && !overlay.is_empty() {
        hot.batched(std::mem::take(&mut overlay));
    }
    cache.merge(cached);
    if let (Some(log), Some(record)) = (log, record) {
        if let Err(e) = log.log.append(&record) {
            // Failed before redb's lock can serve a durable commit that would skip it.
            let reason = format!("append to the store's log: {e}");
            shared.fail(reason.clone());
            anyhow::bail!(reason);
        }
        log.next += 1;
        log.bytes += record.len() as u64;
    }
    if let Some((own, bytes, written)) = journalled {
        if let Some(w) = written {
            tracing::debug!(
                slice = w.slice,
                latest = hot.slices[w.slice].latest.len(),
                released = w.delete_before - hot.journal_first,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "store: checkpoint slice written"
            );
        }
        hot.committed(own, bytes, written);
    }
    Ok(())
}
