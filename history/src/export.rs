//! The exporter's passes: each takes one page of one source into the database, exactly
//! once (`write`), then tells the source (the bridge) what it may let go. A pass that fails
//! changes nothing; the next one starts again from the database's cursor.
use std::sync::Arc;

use anchor_lang::prelude::Pubkey;
use anyhow::{Context, Result};
use keeper::bridge_api::BridgeClient;
use sdk::chain::Chain;
use solana_signature::Signature;
use tokio_postgres::Client;

use crate::metrics::ExportMetrics;
use crate::schema::Partitions;
use crate::write;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Rows read from the source, and inserted (fewer when some were there already).
    pub read: usize,
    pub inserted: u64,
    /// The page was full: more is waiting.
    pub more: bool,
}

/// The exporter's connection to the database, with what it knows of the partitions.
pub struct Exporter {
    pub db: Client,
    partitions: Partitions,
    pub metrics: Arc<ExportMetrics>,
}

fn now() -> i64 {
    crate::unix(std::time::SystemTime::now())
}

/// The bridge's export queue ends before the history's cursor: it is not the store the
/// history was exported from (restored from an older backup, or replaced), or its clock is
/// far behind. Nothing is written or acknowledged until an operator looks.
#[derive(Debug, thiserror::Error)]
#[error("the bridge's export queue ends at position {last}, before the history's cursor {cursor}: its store was restored from an older backup or replaced, or its clock is behind; nothing is exported until it passes the cursor (its new readings get positions from their arrival time)")]
pub struct BridgeBehind {
    pub last: u64,
    pub cursor: u64,
}

/// Before a page is written: refuses a bridge whose queue (`readings`) or batches end
/// (`last`) before the history's cursor (`after`), and tells it the database has
/// everything through the cursor, so that it may drop that (again, if the last
/// acknowledgement was lost).
async fn settle_cursor(bridge: &BridgeClient, readings: bool, after: u64, last: u64) -> Result<()> {
    if last < after {
        return Err(BridgeBehind {
            last,
            cursor: after,
        }
        .into());
    }
    if after > 0 {
        bridge.export_acknowledge(readings, after).await?;
    }
    Ok(())
}

impl Exporter {
    /// Connects to `url` and brings the schema up to date.
    pub async fn open(url: &str, metrics: Arc<ExportMetrics>) -> Result<Exporter> {
        let mut e = Exporter::connect(url, metrics).await?;
        crate::schema::migrate(&mut e.db).await?;
        Ok(e)
    }

    /// Connects to `url` (the schema already migrated).
    pub async fn connect(url: &str, metrics: Arc<ExportMetrics>) -> Result<Exporter> {
        Ok(Exporter {
            db: crate::connect(url).await?,
            partitions: Partitions::default(),
            metrics,
        })
    }

    /// Makes `table`'s partitions for today and the next two days, ahead of their rows
    /// (a partition made under load waits for the queries on its table).
    async fn days_ahead(&mut self, table: &'static str) -> Result<()> {
        let today = now().div_euclid(86_400);
        self.partitions
            .ensure(&self.db, table, today..=today + 2)
            .await
    }

    async fn cursor_u64(&self, source: &str) -> Result<Option<u64>> {
        write::cursor(&self.db, source)
            .await?
            .map(|p| {
                p.parse::<u64>()
                    .with_context(|| format!("{source} cursor {p:?}"))
            })
            .transpose()
    }

    /// One page (at most `page` readings) of the bridge's export queue.
    pub async fn readings_pass(&mut self, bridge: &BridgeClient, page: usize) -> Result<Pass> {
        self.days_ahead("readings").await?;
        let from = self.cursor_u64(write::READINGS).await?;
        let after = from.unwrap_or(0);
        let got = bridge.export_readings(after, page).await?;
        settle_cursor(bridge, true, after, got.last).await?;
        let readings = got.readings;
        // Positions the bridge dropped over its queue's cap before they were taken.
        let gap = (got.dropped_through > after).then_some((after + 1, got.dropped_through));
        let lag = readings.first().map(|r| now() - r.received_at).unwrap_or(0);
        let inserted =
            write::readings(&mut self.db, &mut self.partitions, from, &readings, gap).await?;
        if let Some((first, through)) = gap {
            tracing::error!(from = first, through, "readings dropped by the bridge before export (its queue was over export_max_waiting): recorded in export_gaps");
            self.metrics.gaps.inc(write::READINGS.to_string());
        }
        if let Some(last) = readings.last() {
            bridge.export_acknowledge(true, last.seq).await?;
        }
        self.metrics.passed(write::READINGS, inserted, lag, now());
        Ok(Pass {
            read: readings.len(),
            inserted,
            more: readings.len() == page,
        })
    }

