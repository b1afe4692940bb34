//! The store's tables (redb), the keys of its counters, and how records and keys are
//! written: one place for the on-disk layout, read by the writer, the reader, the engine's
//! journal and the upgrades of earlier layouts.
use anyhow::{Context, Result};
use redb::{ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

use super::records::{self, READING_BYTES};
use crate::normalize::Flow;

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// mirror id -> MirrorRecord
pub(super) const MIRRORS: TableDefinition<u64, &[u8]> = TableDefinition::new("mirrors");
/// "LFDI/mRID" -> mirror id: mirrors are keyed by device and mRID.
pub(super) const MIRROR_KEYS: TableDefinition<&str, u64> = TableDefinition::new("mirror_keys");
/// MirrorMeterReading mRID -> LFDI of the device that first used it. mRIDs are globally
/// unique (IEEE 2030.5; CSIP-AUS S-ALL-05 refuses a colliding one).
pub(super) const MMR_OWNERS: TableDefinition<&str, &str> = TableDefinition::new("mmr_owners");
/// `reading time << 32 | register id` -> StoredReading (store/records.rs): every accepted
/// register reading, so that a retried post (its reply lost) is recognised reading by
/// reading. Time first: the readings of one batch of posts (all of about the same moment)
/// land on adjacent pages of the tree, and pruning deletes a prefix. Fixed 8-byte keys and
/// 30-byte values: the readings of a second at 10,000 meters arrive in random register
/// order, so a commit rewrites every page the current second fills; small entries keep
/// those pages few (docs/benchmarks.md).
pub(super) const READINGS: TableDefinition<u64, &[u8; READING_BYTES]> =
    TableDefinition::new("reading_records");
/// "LFDI/MMR-mRID" -> register id, given at the register's first reading; and back.
pub(super) const REGISTER_IDS: TableDefinition<&str, u32> = TableDefinition::new("register_ids");
pub(super) const REGISTER_NAMES: TableDefinition<u32, &str> =
    TableDefinition::new("register_names");
/// (reading time, "LFDI/MMR-mRID") -> Measurement (JSON): readings that are not the meter's
/// attested registers (power, voltage, frequency, other Wh registers...). Time first, as
/// READINGS.
pub(super) const MEASUREMENTS: TableDefinition<(u32, &str), &[u8]> =
    TableDefinition::new("measurements_by_time");
/// "LFDI/import" or "LFDI/export" -> the mRID of the MirrorMeterReading whose register is
/// attested for that direction (the first whole Wh register the device mirrored).
pub(super) const DESIGNATED: TableDefinition<&str, &str> = TableDefinition::new("designated");
/// "LFDI/import" or "LFDI/export" -> the latest RegisterReading, as of the last
/// checkpoint: the store keeps them in memory, and JOURNAL holds the changes since
/// (store/hot.rs).
pub(super) const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");
/// LFDI -> Pair: the latest import and export registers measured at the same time; as
/// LATEST.
pub(super) const PAIRS: TableDefinition<&str, &[u8]> = TableDefinition::new("pairs");
/// sequence -> what one commit changed in LATEST and PAIRS since the last checkpoint
/// (binary, store/hot.rs).
pub(super) const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
/// LFDI -> Attested: what the attestor last signed for the meter.
pub(super) const ATTESTED: TableDefinition<&str, &[u8]> = TableDefinition::new("attested");
/// batch sequence -> SignedBatch
pub(super) const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");
/// The meter directory's state (JSON): `registry`, the keeper's last push of the registry's
/// meters; `denied`, the operator's local deny list.
pub(super) const DIRECTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("directory");
pub(super) const DIRECTORY_REGISTRY: &str = "registry";
/// queue position -> `[register u32][time u32][reading, as READINGS holds it]`: the readings
/// the history exporter has not taken yet, in the order they were stored (only while the
/// bridge keeps an export queue, `export.enabled`). Its own copy, so that retention of
/// READINGS does not touch it; emptied by the exporter's acknowledgements, and from the
/// oldest when over its cap.
pub(super) const EXPORT_QUEUE: TableDefinition<u64, &[u8; records::EXPORT_BYTES]> =
    TableDefinition::new("export_queue");
pub(super) const DIRECTORY_DENIED: &str = "denied";

pub(super) const NEXT_MIRROR: &str = "next_mirror_id";
pub(super) const NEXT_REGISTER: &str = "next_register_id";
pub(super) const LAST_BATCH: &str = "last_batch_sequence";
/// Every batch up to this sequence is acknowledged: the keeper's reads start after it.
pub(super) const ACKNOWLEDGED_THROUGH: &str = "acknowledged_through";
/// The sequence of the last record of the store's log that the tables hold (store/wal.rs).
pub(super) const WAL_APPLIED: &str = "wal_applied";
/// The highest batch sequence the chain has settled, as the keeper last reported it: no
/// batch is signed at or below it (a store restored from a backup would otherwise sign
/// sequences the chain already has).
pub(super) const CHAIN_FLOOR: &str = "chain_floor";
/// Signed batches not acknowledged (nor replaced by a re-signed copy).
pub(super) const UNACKNOWLEDGED: &str = "unacknowledged_batches";
/// The export queue: the last position given, the last the exporter acknowledged, the last
/// dropped unexported (over the cap), and how many were dropped (how many wait is the
/// queue's length, which redb keeps). Positions
/// increase but are not contiguous: each is at least the reading's arrival time in
/// microseconds (`records::export_position`).
pub(super) const EXPORT_LAST: &str = "export_last";
/// Readings the exporter acknowledged, ever.
pub(super) const EXPORT_ACKNOWLEDGED: &str = "export_acknowledged";
pub(super) const EXPORTED_THROUGH: &str = "exported_through";
pub(super) const EXPORT_DROPPED_THROUGH: &str = "export_dropped_through";
pub(super) const EXPORT_DROPPED: &str = "export_dropped";
/// Signed batches pruned before the history exporter took them (held 30 days past the
/// retention), ever.
pub(super) const EXPORT_BATCHES_DROPPED: &str = "export_batches_dropped";
/// Batches through this sequence are in the history database: retention keeps the others
/// while the bridge keeps an export queue.
pub(super) const BATCHES_EXPORTED_THROUGH: &str = "batches_exported_through";

pub(super) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

pub(super) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).context("corrupt record in the store")
}

