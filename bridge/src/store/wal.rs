//! The store's write-ahead log: what makes a batch of posts durable without holding redb's
//! write lock through an fsync.
//!
//! redb makes a commit durable by writing its pages and syncing the file inside the commit,
//! under its single write lock, so the next batch could not be applied while one synced; an
//! fsync that took 40-100 ms on this machine's disk then held up every post behind it
//! (docs/benchmarks.md). Now the writer thread commits each batch without durability
//! (`Durability::None`: the pages stay in redb's memory), appends the batch's changes to this
//! log (table, key, value; a record per commit, with its sequence and a checksum) and goes on
//! with the next batch, while the store's sync thread syncs the log and only then answers
//! the batch's requests. Every [`CHECKPOINT_BYTES`] of log or [`CHECKPOINT_INTERVAL`], the
//! writer makes redb durable (an immediate commit, which also covers every commit before
//! it) and retires the log's records (the log moves to its other file: [`FileLog`]); every
//! immediate write (attestation, acknowledgements, pruning)
//! does the same for redb.
//!
//! redb's `meta` table holds the sequence of the last record each commit applied
//! (`wal_applied`), so at start the records after the one redb has durably are replayed, in
//! order, into the tables, before anything else reads them; a record cut short by a crash
//! (never synced, so never answered) ends the replay.
use std::borrow::Borrow;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use redb::{Key, TableDefinition, TableHandle, Value};

use super::tables::*;

/// The writer makes redb durable and empties the log after this much log...
pub(super) const CHECKPOINT_BYTES: u64 = 16 << 20;
/// ...or this long after the last time, whichever comes first.
pub(super) const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

/// Where the log lives: a file beside the store, or memory with fault injection (tests).
pub trait LogStorage: Send + Sync + 'static {
    /// Appends at the end (not durable until `sync`).
    fn append(&self, bytes: &[u8]) -> std::io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&self) -> std::io::Result<()>;
    /// Every record held, oldest first.
    fn read_all(&self) -> std::io::Result<Vec<u8>>;
    /// Empties the log now (its records are all in redb, durably).
    fn clear(&self) -> std::io::Result<()>;
    /// After a checkpoint: every record appended so far is in redb, durably, and may go;
    /// later appends start afresh. May empty the old records in the background, so that
    /// the writer does not wait for it; a record kept by a crash meanwhile is one redb
    /// holds, which a replay skips.
    fn retire(&self) -> std::io::Result<()> {
        self.clear()
    }
}

/// The log in two files, `<store>.wal` and `<store>.wal.1`, appended to in turn: at a
/// checkpoint the writer moves to the other file (emptied after the checkpoint before) and
/// a thread of its own empties the one it leaves; truncating a few MiB took 5-50 ms on this
/// machine's disk, under the writer's feet (docs/benchmarks.md).
pub(super) struct FileLog {
    files: [std::fs::File; 2],
    /// The file appended to.
    current: std::sync::atomic::AtomicUsize,
    /// The truncation of the file left at the last checkpoint, if still to be joined.
    emptying: std::sync::Mutex<Option<std::thread::JoinHandle<std::io::Result<()>>>>,
}

impl FileLog {
    pub fn open(store: &Path) -> Result<FileLog> {
        let open = |suffix: &str| -> Result<std::fs::File> {
            let mut name = store.as_os_str().to_owned();
            name.push(suffix);
            let path = std::path::PathBuf::from(name);
            let existed = path.exists();
            let file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .with_context(|| format!("open the store's log {}", path.display()))?;
            if !existed {
                crate::sync_parent_dir(&path)?;
            }
            Ok(file)
        };
        let files = [open(".wal")?, open(".wal.1")?];
        // Appends go on in the file whose records are newest: the one whose first record
        // has the higher sequence; one empty: the other; both: the first. The sequence is
        // read from the first record's header alone (read_all reads the records): a header
        // cut short or damaged only orders a file holding nothing a replay takes, since
        // the older file's records are all in redb.
        let first = |f: &std::fs::File| -> Result<Option<u64>> {
            use std::os::unix::fs::FileExt;
            let mut header = [0u8; 16];
            let n = f.read_at(&mut header, 0)?;
            let len = f.metadata()?.len();
            Ok((len > 0).then(|| {
                if n == header.len() {
                    u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"))
                } else {
                    u64::MAX
                }
            }))
        };
        let current = match (first(&files[0])?, first(&files[1])?) {
            (Some(a), Some(b)) if b > a => 1,
            (None, Some(_)) => 1,
            _ => 0,
        };
        Ok(FileLog {
            files,
            current: std::sync::atomic::AtomicUsize::new(current),
            emptying: std::sync::Mutex::new(None),
        })
    }

