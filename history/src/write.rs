//! Rows in, exactly once. A source's page is written in one transaction with its cursor,
//! and the cursor moves only from the position the page was read after: a page written
//! twice (the exporter restarted before the bridge heard it was written) is refused by the
//! cursor, a row met twice in different pages is kept once by its key (`ON CONFLICT DO
//! NOTHING`), and a transaction cut short leaves nothing. Rows go in by binary `COPY` into
//! a temporary table, then one `INSERT ... SELECT`.
use anyhow::{bail, Context, Result};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Transaction};

use crate::events::EventRow;
use crate::schema::Partitions;
use keeper_protocol::{ExportedReading, SignedBatch};

/// The cursor of each source.
pub const READINGS: &str = "bridge.readings";
pub const BATCHES: &str = "bridge.batches";
/// The cursor of program `name`'s transactions.
pub fn program_source(name: &str) -> String {
    format!("chain.{name}")
}

/// Where `source` stands (`None`: never written).
pub async fn cursor(client: &Client, source: &str) -> Result<Option<String>> {
    Ok(client
        .query_opt(
            "SELECT position FROM export_cursors WHERE source = $1",
            &[&source],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Moves `source` from `from` (`None`: it has no cursor yet) to `to` inside `txn`; fails,
/// and so rolls the page back, if the cursor is elsewhere (another exporter, or a page
/// already written).
async fn move_cursor(
    txn: &Transaction<'_>,
    source: &str,
    from: Option<&str>,
    to: &str,
) -> Result<()> {
    let moved = match from {
        Some(from) => {
            txn.execute(
                "UPDATE export_cursors SET position = $3, updated_at = now() \
                 WHERE source = $1 AND position = $2",
                &[&source, &from, &to],
            )
            .await?
        }
        None => {
            txn.execute(
                "INSERT INTO export_cursors (source, position) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&source, &to],
            )
            .await?
        }
    };
    if moved != 1 {
        bail!(CursorMoved(source.to_string()));
    }
    Ok(())
}

/// The page was read after a position the database no longer holds for its source:
/// another exporter wrote it, or this one did before a restart. Read the cursor again.
#[derive(Debug, thiserror::Error)]
#[error("the {0} cursor moved under this exporter (another exporter, or a page written before a restart): read it again")]
pub struct CursorMoved(pub String);

/// Copies `rows` of `types` into `table` through a temporary table like it; returns the
/// rows inserted (rows whose key is there already are left as they are).
async fn copy_in(
    txn: &Transaction<'_>,
    table: &str,
    columns: &str,
    types: &[Type],
    rows: &[Vec<Box<dyn ToSql + Sync + Send>>],
) -> Result<u64> {
    let staging = format!("{table}_in");
    txn.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS"
    ))
    .await?;
    let sink = txn
        .copy_in(&format!(
            "COPY {staging} ({columns}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    for row in rows {
        let refs: Vec<&(dyn ToSql + Sync)> =
            row.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await?;
    let inserted = txn
        .execute(
            &format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING"
            ),
            &[],
        )
        .await?;
    Ok(inserted)
}

fn checked_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).with_context(|| format!("{what} {v} is beyond PostgreSQL's bigint"))
}

fn lfdi_bytes(hex_text: &str) -> Result<Vec<u8>> {
    let bytes = keeper_protocol::hex::decode_array::<20>(hex_text)
        .with_context(|| format!("LFDI {hex_text:?}"))?;
    Ok(bytes.to_vec())
}