    /// One page (at most `page`) of the bridge's signed batches.
    pub async fn batches_pass(&mut self, bridge: &BridgeClient, page: usize) -> Result<Pass> {
        self.days_ahead("batches").await?;
        let from = self.cursor_u64(write::BATCHES).await?;
        let after = from.unwrap_or(0);
        let got = bridge.export_batches(after, page).await?;
        settle_cursor(bridge, false, after, got.last).await?;
        let lag = got
            .batches
            .first()
            .map(|b| now() - b.created_at)
            .unwrap_or(0);
        let inserted =
            write::batches(&mut self.db, &mut self.partitions, from, &got.batches).await?;
        if let Some(last) = got.batches.last() {
            bridge.export_acknowledge(false, last.sequence).await?;
        }
        self.metrics.passed(write::BATCHES, inserted, lag, now());
        Ok(Pass {
            read: got.batches.len(),
            inserted,
            more: got.batches.len() == page,
        })
    }

    /// The events of program `program` (`name`) in the oldest transactions after the last
    /// read, at most `limit` of them.
    pub async fn events_pass<C: Chain>(
        &mut self,
        chain: &mut C,
        program: Pubkey,
        name: &'static str,
        limit: usize,
    ) -> Result<Pass> {
        self.days_ahead("chain_events").await?;
        let source = write::program_source(name);
        let from = write::cursor(&self.db, &source).await?;
        let after = from
            .as_deref()
            .map(|s| {
                s.parse::<Signature>()
                    .with_context(|| format!("{source} cursor {s:?}"))
            })
            .transpose()?;
        let named = chain.transactions_after(program, after, limit).await?;
        let Some(last) = named.transactions.last() else {
            self.metrics.passed(&source, 0, 0, now());
            return Ok(Pass::default());
        };
        let mut transactions = Vec::with_capacity(named.transactions.len());
        for t in &named.transactions {
            // The block time is part of an event's key and picks its day: never guessed.
            let block_time = t.block_time.with_context(|| {
                format!("the node gave no block time for {}: retried", t.signature)
            })?;
            transactions.push(write::TransactionEvents {
                signature: <[u8; 64]>::from(t.signature),
                slot: t.slot,
                block_time,
                events: crate::events::events_of(program, &t.logs),
            });
        }
        let lag = transactions
            .first()
            .map(|t| now() - t.block_time)
            .unwrap_or(0);
        let inserted = write::events(
            &mut self.db,
            &mut self.partitions,
            name,
            from.as_deref(),
            &last.signature.to_string(),
            &transactions,
        )
        .await?;
        self.metrics.passed(&source, inserted, lag, now());
        Ok(Pass {
            read: transactions.len(),
            inserted,
            more: named.more,
        })
    }

    /// Every program's events until each is caught up; a program that fails does not stop
    /// the others (the first error is returned after they ran).
    pub async fn all_events_pass<C: Chain>(&mut self, chain: &mut C, limit: usize) -> Result<Pass> {
        let mut all = Pass::default();
        let mut failed = None;
        for (program, name) in crate::events::programs() {
            loop {
                match self.events_pass(chain, program, name, limit).await {
                    Ok(p) => {
                        all.read += p.read;
                        all.inserted += p.inserted;
                        if !p.more {
                            break;
                        }
                    }
                    Err(e) => {
                        self.metrics.failed(&write::program_source(name), &e);
                        failed.get_or_insert(e.context(name));
                        break;
                    }
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(all),
        }
    }

    /// The bridge's readings and batches until both are caught up; returns the rows
    /// inserted (readings, batches).
    pub async fn bridge_catch_up(&mut self, bridge: &BridgeClient) -> Result<(u64, u64)> {
        let mut inserted = (0, 0);
        loop {
            let p = self
                .readings_pass(bridge, keeper_protocol::MAX_EXPORT_PAGE)
                .await?;
            inserted.0 += p.inserted;
            if !p.more {
                break;
            }
        }
        loop {
            let p = self.batches_pass(bridge, 1_000).await?;
            inserted.1 += p.inserted;
            if !p.more {
                break;
            }
        }
        Ok(inserted)
    }

    /// Drops the days before `retention_days` ago; returns the partitions dropped.
    pub async fn retain(&mut self, retention_days: u32) -> Result<Vec<String>> {
        let today = now().div_euclid(86_400);
        let dropped =
            crate::schema::drop_days_before(&self.db, today - i64::from(retention_days)).await?;
        if !dropped.is_empty() {
            self.partitions.forget();
            tracing::info!(
                partitions = dropped.len(),
                "history older than the retention dropped"
            );
        }
        Ok(dropped)
    }
}