/// The record at `key` of a JSON-valued table, read the same way in write and read
/// transactions.
pub(super) fn json_at<'k, K: redb::Key + 'static, T: DeserializeOwned>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
) -> Result<Option<T>> {
    table.get(key)?.map(|v| from_json(v.value())).transpose()
}

/// A value of the `meta` table (0 when unset), in a read or a write transaction.
pub(super) fn meta_value(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64> {
    Ok(meta.get(key)?.map(|v| v.value()).unwrap_or(0))
}

pub fn mirror_key(lfdi: &str, mrid: &str) -> String {
    format!("{lfdi}/{mrid}")
}

pub(super) fn latest_key(lfdi: &str, flow: Flow) -> String {
    match flow {
        Flow::Import => format!("{lfdi}/import"),
        Flow::Export => format!("{lfdi}/export"),
    }
}

/// mRIDs compare as numbers: left-pad the hex to 32 digits.
pub(super) fn mrid_order(mrid: &str) -> String {
    format!("{:0>32}", mrid.to_ascii_uppercase())
}

/// Creates every table, so that readers never meet a missing one.
pub(super) fn create_all(txn: &redb::WriteTransaction) -> Result<()> {
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
    txn.open_table(DIRECTORY)?;
    txn.open_table(EXPORT_QUEUE)?;
    super::market::create_tables(txn)?;
    Ok(())
}
