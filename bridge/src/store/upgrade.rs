//! Upgrades of the store's earlier layouts, applied once at start in the start
//! transaction: each earlier table still present is moved into today's layout and deleted,
//! so a bridge upgraded in place keeps every reading it acknowledged (tested in
//! `store/tests.rs`). A store in today's layout is left as it is.
use anyhow::Result;
use redb::{ReadableTable, TableDefinition, TableHandle};

use super::tables::{from_json, MEASUREMENTS};
use super::writer::insert_reading;
use super::StoredReading;

/// Moves whatever earlier layouts the store holds into today's tables (`tables`: the
/// store's table names before the upgrade).
pub(super) fn upgrade(txn: &redb::WriteTransaction, tables: &[String]) -> Result<()> {
    let exists = |name: &str| tables.iter().any(|t| t == name);
    if exists(OLD_MEASUREMENTS.name()) {
        let moved = move_to_time_first(txn, OLD_MEASUREMENTS, MEASUREMENTS)?;
        tracing::info!(moved, "store: measurements moved to time-first keys");
    }
    if exists(ARRIVAL_INDEX.name()) {
        txn.delete_table(ARRIVAL_INDEX)?;
    }
    move_json_readings(txn, tables, ARRIVAL_READINGS)?;
    move_json_readings(txn, tables, OLD_READINGS)?;
    move_json_readings(txn, tables, JSON_READINGS)?;
    count_unacknowledged(txn)?;
    Ok(())
}

/// Stores before the count of unacknowledged batches (`UNACKNOWLEDGED`) counted them as
/// the last sequence less the acknowledged-through mark: counted once, from the batches.
fn count_unacknowledged(txn: &redb::WriteTransaction) -> Result<()> {
    use super::tables::{meta_value, ACKNOWLEDGED_THROUGH, BATCHES, META, UNACKNOWLEDGED};
    let mut meta = txn.open_table(META)?;
    if meta.get(UNACKNOWLEDGED)?.is_some() {
        return Ok(());
    }
    let through = meta_value(&meta, ACKNOWLEDGED_THROUGH)?;
    let mut count = 0u64;
    for entry in txn
        .open_table(BATCHES)?
        .range(through.saturating_add(1)..)?
    {
        let batch: super::SignedBatch = from_json(entry?.1.value())?;
        count += u64::from(!batch.acknowledged);
    }
    meta.insert(UNACKNOWLEDGED, count)?;
    Ok(())
}

/// The earlier layouts, moved into today's tables (and deleted) at the first start, oldest
/// first: an arrival-ordered log of JSON readings with a (register, time) index (the next
/// layout's bridge left the log unread beside its own table, so both may hold a reading:
/// it lands once, under one key); readings and measurements keyed register first; and
/// readings under `(time, "LFDI/MMR-mRID")` keys with JSON values.
pub(super) const ARRIVAL_READINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("readings");
pub(super) const ARRIVAL_INDEX: TableDefinition<(&str, u32), u64> =
    TableDefinition::new("reading_at");
pub(super) const OLD_READINGS: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("register_readings");
pub(super) const OLD_MEASUREMENTS: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("measurements");
pub(super) const JSON_READINGS: TableDefinition<(u32, &str), &[u8]> =
    TableDefinition::new("register_readings_by_time");

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