    fn current(&self) -> &std::fs::File {
        &self.files[self.current.load(std::sync::atomic::Ordering::Acquire)]
    }

    /// Waits for the last background truncation.
    fn emptied(&self) -> std::io::Result<()> {
        let handle = self
            .emptying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match handle {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(std::io::Error::other("emptying the store's log panicked"))
            }),
            None => Ok(()),
        }
    }
}

fn read_file(f: &std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let len = f.metadata()?.len() as usize;
    let mut out = vec![0; len];
    f.read_exact_at(&mut out, 0)?;
    Ok(out)
}

impl LogStorage for FileLog {
    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.current().write_all(bytes)
    }

    /// The current file: records appended to the other one before the last checkpoint
    /// are in redb durably. (The switch is made before any record is appended to the new
    /// file and handed to the sync thread, so a sync for such a record sees it.)
    fn sync(&self) -> std::io::Result<()> {
        self.current().sync_data()
    }

    /// The older file's records, then the newer's. The older holds records only if the
    /// crash came before its truncation reached the disk: every one of them is then in
    /// redb durably (a checkpoint came before the switch), and the replay skips them.
    fn read_all(&self) -> std::io::Result<Vec<u8>> {
        let current = self.current.load(std::sync::atomic::Ordering::Acquire);
        let mut out = read_file(&self.files[1 - current])?;
        out.extend(read_file(&self.files[current])?);
        Ok(out)
    }

    fn clear(&self) -> std::io::Result<()> {
        self.emptied()?;
        for f in &self.files {
            f.set_len(0)?;
        }
        self.current.store(0, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn retire(&self) -> std::io::Result<()> {
        // The file appended to next must be empty: its truncation had a checkpoint's time.
        self.emptied()?;
        let old = self.current.load(std::sync::atomic::Ordering::Acquire);
        let file = self.files[old].try_clone()?;
        self.current
            .store(1 - old, std::sync::atomic::Ordering::Release);
        let handle = std::thread::Builder::new()
            .name("store-log-empty".into())
            .spawn(move || file.set_len(0))?;
        *self.emptying.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }
}

/// The id of the latest registers' and pairs' changes in the log ([`Changes::hot`]).
const HOT: u8 = 254;

/// The tables a batched write may change, by their id in the log.
fn table_id(name: &str) -> u8 {
    match name {
        "meta" => 0,
        "mirrors" => 1,
        "mirror_keys" => 2,
        "mmr_owners" => 3,
        "reading_records" => 4,
        "register_ids" => 5,
        "register_names" => 6,
        "measurements_by_time" => 7,
        "designated" => 8,
        "latest" => 9,
        "pairs" => 10,
        "journal" => 11,
        "attested" => 12,
        "batches" => 13,
        "export_queue" => 14,
        other => panic!("table {other} is not in the store's log"),
    }
}

fn apply<K: Key + 'static, V: Value + 'static>(
    txn: &redb::WriteTransaction,
    table: TableDefinition<K, V>,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    let mut t = txn.open_table(table)?;
    let k = K::from_bytes(key);
    match value {
        Some(v) => {
            t.insert(&k, V::from_bytes(v))?;
        }
        None => {
            t.remove(&k)?;
        }
    }
    Ok(())
}

fn apply_op(txn: &redb::WriteTransaction, id: u8, key: &[u8], value: Option<&[u8]>) -> Result<()> {
    match id {
        0 => apply(txn, META, key, value),
        1 => apply(txn, MIRRORS, key, value),
        2 => apply(txn, MIRROR_KEYS, key, value),
        3 => apply(txn, MMR_OWNERS, key, value),
        4 => apply(txn, READINGS, key, value),
        5 => apply(txn, REGISTER_IDS, key, value),
        6 => apply(txn, REGISTER_NAMES, key, value),
        7 => apply(txn, MEASUREMENTS, key, value),
        8 => apply(txn, DESIGNATED, key, value),
        9 => apply(txn, LATEST, key, value),
        10 => apply(txn, PAIRS, key, value),
        11 => apply(txn, JOURNAL, key, value),
        12 => apply(txn, ATTESTED, key, value),
        13 => apply(txn, BATCHES, key, value),
        14 => apply(txn, EXPORT_QUEUE, key, value),
        other => bail!("unknown table {other} in the store's log"),
    }
}

/// One commit's changes, as they are made: `{[table u8][key len u32][key][value len u32,
/// u32::MAX for a removal][value]}`.
#[derive(Default, Debug, Clone, PartialEq)]
pub(super) struct Changes {
    ops: Vec<u8>,
}

impl Changes {
    pub fn insert<'k, 'v, K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<K, V>,
        key: &K::SelfType<'k>,
        value: &V::SelfType<'v>,
    ) {
        self.op(
            table.name(),
            K::as_bytes(key).as_ref(),
            Some(V::as_bytes(value).as_ref()),
        );
    }

    pub fn remove<'k, K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<K, V>,
        key: &K::SelfType<'k>,
    ) {
        self.op(table.name(), K::as_bytes(key).as_ref(), None);
    }

    fn op(&mut self, table: &str, key: &[u8], value: Option<&[u8]>) {
        self.ops.push(table_id(table));
        self.ops
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.ops.extend_from_slice(key);
        match value {
            Some(v) => {
                self.ops.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.ops.extend_from_slice(v);
            }
            None => self.ops.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }

    /// The latest registers and pairs a batched commit changed (`hot::encode`): journalled
    /// in redb only at the next durable commit (store/hot.rs, `Hot::pending`).
    pub fn hot(&mut self, encoded: &[u8]) {
        self.ops.push(HOT);
        self.ops.extend_from_slice(&0u32.to_le_bytes());
        self.ops
            .extend_from_slice(&(encoded.len() as u32).to_le_bytes());
        self.ops.extend_from_slice(encoded);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The log record: `[len u32][crc32 u32][sequence u64][synced through u64][ops]`,
    /// `len` and the checksum covering the rest; `synced through` is the last record known
    /// synced when this one was written.
    pub fn record(&self, sequence: u64, synced_through: u64) -> Vec<u8> {
        let body_len = 16 + self.ops.len();
        let mut out = Vec::with_capacity(8 + body_len);
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&sequence.to_le_bytes());
        out.extend_from_slice(&synced_through.to_le_bytes());
        out.extend_from_slice(&self.ops);
        let crc = crc32fast::hash(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// Inserts `value` at `key` in `table`, and notes it in `log` when the transaction is
/// logged (a batched one).
pub(super) fn insert<'k, 'v, K: Key + 'static, V: Value + 'static>(
    txn: &redb::WriteTransaction,
    log: Option<&mut Changes>,
    table: TableDefinition<K, V>,
    key: impl Borrow<K::SelfType<'k>>,
    value: impl Borrow<V::SelfType<'v>>,
) -> Result<()> {
    if let Some(log) = log {
        log.insert(table, key.borrow(), value.borrow());
    }
    txn.open_table(table)?.insert(key, value)?;
    Ok(())
}

/// Removes `key` from `table`, noted in `log` as [`insert`] does.
pub(super) fn remove<'k, K: Key + 'static, V: Value + 'static>(
    txn: &redb::WriteTransaction,
    log: Option<&mut Changes>,
    table: TableDefinition<K, V>,
    key: impl Borrow<K::SelfType<'k>>,
) -> Result<()> {
    if let Some(log) = log {
        log.remove(table, key.borrow());
    }
    txn.open_table(table)?.remove(key)?;
    Ok(())
}

/// Applies the log's records after `applied` (the last one redb has) to `txn`, in order;
/// returns how many, the last sequence applied, and the latest registers and pairs the
/// records changed (for the tables, after the journal is folded). Records must follow on from `applied`
/// (else the log is not this store's: one restored from a backup, say). A record cut short
/// or damaged ends the replay if it was never synced whole (so none of its requests was
/// answered); the records after it may be what an emptied log held before (emptying is not
/// synced by itself), or later records that a power cut during their sync kept while it
/// lost part of this one. But if a later record says this one had been synced, the disk
/// lost synced data and the start is refused.
pub(super) fn replay(
    txn: &redb::WriteTransaction,
    bytes: &[u8],
    applied: u64,
) -> Result<(usize, u64, super::hot::Overlay)> {
    let (mut at, mut count, mut last) = (0usize, 0usize, applied);
    let mut hot = super::hot::Overlay::default();
    while at < bytes.len() {
        let Some(record) = read_record(&bytes[at..]) else {
            // A later record written once this one (`last + 1`) was known synced.
            let knew_synced =
                |i: usize| read_record(&bytes[i..]).is_some_and(|r| r.0 > last && r.1 > last);
            if let Some(next) = (at + 1..bytes.len()).find(|&i| knew_synced(i)) {
                bail!(
                    "the store's log is damaged at byte {at} (record {}), which the record at byte {next} says was synced: the disk lost data; restore the store from a backup and move its log files (<store>.wal, <store>.wal.1; {} bytes) aside",
                    last + 1,
                    bytes.len()
                );
            }
            tracing::warn!(
                at,
                bytes = bytes.len() - at,
                "store: the log ends with a record cut short (a crash while it was written); it was never answered and is dropped"
            );
            break;
        };
        let (sequence, _, ops, len) = record;
        at += len;
        if sequence <= applied {
            continue;
        }
        if sequence != last + 1 {
            bail!(
                "the store's log holds record {sequence} after record {last}: it is not this store's log (a store restored from a backup beside a newer log?); move its log files (<store>.wal, <store>.wal.1) aside to start from the store alone"
            );
        }
        let mut rest = ops;
        while !rest.is_empty() {
            let (id, key, value, used) =
                read_op(rest).with_context(|| format!("the store's log record {sequence}"))?;
            if id == HOT {
                let changes = super::hot::decode(value.unwrap_or_default())
                    .with_context(|| format!("the store's log record {sequence}"))?;
                hot.absorb(changes);
            } else {
                apply_op(txn, id, key, value)
                    .with_context(|| format!("replay the store's log record {sequence}"))?;
            }
            rest = &rest[used..];
        }
        count += 1;
        last = sequence;
    }
    Ok((count, last, hot))
}

/// A whole record at the start of `bytes`: its sequence, the last record synced when it
/// was written, its ops and its length.
fn read_record(bytes: &[u8]) -> Option<(u64, u64, &[u8], usize)> {
    let body_len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if body_len < 16 {
        return None;
    }
    let body = bytes.get(8..8 + body_len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let sequence = u64::from_le_bytes(body[0..8].try_into().ok()?);
    let synced_through = u64::from_le_bytes(body[8..16].try_into().ok()?);
    Some((sequence, synced_through, &body[16..], 8 + body_len))
}

type Op<'a> = (u8, &'a [u8], Option<&'a [u8]>, usize);

fn read_op(bytes: &[u8]) -> Result<Op<'_>> {
    let short = || anyhow::anyhow!("an operation is cut short");
    let id = *bytes.first().ok_or_else(short)?;
    let key_len = u32::from_le_bytes(bytes.get(1..5).ok_or_else(short)?.try_into()?) as usize;
    let key = bytes.get(5..5 + key_len).ok_or_else(short)?;
    let at = 5 + key_len;
    let value_len = u32::from_le_bytes(bytes.get(at..at + 4).ok_or_else(short)?.try_into()?);
    if value_len == u32::MAX {
        return Ok((id, key, None, at + 4));
    }
    let value = bytes
        .get(at + 4..at + 4 + value_len as usize)
        .ok_or_else(short)?;
    Ok((id, key, Some(value), at + 4 + value_len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable};

    /// A record of meter `n`'s pairs entry, written when `synced` was the last synced.
    fn record(sequence: u64, synced: u64) -> Vec<u8> {
        let mut changes = Changes::default();
        let key = format!("M{sequence}");
        changes.insert(PAIRS, &key.as_str(), &[sequence as u8].as_slice());
        changes.record(sequence, synced)
    }

    /// Replays `log` over a store holding records through `applied`; the keys it then has.
    fn replayed(log: &[u8], applied: u64) -> Result<Vec<String>> {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        let txn = db.begin_write()?;
        create_all(&txn)?;
        let (_, _, hot) = replay(&txn, log, applied)?;
        assert!(hot.is_empty());
        txn.commit()?;
        let read = db.begin_read()?;
        let pairs = read.open_table(PAIRS)?;
        let keys = pairs
            .iter()?
            .map(|e| Ok(e?.0.value().to_string()))
            .collect::<Result<Vec<_>>>()?;
        Ok(keys)
    }

    #[test]
    fn a_damaged_record_ends_the_replay_unless_a_later_one_knew_it_synced() {
        let (one, two, three) = (record(1, 0), record(2, 0), record(3, 0));
        let damaged = |three: &[u8]| {
            let mut log = [one.clone(), two.clone(), three.to_vec()].concat();
            log[one.len() + 20] ^= 0xFF;
            log
        };
        // Records 2 and 3 were synced together and the power cut kept 3 but not all of 2:
        // neither was answered.
        assert_eq!(replayed(&damaged(&three), 0).unwrap(), vec!["M1"]);
        // Record 3 was written once 2 was synced: 2 was answered, and the disk lost it.
        let err = replayed(&damaged(&record(3, 2)), 0).unwrap_err();
        assert!(format!("{err:#}").contains("says was synced"), "{err:#}");
        // Records the store already has are skipped; a record cut short at the end is
        // dropped.
        let log = [one.clone(), two.clone(), three[..10].to_vec()].concat();
        assert_eq!(replayed(&log, 1).unwrap(), vec!["M2"]);
    }

    #[test]
    fn a_log_that_does_not_follow_on_from_the_store_is_refused() {
        // The store holds records through 1; the log starts at 3 (a store restored from a
        // backup beside a newer log).
        let log = [record(3, 2), record(4, 3)].concat();
        let err = replayed(&log, 1).unwrap_err();
        assert!(
            format!("{err:#}").contains("not this store's log"),
            "{err:#}"
        );
        assert_eq!(replayed(&log, 2).unwrap(), vec!["M3", "M4"]);
    }
    /// A store path in a fresh directory, and the paths of its two log files.
    fn log_paths() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        [std::path::PathBuf; 2],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("bridge.redb");
        let files = [
            dir.path().join("bridge.redb.wal"),
            dir.path().join("bridge.redb.wal.1"),
        ];
        (dir, store, files)
    }

    #[test]
    fn a_checkpoint_moves_the_log_to_its_other_file_and_empties_the_old_one() {
        let (_dir, store, files) = log_paths();
        let log = FileLog::open(&store).unwrap();
        log.append(&record(1, 0)).unwrap();
        log.append(&record(2, 1)).unwrap();
        log.sync().unwrap();
        log.retire().unwrap();
        log.append(&record(3, 2)).unwrap();
        log.sync().unwrap();
        log.emptied().unwrap();
        assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 0);
        assert_eq!(std::fs::read(&files[1]).unwrap(), record(3, 2));
        // Records 1 and 2 are in redb: what the log gives back is record 3.
        assert_eq!(replayed(&log.read_all().unwrap(), 2).unwrap(), vec!["M3"]);
        // The next checkpoint goes back to the first file, emptied.
        log.retire().unwrap();
        log.append(&record(4, 3)).unwrap();
        log.emptied().unwrap();
        assert_eq!(std::fs::read(&files[0]).unwrap(), record(4, 3));
        assert_eq!(std::fs::metadata(&files[1]).unwrap().len(), 0);
        // Reopened (the log is replayed at start), appends go on in the file holding
        // the newest records.
        drop(log);
        let log = FileLog::open(&store).unwrap();
        log.append(&record(5, 4)).unwrap();
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            [record(4, 3), record(5, 4)].concat()
        );
        log.clear().unwrap();
        assert!(log.read_all().unwrap().is_empty());
    }

    #[test]
    fn a_crash_before_the_old_file_was_emptied_replays_the_newer_records_only() {
        let (_dir, store, files) = log_paths();
        // The old file (records 1-2, in redb through 2) was never truncated on disk; the
        // newer one, in the second file, holds 3-4.
        std::fs::write(&files[0], [record(1, 0), record(2, 1)].concat()).unwrap();
        std::fs::write(&files[1], [record(3, 2), record(4, 3)].concat()).unwrap();
        let log = FileLog::open(&store).unwrap();
        assert_eq!(
            replayed(&log.read_all().unwrap(), 2).unwrap(),
            vec!["M3", "M4"]
        );
        // Appends would go on after record 4.
        log.append(&record(5, 4)).unwrap();
        assert_eq!(
            std::fs::read(&files[1]).unwrap(),
            [record(3, 2), record(4, 3), record(5, 4)].concat()
        );
        // The same with the files the other way round.
        let (_dir, store, files) = log_paths();
        std::fs::write(&files[1], [record(1, 0), record(2, 1)].concat()).unwrap();
        std::fs::write(&files[0], [record(3, 2), record(4, 3)].concat()).unwrap();
        let log = FileLog::open(&store).unwrap();
        assert_eq!(
            replayed(&log.read_all().unwrap(), 2).unwrap(),
            vec!["M3", "M4"]
        );
    }

    #[test]
    fn a_crash_during_the_first_append_after_a_switch_drops_that_record_only() {
        let (_dir, store, files) = log_paths();
        // Record 3 was cut short in the newer file; the older still holds 1-2 (in redb).
        let three = record(3, 2);
        std::fs::write(&files[0], [record(1, 0), record(2, 1)].concat()).unwrap();
        std::fs::write(&files[1], &three[..three.len() / 2]).unwrap();
        let log = FileLog::open(&store).unwrap();
        assert_eq!(
            replayed(&log.read_all().unwrap(), 2).unwrap(),
            Vec::<String>::new()
        );
        log.append(&record(3, 2)).unwrap();
        assert!(std::fs::read(&files[1]).unwrap().len() > three.len());
    }
}
