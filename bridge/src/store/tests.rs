//! The store's tests: layouts and pruning, group commit and fail-stop by fault injection,
//! and the latest registers against power cuts (property test).
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use redb::{Database, ReadableDatabase};

use super::hot::CheckpointPolicy;
use super::tables::{json_at, mirror_key, to_json, JOURNAL, MMR_OWNERS, PAIRS};
use super::upgrade::{
    ARRIVAL_INDEX, ARRIVAL_READINGS, JSON_READINGS, OLD_MEASUREMENTS, OLD_READINGS,
};
use super::writer::Acknowledged;
use super::*;
use crate::normalize::{Flow, RegisterReading};

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
        replaced_by: None,
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
            .write_immediate(|w| -> Result<()> {
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
        .write_immediate(|w| -> Result<()> {
            w.put_batch(&batch(1, day))?;
            w.put_batch(&batch(2, 2 * day))?;
            w.put_batch(&batch(3, 39 * day))?;
            assert_eq!(w.acknowledge(1)?, Acknowledged::Done);
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
            batches: 1,
            export_dropped: 0,
            unexported_batches: 0,
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
        .write_immediate(|w| -> Result<()> {
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
        .write_immediate(|w| -> Result<()> {
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
        .write_immediate(|w| -> Result<()> {
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
    let result: Result<()> = store.write_immediate(|w| {
        w.put_mirror(None, "AA", &mup("01"))?;
        anyhow::bail!("refused")
    });
    assert!(result.is_err());
    assert_eq!(store.read().unwrap().mirror_count().unwrap(), 0);
}

/// Every cached value (store/cache.rs) is the one in its table.
fn assert_cache_is_committed(store: &Store) {
    use super::tables::{DESIGNATED, MIRRORS, REGISTER_IDS};
    let txn = store.engine.db.begin_read().unwrap();
    let cache = super::cache::lock(&store.engine.shared.cache);
    let mirrors = txn.open_table(MIRRORS).unwrap();
    for (id, record) in &cache.mirrors {
        let stored: Option<MirrorRecord> = json_at(&mirrors, *id).unwrap();
        assert_eq!(stored.as_ref(), Some(&**record), "mirror {id}");
    }
    let owners = txn.open_table(MMR_OWNERS).unwrap();
    for (mrid, lfdi) in &cache.mmr_owners {
        let stored = owners
            .get(mrid.as_str())
            .unwrap()
            .map(|v| v.value().to_string());
        assert_eq!(stored.as_ref(), Some(lfdi), "owner of {mrid}");
    }
    let designated = txn.open_table(DESIGNATED).unwrap();
    for (key, mmr) in &cache.designated {
        let stored = designated
            .get(key.as_str())
            .unwrap()
            .map(|v| v.value().to_string());
        assert_eq!(stored.as_ref(), Some(mmr), "designation {key}");
    }
    let ids = txn.open_table(REGISTER_IDS).unwrap();
    for (name, id) in &cache.register_ids {
        let stored = ids.get(name.as_str()).unwrap().map(|v| v.value());
        assert_eq!(stored, Some(*id), "register {name}");
    }
}

#[test]
fn cached_lookups_see_a_transactions_own_changes_and_otherwise_only_what_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
    let mut defined = mup("01");
    defined
        .mirror_meter_readings
        .push(sep2::MirrorMeterReading {
            mrid: "A1".into(),
            ..Default::default()
        });
    // Committed: a mirror, its register's owner and designation, a register id.
    let id = {
        let defined = defined.clone();
        store
            .write_batched_blocking(move |w| {
                let id = w.put_mirror(None, "AA", &defined)?;
                w.set_mmr_owner("A1", "AA")?;
                w.designate("AA", Flow::Import, "A1")?;
                w.record_reading(&reading_at("AA", Flow::Import, 10, 1))?;
                // Its own changes, before they commit.
                assert_eq!(w.mirror(id)?.unwrap().lfdi, "AA");
                assert_eq!(w.mmr_owner("A1")?.as_deref(), Some("AA"));
                assert_eq!(w.designated_pair("AA")?[0].as_deref(), Some("A1"));
                Ok::<_, anyhow::Error>(id)
            })
            .unwrap()
    };
    assert_cache_is_committed(&store);
    // Refused (batched, then immediate) after changing each: nothing of it is seen later,
    // although the lookups inside it saw its changes.
    for immediate in [false, true] {
        let job = move |w: &Writer| -> Result<()> {
            let mut other = mup("01");
            other.device_lfdi = "BB".repeat(20);
            w.put_mirror(Some(id), "BB", &other)?;
            w.set_mmr_owner("A1", "BB")?;
            w.set_mmr_owner("A2", "BB")?;
            w.designate("AA", Flow::Import, "A2")?;
            w.designate("AA", Flow::Export, "A2")?;
            w.record_reading(&reading_at("CC", Flow::Export, 10, 1))?;
            assert_eq!(w.mirror(id)?.unwrap().lfdi, "BB");
            assert_eq!(w.mmr_owner("A1")?.as_deref(), Some("BB"));
            assert_eq!(
                w.designated_pair("AA")?,
                [Some("A2".to_string()), Some("A2".to_string())]
            );
            Err(anyhow!("refused"))
        };
        let refused = if immediate {
            store.write_immediate(job)
        } else {
            store.write_batched_blocking(job)
        };
        assert_eq!(refused.unwrap_err().to_string(), "refused");
        let seen = store
            .write_immediate(|w| {
                Ok::<_, anyhow::Error>((
                    w.mirror(id)?.map(|r| r.lfdi),
                    w.mmr_owner("A1")?,
                    w.mmr_owner("A2")?,
                    w.designated_pair("AA")?,
                    w.reading_at("CC", "Export", 10)?,
                ))
            })
            .unwrap();
        assert_eq!(
            seen,
            (
                Some("AA".into()),
                Some("AA".into()),
                None,
                [Some("A1".into()), None],
                None
            )
        );
        assert_cache_is_committed(&store);
    }
    // Deleting the mirror releases its register's owner and designation, in the cache too.
    store
        .write_batched_blocking(move |w| {
            let record = w.mirror(id)?.unwrap();
            w.delete_mirror(&record)
        })
        .unwrap();
    let seen = store
        .write_immediate(|w| {
            Ok::<_, anyhow::Error>((w.mirror(id)?, w.mmr_owner("A1")?, w.designated_pair("AA")?))
        })
        .unwrap();
    assert_eq!(seen, (None, None, [None, None]));
    assert_cache_is_committed(&store);
    // The register id assigned to AA's import register serves its readings after a restart.
    drop(store);
    let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
    let wh = store
        .write_immediate(|w| w.reading_at("AA", "Import", 10))
        .unwrap();
    assert_eq!(wh, Some(1));
    assert_cache_is_committed(&store);
}

#[test]
fn only_the_oldest_batch_awaiting_it_is_acknowledged_and_sequences_skip_the_chains_floor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.redb");
    let store = Store::open(&path).unwrap();
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
        replaced_by: None,
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
    let sign = |store: &Store| -> u64 {
        store
            .write_immediate(|w| -> Result<u64> {
                let s = w.next_batch_sequence()?;
                w.put_batch(&batch(s))?;
                Ok(s)
            })
            .unwrap()
    };
    let pending = |store: &Store| store.read().unwrap().pending_batches().unwrap();
    for s in 1..=3 {
        assert_eq!(sign(&store), s);
    }
    assert_eq!(pending(&store), 3);
    // Out of order: refused, naming the batch to acknowledge first; nothing changes.
    let ack = |store: &Store, s| store.write_immediate(move |w| w.acknowledge(s)).unwrap();
    assert_eq!(ack(&store, 2), Acknowledged::NotNext(1));
    assert_eq!(unacked(&store), vec![1, 2, 3]);
    assert_eq!(pending(&store), 3);
    assert_eq!(ack(&store, 9), Acknowledged::Unknown);
    assert_eq!(ack(&store, 1), Acknowledged::Done);
    assert_eq!(ack(&store, 1), Acknowledged::Already);
    assert_eq!(ack(&store, 2), Acknowledged::Done);
    assert_eq!(unacked(&store), vec![3]);
    assert_eq!(pending(&store), 1);
    // A batch signed twice under one sequence is refused.
    assert!(store.write_immediate(|w| w.put_batch(&batch(3))).is_err());
    // The chain has settled through 40 (a store restored from a backup): the next batch
    // is 41, the floor never goes down, and 3 can still be acknowledged, then 41.
    assert_eq!(
        store.write_immediate(|w| w.raise_chain_floor(40)).unwrap(),
        40
    );
    assert_eq!(
        store.write_immediate(|w| w.raise_chain_floor(7)).unwrap(),
        40
    );
    assert_eq!(sign(&store), 41);
    assert_eq!(unacked(&store), vec![3, 41]);
    assert_eq!(ack(&store, 41), Acknowledged::NotNext(3));
    assert_eq!(ack(&store, 3), Acknowledged::Done);
    assert_eq!(ack(&store, 41), Acknowledged::Done);
    assert_eq!(pending(&store), 0);
    // All of it survives a restart.
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.read().unwrap().chain_floor().unwrap(), 40);
    assert_eq!(sign(&store), 42);
    assert_eq!(pending(&store), 1);
}

#[test]
fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.redb");
    {
        let store = Store::open(&path).unwrap();
        store
            .write_immediate(|w| -> Result<()> {
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
    /// The store's log (store/wal.rs), with the same faults: what was appended, and what
    /// its last sync made durable.
    log: Arc<Mutex<Vec<u8>>>,
    log_synced: Arc<Mutex<Vec<u8>>>,
    /// While set, appends to the log fail (a full disk, say).
    fail_append: Arc<std::sync::atomic::AtomicBool>,
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
        let log = self.log_synced.lock().unwrap().clone();
        *cut.log.lock().unwrap() = log.clone();
        *cut.log_synced.lock().unwrap() = log;
        cut
    }

    /// A sync's faults: counted, delayed, held, failed or panicking as set.
    fn sync_faults(&self) -> Result<(), std::io::Error> {
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
        Ok(())
    }

    fn open(&self) -> Store {
        Store::open_on(self.clone(), Arc::new(self.clone())).unwrap()
    }
}

impl super::wal::LogStorage for Faulty {
    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        if self.fail_append.load(Ordering::Acquire) {
            return Err(std::io::Error::other("injected append failure"));
        }
        self.log.lock().unwrap().extend_from_slice(bytes);
        Ok(())
    }
    /// Durable: at least what was appended when the sync started.
    fn sync(&self) -> std::io::Result<()> {
        let log = self.log.lock().unwrap().clone();
        self.sync_faults()?;
        *self.log_synced.lock().unwrap() = log;
        Ok(())
    }
    fn read_all(&self) -> std::io::Result<Vec<u8>> {
        Ok(self.log.lock().unwrap().clone())
    }
    fn clear(&self) -> std::io::Result<()> {
        self.log.lock().unwrap().clear();
        Ok(())
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
        self.sync_faults()?;
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
    let txn = store.engine.db.begin_read().unwrap();
    let table = txn.open_table(MMR_OWNERS).unwrap();
    table.get(mrid).unwrap().map(|v| v.value().to_string())
}

/// Starts `writes` threads, 5 ms apart, each running `job(i)` through the writer, job 0
/// holding the writer for 100 ms so that the others queue into shared batches; returns
/// their results.
fn queued(
    store: &Arc<Store>,
    writes: usize,
    job: impl Fn(usize) -> Box<dyn FnMut(&Writer) -> Result<()> + Send> + Send + Sync,
) -> Vec<Result<()>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writes)
            .map(|i| {
                let mut f = job(i);
                if i == 0 {
                    f = Box::new(move |w: &Writer| {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        f(w)
                    });
                }
                let (store, f) = (store.clone(), f);
                let handle = scope.spawn(move || store.write_batched_blocking(f));
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
    let store = Arc::new(backend.open());
    backend.sync_delay_ms.store(100, Ordering::Relaxed);
    let results = queued(&store, 12, |i| {
        Box::new(move |w: &Writer| w.set_mmr_owner(&format!("M{i}"), "AA"))
    });
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let (batches, jobs) = store.batch_counts();
    assert_eq!(jobs, 12);
    // The first job commits alone; the others queue behind it and share the next
    // transactions and syncs of the log.
    assert!(batches <= 4, "{batches} batches for 12 jobs");
    let syncs = store.engine.shared.syncs.load(Ordering::Relaxed);
    assert!(syncs <= 4, "{syncs} syncs for 12 jobs");
    for i in 0..12 {
        assert_eq!(owner(&store, &format!("M{i}")).as_deref(), Some("AA"));
    }
}

#[test]
fn a_refused_or_panicking_write_is_discarded_alone() {
    let backend = Faulty::default();
    let store = Arc::new(backend.open());
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
        .write_batched_blocking(|w| w.set_mmr_owner("after", "AA"))
        .unwrap();
    assert!(store.failure().is_none());
}

#[test]
fn a_failed_fsync_fails_the_store_for_good() {
    let backend = Faulty::default();
    let store = Arc::new(backend.open());
    store
        .write_batched_blocking(|w| w.set_mmr_owner("before", "AA"))
        .unwrap();
    backend.fail_sync.store(true, Ordering::Relaxed);
    let err = store
        .write_batched_blocking(|w| w.set_mmr_owner("lost", "AA"))
        .unwrap_err();
    assert_storage_failed(&err);
    assert!(store.failure().unwrap().contains("injected fsync failure"));
    // Even once the disk answers again, nothing more is accepted: the process must
    // restart on what is really on disk.
    backend.fail_sync.store(false, Ordering::Relaxed);
    let err = store
        .write_batched_blocking(|w| w.set_mmr_owner("later", "AA"))
        .unwrap_err();
    assert_storage_failed(&err);
    let err = store
        .write_immediate(|w| w.set_mmr_owner("later", "AA"))
        .unwrap_err();
    assert_storage_failed(&err);
}

#[test]
fn a_failed_durable_commit_fails_the_store() {
    let backend = Faulty::default();
    let store = backend.open();
    backend.fail_sync.store(true, Ordering::Relaxed);
    assert!(store
        .write_immediate(|w| w.put_batch(&batch(1, 0)))
        .is_err());
    assert!(store.failure().unwrap().contains("durable commit failed"));
    backend.fail_sync.store(false, Ordering::Relaxed);
    let err = store
        .write_batched_blocking(|w| w.set_mmr_owner("later", "AA"))
        .unwrap_err();
    assert_storage_failed(&err);
}

fn latest_wh(store: &Store, lfdi: &str) -> Option<u64> {
    let reader = store.read().unwrap();
    reader.latest(lfdi, Flow::Export).unwrap().map(|r| r.wh)
}

#[test]
fn a_panic_in_the_logs_sync_fails_the_store_instead_of_hanging() {
    let backend = Faulty::default();
    let store = Arc::new(backend.open());
    let lfdi = "AA".repeat(20);
    store
        .write_batched_blocking({
            let r = export_at(&lfdi, 100, 5);
            move |w| w.record_reading(&r)
        })
        .unwrap();
    backend.panic_sync.store(true, Ordering::Relaxed);
    // The sync of the log panics: the waiting request is answered.
    let err = store
        .write_batched_blocking({
            let r = export_at(&lfdi, 160, 9);
            move |w| w.record_reading(&r)
        })
        .unwrap_err();
    assert_storage_failed(&err);
    assert!(store.failure().unwrap().contains("panicked"));
    backend.panic_sync.store(false, Ordering::Relaxed);
    let err = store
        .write_batched_blocking(|w| w.set_mmr_owner("later", "AA"))
        .unwrap_err();
    assert_storage_failed(&err);
    let err = store
        .write_immediate(|w| w.record_reading(&export_at(&lfdi, 220, 12)))
        .unwrap_err();
    assert_storage_failed(&err);
    // After a restart, the registers are those of the last write that was answered.
    let cut = backend.after_power_cut();
    drop(store);
    assert_eq!(latest_wh(&cut.open(), &lfdi), Some(5));
}

#[test]
fn a_panic_in_an_immediate_commit_fails_the_store() {
    let backend = Faulty::default();
    let store = backend.open();
    let lfdi = "AA".repeat(20);
    store
        .write_immediate(|w| w.record_reading(&export_at(&lfdi, 100, 5)))
        .unwrap();
    backend.panic_sync.store(true, Ordering::Relaxed);
    // The caller gets an error (not the panic), and the store stops.
    let err = store
        .write_immediate(|w| w.record_reading(&export_at(&lfdi, 160, 9)))
        .unwrap_err();
    assert_storage_failed(&err);
    assert!(store.failure().unwrap().contains("durable commit panicked"));
    backend.panic_sync.store(false, Ordering::Relaxed);
    let err = store
        .write_immediate(|w| w.record_reading(&export_at(&lfdi, 220, 12)))
        .unwrap_err();
    assert_storage_failed(&err);
    let err = store
        .write_batched_blocking(|w| w.set_mmr_owner("later", "AA"))
        .unwrap_err();
    assert_storage_failed(&err);
    assert_eq!(latest_wh(&store, &lfdi), Some(5));
}

#[tokio::test]
async fn dedicated_jobs_run_one_at_a_time_on_the_stores_thread_and_survive_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("bridge.redb")).unwrap());
    let name = store
        .run_dedicated(|| std::thread::current().name().map(String::from))
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("store-dedicated"));
    let err = store
        .run_dedicated(|| -> u32 { panic!("injected panic in a dedicated job") })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err:#}");
    // The thread goes on with the next job, which writes.
    let s = store.clone();
    store
        .run_dedicated(move || s.write_immediate(|w| w.set_mmr_owner("after", "AA")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner(&store, "after").as_deref(), Some("AA"));
}

/// The dedicated thread keeps the priority of the thread that opened the store, however
/// low the caller's (the runtime's threads run `network_nice` lower).
#[cfg(target_os = "linux")]
#[test]
fn dedicated_jobs_keep_the_openers_priority() {
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
        let job = runtime.block_on(store.run_dedicated(niceness)).unwrap();
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
    let txn = store.engine.db.begin_read().unwrap();
    txn.open_table(JOURNAL).unwrap().len().unwrap()
}

/// A store with checkpoint slices (`slices`, one every `slice_entries` commits) and redb
/// made durable every `log_bytes` of log (0: the default).
fn open_with(backend: &Faulty, slices: usize, slice_entries: u64, log_bytes: u64) -> Store {
    let db = Database::builder()
        .create_with_backend(backend.clone())
        .unwrap();
    let policy = CheckpointPolicy {
        slices,
        slice_entries,
        log_bytes: if log_bytes == 0 {
            super::wal::CHECKPOINT_BYTES
        } else {
            log_bytes
        },
        ..CheckpointPolicy::default()
    };
    Store::start_with(db, false, policy, Arc::new(backend.clone())).unwrap()
}

#[test]
fn the_latest_registers_survive_a_power_cut_from_the_journal_and_the_checkpoints() {
    let backend = Faulty::default();
    let store = open_with(&backend, 2, 3, 0);
    // Six durable commits (journal entries 0..=5; batched commits are journalled by the
    // next durable one, store/wal.rs), two slices, a slice every third entry: entry
    // 2's commit writes slice 0 (nothing can go: slice 1 holds everything), entry 5's
    // writes slice 1 and lets entries 0..=2 go.
    for t in 1..=6u32 {
        store
            .write_immediate(move |w| {
                w.record_reading(&reading_at("AA", Flow::Import, t * 10, u64::from(t)))?;
                w.record_reading(&reading_at("AA", Flow::Export, t * 10, u64::from(t) * 2))?;
                w.record_reading(&export_at("BB", t * 10 + 1, u64::from(t) * 3))
            })
            .unwrap();
    }
    assert_eq!(store.engine.shared.hot().slices_written, 2);
    assert_eq!(journal_entries(&store), 3);
    let cut = backend.after_power_cut();
    drop(store);
    let store = open_with(&cut, 2, 3, 0);
    assert_eq!(journal_entries(&store), 0, "folded at start");
    let reader = store.read().unwrap();
    assert_eq!(reader.latest("AA", Flow::Import).unwrap().unwrap().wh, 6);
    assert_eq!(reader.latest("AA", Flow::Export).unwrap().unwrap().wh, 12);
    assert_eq!(reader.latest("BB", Flow::Export).unwrap().unwrap().wh, 18);
    let pair = store.write_immediate(|w| w.pair("AA")).unwrap().unwrap();
    assert_eq!(
        (pair.timestamp, pair.import_wh, pair.export_wh),
        (60, 6, 12)
    );
    assert_eq!(store.write_immediate(|w| w.pair("BB")).unwrap(), None);
    // The tables themselves hold it all now (what `load_hot` reads).
    let txn = store.engine.db.begin_read().unwrap();
    let stored: Pair = json_at(&txn.open_table(PAIRS).unwrap(), "AA")
        .unwrap()
        .unwrap();
    assert_eq!(stored, pair);
}

#[test]
fn a_damaged_journal_entry_stops_the_start_with_its_sequence() {
    let backend = Faulty::default();
    {
        let store = open_with(&backend, 16, 100, 0);
        store
            .write_immediate(|w| w.record_reading(&export_at("AA", 10, 1)))
            .unwrap();
        store
            .write_immediate(|w| -> Result<()> {
                w.txn.open_table(JOURNAL)?.insert(0, [1u8, 9].as_slice())?;
                Ok(())
            })
            .unwrap();
    }
    let db = Database::builder()
        .create_with_backend(backend.clone())
        .unwrap();
    let err = Store::start(db, false, Arc::new(backend)).err().unwrap();
    assert!(format!("{err:#}").contains("journal entry 0"), "{err:#}");
}

/// Three batched posts for meter AA (export 1, 2, 3 Wh at 10, 20, 30), answered, then the
/// power cut (a store closed cleanly makes redb durable): they are in the log, not in
/// redb. Returns the storage as the cut left it and the log's record boundaries.
fn three_logged_posts() -> (Faulty, Vec<usize>) {
    let backend = Faulty::default();
    let store = open_with(&backend, 16, 100, 0);
    for t in 1..=3u32 {
        store
            .write_batched_blocking(move |w| {
                w.record_reading(&export_at("AA", t * 10, u64::from(t)))
            })
            .unwrap();
    }
    let cut = backend.after_power_cut();
    drop(store);
    let log = cut.log_synced.lock().unwrap().clone();
    let mut ends = Vec::new();
    let mut at = 0;
    while at < log.len() {
        at += 8 + u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        ends.push(at);
    }
    assert_eq!(ends.len(), 3, "one record per post");
    (cut, ends)
}

fn export_wh(store: &Store, lfdi: &str) -> Option<u64> {
    store
        .read()
        .unwrap()
        .latest(lfdi, Flow::Export)
        .unwrap()
        .map(|r| r.wh)
}

#[test]
fn answered_posts_survive_a_power_cut_from_the_log_and_a_record_cut_short_is_dropped() {
    let (cut, ends) = three_logged_posts();
    // The power cut hit while a fourth record was being written: half of it made it.
    let mut log = cut.log_synced.lock().unwrap().clone();
    let first = log[..ends[0]].to_vec();
    log.extend_from_slice(&first[..first.len() / 2]);
    *cut.log_synced.lock().unwrap() = log;
    let cut = cut.after_power_cut();
    let store = open_with(&cut, 16, 100, 0);
    assert_eq!(export_wh(&store, "AA"), Some(3));
    assert!(
        cut.log.lock().unwrap().is_empty(),
        "the log is emptied at start"
    );
    assert_eq!(
        store
            .write_immediate(|w| w.reading_at("AA", "Export", 20))
            .unwrap(),
        Some(2)
    );
    // What was replayed is durable in redb: another power cut keeps it.
    let again = cut.after_power_cut();
    drop(store);
    assert_eq!(export_wh(&open_with(&again, 16, 100, 0), "AA"), Some(3));
}

#[test]
fn a_failed_append_to_the_log_fails_the_store_before_anything_makes_its_batch_durable() {
    let backend = Faulty::default();
    let store = open_with(&backend, 16, 100, 0);
    store
        .write_batched_blocking(|w| w.record_reading(&export_at("AA", 10, 1)))
        .unwrap();
    backend.fail_append.store(true, Ordering::Release);
    // Committed in redb, not in the log: refused, and the store fails at once.
    let err = store
        .write_batched_blocking(|w| w.record_reading(&export_at("AA", 20, 2)))
        .unwrap_err();
    assert_storage_failed(&err);
    assert!(store.failure().unwrap().contains("injected append failure"));
    // No durable commit after it (it would make the failed batch durable).
    let err = store
        .write_immediate(|w| w.record_reading(&export_at("BB", 30, 3)))
        .unwrap_err();
    assert_storage_failed(&err);
    backend.fail_append.store(false, Ordering::Release);
    let cut = backend.after_power_cut();
    drop(store);
    let store = open_with(&cut, 16, 100, 0);
    assert_eq!(export_wh(&store, "AA"), Some(1));
    assert_eq!(export_wh(&store, "BB"), None);
    assert_eq!(
        store
            .write_immediate(|w| w.reading_at("AA", "Export", 20))
            .unwrap(),
        None
    );
}

#[test]
fn a_damaged_log_record_before_good_ones_stops_the_start() {
    let (cut, ends) = three_logged_posts();
    cut.log_synced.lock().unwrap()[ends[0] + 20] ^= 0xFF;
    let cut = cut.after_power_cut();
    let db = Database::builder()
        .create_with_backend(cut.clone())
        .unwrap();
    let err = Store::start(db, false, Arc::new(cut)).err().unwrap();
    assert!(format!("{err:#}").contains("damaged"), "{err:#}");
}

#[test]
fn records_redb_already_has_after_a_record_cut_short_are_what_an_emptied_log_left() {
    let (cut, ends) = three_logged_posts();
    let old = cut.log_synced.lock().unwrap().clone();
    // A start replays the three into redb, durably, and empties the log; the next post
    // is record 4, at the log's start.
    let running = cut.after_power_cut();
    let store = open_with(&running, 16, 100, 0);
    store
        .write_batched_blocking(|w| w.record_reading(&export_at("AA", 40, 4)))
        .unwrap();
    let crashed = running.after_power_cut();
    drop(store);
    // Record 4 cut short, and after it records 2 and 3 (emptying the log was not synced
    // by itself): they are records redb has, not a damaged log.
    let new = crashed.log_synced.lock().unwrap().clone();
    let mut log = new[..new.len() / 2].to_vec();
    log.extend_from_slice(&old[ends[0]..]);
    *crashed.log_synced.lock().unwrap() = log;
    let store = open_with(&crashed.after_power_cut(), 16, 100, 0);
    assert_eq!(export_wh(&store, "AA"), Some(3));
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
    /// Through `write_immediate` instead of the writer thread.
    Immediate {
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
        1 => (0..4usize, 1..100u32).prop_map(|(m, dt)| Step::Immediate { m, dt }),
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
    /// Whatever the order of posts, refusals, immediate writes, checkpoint slices (one of
    /// `slices` every `slice_entries` commits), checkpoints of the log (every `log_bytes`)
    /// and power cuts, the store's latest registers and pairs are those of the committed
    /// posts: batched posts survive a power cut from the log, the others from redb.
    #[test]
    fn the_latest_registers_are_those_committed_whatever_the_power_cuts(
        steps in proptest::collection::vec(step(), 1..40),
        slices in 1..4usize,
        slice_entries in 1..5u64,
        // redb made durable and the log emptied every this many bytes of log (0: rarely).
        log_bytes in proptest::prop_oneof![proptest::strategy::Just(0u64), 1..4_000u64],
    ) {
        let mut backend = Faulty::default();
        let mut store = open_with(&backend, slices, slice_entries, log_bytes);
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
                    store.write_batched_blocking(move |w| {
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
                    let refused = store.write_batched_blocking(move |w| {
                        w.record_reading(&reading_at(&who, Flow::Import, t, 7))?;
                        w.record_reading(&reading_at(&who, Flow::Export, t, 7))?;
                        Err::<(), _>(anyhow!("refused"))
                    });
                    proptest::prop_assert!(refused.is_err());
                }
                Step::Immediate { m, dt } => {
                    let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                    model.clock.insert(m, t);
                    store.write_immediate(|w| w.record_reading(&reading_at(&lfdi(m), Flow::Export, t, 3))).unwrap();
                    model.record(m, Flow::Export, t, 3);
                }
                Step::Batch { posts, refuse_at, fail } => {
                    // Job 0 holds the writer until the batch has queued.
                    let (started, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
                    let (batches_before, _) = store.batch_counts();
                    let first = store.engine.submit({
                        let (started, release) = (started.clone(), release.clone());
                        move |w| {
                            started.store(true, Ordering::Release);
                            while !release.load(Ordering::Acquire) {
                                std::thread::sleep(std::time::Duration::from_millis(1));
                            }
                            w.set_mmr_owner("hold", "AA")
                        }
                    }).unwrap();
                    while !started.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    // Every sync from now on fails: nothing of this step is durable.
                    if fail {
                        backend.fail_sync.store(true, Ordering::Release);
                    }
                    let mut queued = Vec::new();
                    let mut done = Vec::new();
                    for (i, &(m, import, export, dt, wh)) in posts.iter().enumerate() {
                        if i == refuse_at {
                            let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                            let who = lfdi(m);
                            queued.push((store.engine.submit(move |w| {
                                w.record_reading(&reading_at(&who, Flow::Import, t, 7))?;
                                w.record_reading(&reading_at(&who, Flow::Export, t, 7))?;
                                Err::<(), _>(anyhow!("refused"))
                            }).unwrap(), false));
                        }
                        let t = model.clock.get(&m).copied().unwrap_or(1_000) + dt;
                        model.clock.insert(m, t);
                        let who = lfdi(m);
                        queued.push((store.engine.submit(move |w| {
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
                        queued.push((store.engine.submit(move |w| {
                            w.set_mmr_owner("refused", &who)?;
                            Err::<(), _>(anyhow!("refused"))
                        }).unwrap(), false));
                    }
                    release.store(true, Ordering::Release);
                    let held = store.engine.outcome(first.blocking_recv());
                    if fail {
                        proptest::prop_assert!(
                            held.as_ref().is_err_and(|e| e.downcast_ref::<StorageFailed>().is_some()),
                            "{:?}", held
                        );
                    } else {
                        proptest::prop_assert!(held.is_ok(), "{:?}", held);
                    }
                    for (reply, post) in queued {
                        let result = store.engine.outcome(reply.blocking_recv());
                        match (post, fail) {
                            (true, false) => proptest::prop_assert!(result.is_ok(), "{:?}", result),
                            (true, true) => proptest::prop_assert!(
                                result.as_ref().is_err_and(|e| e.downcast_ref::<StorageFailed>().is_some()),
                                "{:?}", result
                            ),
                            (false, false) => proptest::prop_assert_eq!(
                                result.unwrap_err().to_string(), "refused"
                            ),
                            // Refused, or never run: the store had failed when the writer
                            // took it.
                            (false, true) => {
                                let e = result.unwrap_err();
                                proptest::prop_assert!(
                                    e.to_string() == "refused" || e.downcast_ref::<StorageFailed>().is_some(),
                                    "{:#}", e
                                );
                            }
                        }
                    }
                    backend.fail_sync.store(false, Ordering::Release);
                    // Job 0's batch, then the queued jobs in one (counted once synced).
                    proptest::prop_assert_eq!(
                        store.batch_counts().0 - batches_before,
                        if fail { 0 } else { 2 }
                    );
                    if fail {
                        // Nothing of the batch was synced: the power cut takes it all,
                        // the replayed predecessors of the refusal included.
                        proptest::prop_assert!(store.failure().is_some());
                        let cut = backend.after_power_cut();
                        drop(store);
                        backend = cut;
                        store = open_with(&backend, slices, slice_entries, log_bytes);
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
                    store = open_with(&backend, slices, slice_entries, log_bytes);
                }
            }
        }
        assert_cache_is_committed(&store);
        let cut = backend.after_power_cut();
        drop(store);
        let store = open_with(&cut, slices, slice_entries, log_bytes);
        let reader = store.read().unwrap();
        for m in 0..4 {
            for flow in [Flow::Import, Flow::Export] {
                let latest = reader.latest(&lfdi(m), flow).unwrap().map(|r| (r.timestamp, r.wh));
                proptest::prop_assert_eq!(latest, model.latest.get(&(m, flow)).copied(), "meter {} {:?}", m, flow);
            }
            let pair = store.write_immediate(|w| w.pair(&lfdi(m))).unwrap()
                .map(|p| (p.timestamp, p.import_wh, p.export_wh));
            proptest::prop_assert_eq!(pair, model.pairs.get(&m).copied(), "meter {}", m);
        }
    }
}

/// With its log in files, a store checkpointing after every batch moves between the two
/// log files each time (store/wal.rs) and, reopened, holds every reading and register.
#[test]
fn a_store_on_files_keeps_every_batch_across_many_checkpoints_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.redb");
    let policy = CheckpointPolicy {
        log_bytes: 1,
        ..CheckpointPolicy::default()
    };
    let open = || {
        let db = Database::create(&path).unwrap();
        let log = Arc::new(super::wal::FileLog::open(&path).unwrap());
        Store::start_with(db, false, policy, log).unwrap()
    };
    let store = open();
    for t in 1..=40u32 {
        store
            .write_batched_blocking(move |w| {
                w.record_reading(&reading_at("AA", Flow::Import, t * 10, u64::from(t)))?;
                w.record_reading(&export_at("BB", t * 10, u64::from(t) * 3))
            })
            .unwrap();
    }
    drop(store);
    let store = open();
    let reader = store.read().unwrap();
    assert_eq!(reader.readings().unwrap().len(), 80);
    assert_eq!(reader.latest("AA", Flow::Import).unwrap().unwrap().wh, 40);
    assert_eq!(reader.latest("BB", Flow::Export).unwrap().unwrap().wh, 120);
}

/// A reading of `lfdi`'s export register at `t`.
fn export_reading(lfdi: &str, t: u32) -> StoredReading {
    StoredReading {
        lfdi: lfdi.to_string(),
        mirror: 1,
        mmr: "0B".into(),
        reading: RegisterReading {
            flow: Flow::Export,
            timestamp: t,
            start: t - 60,
            wh: u64::from(t),
            quality: 0,
        },
        received_at: i64::from(t) + 1,
    }
}

#[test]
fn the_export_queue_holds_what_the_exporter_has_not_taken_in_the_order_it_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
    let (a, b) = ("AA".repeat(20), "BB".repeat(20));
    // Before the queue is kept, nothing is queued.
    store
        .write_batched_blocking(move |w| w.record_reading(&export_reading(&"CC".repeat(20), 100)))
        .unwrap();
    assert_eq!(store.read().unwrap().export_status().unwrap().last, 0);
    store.keep_export_queue(true, 1_000);
    // A late reading (b at 500 after a at 900) keeps its place: the order stored, not the
    // readings' times; positions increase, at least the arrival time in microseconds.
    for (lfdi, t) in [(&a, 600), (&a, 900), (&b, 500), (&a, 1200)] {
        let r = export_reading(lfdi, t);
        store
            .write_batched_blocking(move |w| w.record_reading(&r))
            .unwrap();
    }
    let (page, status) = store.export_page(0, 10).unwrap();
    let seen: Vec<(String, u32)> = page
        .iter()
        .map(|(_, r)| (r.lfdi.clone(), r.reading.timestamp))
        .collect();
    assert_eq!(
        seen,
        vec![
            (a.clone(), 600),
            (a.clone(), 900),
            (b.clone(), 500),
            (a.clone(), 1200)
        ]
    );
    let positions: Vec<u64> = page.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions[0], 601_000_000);
    assert_eq!(positions[1], 901_000_000);
    assert_eq!(positions[2], 901_000_001, "never below the one before");
    assert_eq!(positions[3], 1_201_000_000);
    assert_eq!(page[2].1, export_reading(&b, 500));
    assert_eq!(
        store.export_page(positions[1], 1).unwrap().0[0].0,
        positions[2]
    );
    assert_eq!((status.last, status.waiting), (positions[3], 4));
    assert_eq!(status.oldest_received_at, Some(601));
    // Acknowledged through the second: those leave; a lower or repeated mark changes
    // nothing, one past the last is held at the last.
    let ack = |through| {
        store
            .write_immediate(|w| w.export_acknowledged(through))
            .unwrap()
    };
    assert_eq!(ack(positions[1]), positions[1]);
    assert_eq!(ack(positions[0]), positions[1]);
    assert_eq!(store.export_page(0, 10).unwrap().0.len(), 2);
    let status = store.read().unwrap().export_status().unwrap();
    assert_eq!((status.waiting, status.oldest_received_at), (2, Some(501)));
    assert_eq!(ack(u64::MAX), positions[3]);
    let status = store.read().unwrap().export_status().unwrap();
    assert_eq!((status.waiting, status.oldest_received_at), (0, None));
    assert_eq!(status.exported, 4);
    // Retention of the readings does not touch the queue, nor the queue the readings.
    for t in [2000, 2100] {
        let r = export_reading(&a, t);
        store
            .write_batched_blocking(move |w| w.record_reading(&r))
            .unwrap();
    }
    let pruned = store.prune(2050).unwrap();
    assert_eq!((pruned.readings, pruned.export_dropped), (6, 0));
    let left: Vec<u32> = store
        .export_page(positions[3], 10)
        .unwrap()
        .0
        .iter()
        .map(|(_, r)| r.reading.timestamp)
        .collect();
    assert_eq!(left, vec![2000, 2100]);
    assert_eq!(store.read().unwrap().readings().unwrap().len(), 1);
}

/// A store restored from an older backup (or a new one) gives positions above every one the
/// lost store gave, so the exporter's cursor (one of those) passes over none of its readings.
#[test]
fn a_restored_store_never_gives_a_position_the_exporter_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.redb");
    let store = Store::open(&path).unwrap();
    store.keep_export_queue(true, 1_000);
    let a = "AA".repeat(20);
    let record = |store: &Store, t: u32| {
        let r = export_reading(&a, t);
        store
            .write_batched_blocking(move |w| w.record_reading(&r))
            .unwrap();
    };
    record(&store, 1_000);
    drop(store);
    let backup = dir.path().join("backup.redb");
    std::fs::copy(&path, &backup).unwrap();
    let store = Store::open(&path).unwrap();
    store.keep_export_queue(true, 1_000);
    for t in [1_060, 1_120] {
        record(&store, t);
    }
    let (page, _) = store.export_page(0, 10).unwrap();
    let cursor = page.last().unwrap().0;
    drop(store);
    // The disk is lost; the backup comes back; readings arrive again, later.
    let restored = Store::open(&backup).unwrap();
    restored.keep_export_queue(true, 1_000);
    record(&restored, 1_180);
    let (page, status) = restored.export_page(0, 10).unwrap();
    assert_eq!(page.len(), 2);
    assert!(
        page[1].0 > cursor,
        "{} after the cursor {cursor}",
        page[1].0
    );
    assert_eq!(status.last, page[1].0);
}

#[test]
fn an_export_queue_over_its_cap_drops_its_oldest_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.redb");
    let store = Store::open(&path).unwrap();
    store.keep_export_queue(true, 3);
    let a = "AA".repeat(20);
    store
        .write_immediate(|w| -> Result<()> {
            for t in 1..=8u32 {
                w.record_reading(&export_reading(&a, 100 * t))?;
            }
            Ok(())
        })
        .unwrap();
    let positions: Vec<u64> = store
        .export_page(0, 10)
        .unwrap()
        .0
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(positions.len(), 8);
    store
        .write_immediate(|w| w.export_acknowledged(positions[1]))
        .unwrap();
    // 6 waiting, cap 3: the 3rd, 4th and 5th go (the minute's check, as pruning does).
    assert_eq!(store.keep_export_cap().unwrap(), 3);
    assert_eq!(store.keep_export_cap().unwrap(), 0);
    let status = store.read().unwrap().export_status().unwrap();
    assert_eq!(
        (status.waiting, status.dropped, status.dropped_through),
        (3, 3, positions[4])
    );
    let left: Vec<u64> = store
        .export_page(0, 10)
        .unwrap()
        .0
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(left, positions[5..].to_vec());
    // Pruning keeps the cap too.
    store.keep_export_queue(true, 2);
    assert_eq!(store.prune(0).unwrap().export_dropped, 1);
    // Acknowledging from inside the dropped range is fine; the marks survive a restart.
    assert_eq!(
        store
            .write_immediate(|w| w.export_acknowledged(positions[6]))
            .unwrap(),
        positions[6]
    );
    drop(store);
    let store = Store::open(&path).unwrap();
    let status = store.read().unwrap().export_status().unwrap();
    assert_eq!(
        (
            status.last,
            status.exported_through,
            status.waiting,
            status.dropped
        ),
        (positions[7], positions[6], 1, 4)
    );
}

#[test]
fn pruning_keeps_batches_the_exporter_has_not_taken_while_the_queue_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
    store.keep_export_queue(true, 1_000);
    store
        .write_immediate(|w| -> Result<()> {
            for s in 1..=3 {
                w.put_batch(&batch(s, 10))?;
                w.next_batch_sequence()?;
            }
            for s in 1..=3 {
                assert_eq!(w.acknowledge(s)?, Acknowledged::Done);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(store.write_immediate(|w| w.batches_exported(1)).unwrap(), 1);
    assert_eq!(store.prune(1_000).unwrap().batches, 1);
    let reader = store.read().unwrap();
    let left: Vec<u64> = reader
        .batches_after(0, 10)
        .unwrap()
        .iter()
        .map(|b| b.sequence)
        .collect();
    assert_eq!(left, vec![2, 3]);
    assert_eq!(reader.batches_after(2, 10).unwrap().len(), 1);
    drop(reader);
    // Never past the last batch signed.
    assert_eq!(store.write_immediate(|w| w.batches_exported(9)).unwrap(), 3);
    assert_eq!(store.write_immediate(|w| w.batches_exported(2)).unwrap(), 3);
    drop(store);
    let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
    store.keep_export_queue(true, 1_000);
    // Held 30 days past the retention at most: then pruned, and counted.
    let another = tempfile::tempdir().unwrap();
    let held = Store::open(&another.path().join("bridge.redb")).unwrap();
    held.keep_export_queue(true, 1_000);
    held.write_immediate(|w| -> Result<()> {
        for s in 1..=2 {
            w.put_batch(&batch(s, 10))?;
            w.next_batch_sequence()?;
            assert_eq!(w.acknowledge(s)?, Acknowledged::Done);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(held.prune(10 + 30 * 86_400).unwrap().batches, 0);
    let pruned = held.prune(11 + 30 * 86_400).unwrap();
    assert_eq!((pruned.batches, pruned.unexported_batches), (2, 2));
    assert_eq!(
        held.read()
            .unwrap()
            .export_status()
            .unwrap()
            .batches_dropped,
        2
    );
    // Without the queue, acknowledged batches go at the retention.
    held.keep_export_queue(false, 0);
    store.keep_export_queue(false, 0);
    assert_eq!(store.prune(1_000).unwrap().batches, 2);
}