/// Writes a page of the bridge's export queue read after position `from`; the cursor
/// moves to its last reading, or past `gap` (positions the bridge dropped before they were
/// exported, recorded in `export_gaps` in the same transaction). Returns the rows inserted.
pub async fn readings(
    client: &mut Client,
    partitions: &mut Partitions,
    from: Option<u64>,
    page: &[ExportedReading],
    gap: Option<(u64, u64)>,
) -> Result<u64> {
    let to = page
        .last()
        .map(|r| r.seq)
        .into_iter()
        .chain(gap.map(|g| g.1))
        .max();
    let Some(to) = to else {
        return Ok(0);
    };
    let days: std::collections::BTreeSet<i64> = page
        .iter()
        .map(|r| i64::from(r.timestamp).div_euclid(86_400))
        .collect();
    partitions.ensure(client, "readings", days).await?;
    let mut rows = Vec::with_capacity(page.len());
    for r in page {
        let row: Vec<Box<dyn ToSql + Sync + Send>> = vec![
            Box::new(crate::at(i64::from(r.timestamp))),
            Box::new(lfdi_bytes(&r.lfdi)?),
            Box::new(r.mmr.clone()),
            Box::new(i16::from(r.export)),
            Box::new(checked_i64(r.wh, "reading")?),
            Box::new(crate::at(i64::from(r.start))),
            Box::new(i16::from(r.quality)),
            Box::new(crate::at(r.received_at)),
            Box::new(checked_i64(r.seq, "queue position")?),
        ];
        rows.push(row);
    }
    let txn = client.transaction().await?;
    let inserted = copy_in(
        &txn,
        "readings",
        "reading_time, lfdi, mirror_mrid, register, wh, interval_start, quality, received_at, bridge_seq",
        &[
            Type::TIMESTAMPTZ,
            Type::BYTEA,
            Type::TEXT,
            Type::INT2,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::INT2,
            Type::TIMESTAMPTZ,
            Type::INT8,
        ],
        &rows,
    )
    .await?;
    if let Some((first, through)) = gap {
        txn.execute(
            "INSERT INTO export_gaps (source, from_position, through_position) VALUES ($1, $2, $3)",
            &[&READINGS, &first.to_string(), &through.to_string()],
        )
        .await?;
    }
    let from = from.map(|f| f.to_string());
    move_cursor(&txn, READINGS, from.as_deref(), &to.to_string()).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Writes signed batches read after sequence `from`; the cursor moves to the last.
pub async fn batches(
    client: &mut Client,
    partitions: &mut Partitions,
    from: Option<u64>,
    page: &[SignedBatch],
) -> Result<u64> {
    let Some(last) = page.last() else {
        return Ok(0);
    };
    let days: std::collections::BTreeSet<i64> = page
        .iter()
        .map(|b| b.created_at.div_euclid(86_400))
        .collect();
    partitions.ensure(client, "batches", days).await?;
    let mut rows = Vec::with_capacity(page.len());
    for b in page {
        let d = b
            .decode()
            .with_context(|| format!("batch {} as the bridge served it", b.sequence))?;
        let meters: Vec<Vec<u8>> = d.meters.iter().map(|m| m.to_vec()).collect();
        let row: Vec<Box<dyn ToSql + Sync + Send>> = vec![
            Box::new(crate::at(b.created_at)),
            Box::new(checked_i64(b.sequence, "batch sequence")?),
            Box::new(d.hash.to_vec()),
            Box::new(d.attestor.to_vec()),
            Box::new(d.signature.to_vec()),
            Box::new(d.message),
            Box::new(meters),
            Box::new(i32::from(b.readings)),
        ];
        rows.push(row);
    }
    let txn = client.transaction().await?;
    let inserted = copy_in(
        &txn,
        "batches",
        "created_at, sequence, hash, attestor, signature, message, meters, readings",
        &[
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::BYTEA,
            Type::BYTEA,
            Type::BYTEA,
            Type::BYTEA,
            Type::BYTEA_ARRAY,
            Type::INT4,
        ],
        &rows,
    )
    .await?;
    let from = from.map(|f| f.to_string());
    move_cursor(&txn, BATCHES, from.as_deref(), &last.sequence.to_string()).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// One transaction's events, as the chain gave them.
#[derive(Clone, Debug)]
pub struct TransactionEvents {
    pub signature: [u8; 64],
    pub slot: u64,
    pub block_time: i64,
    pub events: Vec<EventRow>,
}

/// Writes the events of program `program`'s transactions read after `from` (a signature,
/// base58); the cursor moves to `to` (the last transaction read, with or without events).
pub async fn events(
    client: &mut Client,
    partitions: &mut Partitions,
    program: &str,
    from: Option<&str>,
    to: &str,
    transactions: &[TransactionEvents],
) -> Result<u64> {
    let days: std::collections::BTreeSet<i64> = transactions
        .iter()
        .filter(|t| !t.events.is_empty())
        .map(|t| t.block_time.div_euclid(86_400))
        .collect();
    partitions.ensure(client, "chain_events", days).await?;
    let mut rows = Vec::new();
    for t in transactions {
        for e in &t.events {
            let opt = |v: Option<u64>, what: &str| v.map(|v| checked_i64(v, what)).transpose();
            let row: Vec<Box<dyn ToSql + Sync + Send>> = vec![
                Box::new(crate::at(t.block_time)),
                Box::new(checked_i64(t.slot, "slot")?),
                Box::new(t.signature.to_vec()),
                Box::new(e.event_index),
                Box::new(e.program.to_string()),
                Box::new(e.kind.to_string()),
                Box::new(e.lfdi.map(|l| l.to_vec())),
                Box::new(e.owner.map(|o| o.to_bytes().to_vec())),
                Box::new(opt(e.interval, "interval")?),
                Box::new(opt(e.sequence, "sequence")?),
                Box::new(e.side),
                Box::new(opt(e.wh, "energy")?),
                Box::new(opt(e.quote, "quote amount")?),
                Box::new(opt(e.price, "price")?),
                Box::new(e.detail.clone()),
            ];
            rows.push(row);
        }
    }
    let txn = client.transaction().await?;
    let inserted = if rows.is_empty() {
        0
    } else {
        copy_in(
            &txn,
            "chain_events",
            "block_time, slot, signature, event_index, program, kind, lfdi, owner, interval_index, \
             sequence, side, wh, quote, price, detail",
            &[
                Type::TIMESTAMPTZ,
                Type::INT8,
                Type::BYTEA,
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::BYTEA,
                Type::BYTEA,
                Type::INT8,
                Type::INT8,
                Type::INT2,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::JSONB,
            ],
            &rows,
        )
        .await?
    };
    move_cursor(&txn, &program_source(program), from, to).await?;
    txn.commit().await?;
    Ok(inserted)
}
