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

impl Exporter {
    /// Connects to `url` and brings the schema up to date.
    pub async fn open(url: &str, metrics: Arc<ExportMetrics>) -> Result<Exporter> {
        let mut db = crate::connect(url).await?;
        crate::schema::migrate(&mut db).await?;
        Ok(Exporter {
            db,
            partitions: Partitions::default(),
            metrics,
        })
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
        let from = self.cursor_u64(write::READINGS).await?;
        let after = from.unwrap_or(0);
        // The database has everything through its cursor: the bridge may drop it (again,
        // if the last acknowledgement was lost).
        if after > 0 {
            bridge.export_acknowledge(true, after).await?;
        }
        let got = bridge.export_readings(after, page).await?;
        let readings = got.readings;
        if let Some(first) = readings.first() {
            if first.seq > after + 1 {
                // The bridge dropped these over its queue's cap before they were taken.
                let lost = first.seq - after - 1;
                tracing::error!(from = after + 1, through = first.seq - 1, "readings dropped by the bridge before export (its queue was over export_max_waiting)");
                write::gap(
                    &self.db,
                    write::READINGS,
                    &(after + 1).to_string(),
                    &(first.seq - 1).to_string(),
                )
                .await?;
                self.metrics.gaps.add(write::READINGS.to_string(), lost);
            }
        }
        let lag = readings.first().map(|r| now() - r.received_at).unwrap_or(0);
        let inserted = write::readings(&mut self.db, &mut self.partitions, from, &readings).await?;
        if let Some(last) = readings.last() {
            bridge.export_acknowledge(true, last.seq).await?;
            self.metrics
                .bridge_waiting
                .set(got.last.saturating_sub(last.seq) as i64);
        } else {
            self.metrics
                .bridge_waiting
                .set(got.last.saturating_sub(after) as i64);
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
        let from = self.cursor_u64(write::BATCHES).await?;
        let after = from.unwrap_or(0);
        if after > 0 {
            bridge.export_acknowledge(false, after).await?;
        }
        let got = bridge.export_batches(after, page).await?;
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

    /// The events of program `program` (`name`) in the transactions after the last read, at
    /// most `limit` transactions.
    pub async fn events_pass<C: Chain>(
        &mut self,
        chain: &mut C,
        program: Pubkey,
        name: &'static str,
        limit: usize,
    ) -> Result<Pass> {
        let source = write::program_source(name);
        let from = write::cursor(&self.db, &source).await?;
        let after = from
            .as_deref()
            .map(|s| {
                s.parse::<Signature>()
                    .with_context(|| format!("{source} cursor {s:?}"))
            })
            .transpose()?;
        let named = chain.transactions_naming(program, after, limit).await?;
        let Some(last) = named.transactions.last() else {
            self.metrics.passed(&source, 0, 0, now());
            return Ok(Pass::default());
        };
        if named.skipped {
            let first = named.transactions[0].signature.to_string();
            tracing::error!(program = name, after = ?from, first = %first, "more transactions than one read takes: the ones between were passed over");
            write::gap(
                &self.db,
                &source,
                from.as_deref().unwrap_or("genesis"),
                &first,
            )
            .await?;
            self.metrics.gaps.inc(source.clone());
        }
        let read_at = now();
        let transactions: Vec<write::TransactionEvents> = named
            .transactions
            .iter()
            .map(|t| write::TransactionEvents {
                signature: <[u8; 64]>::from(t.signature),
                slot: t.slot,
                block_time: t.block_time.unwrap_or(read_at),
                events: crate::events::events_of(program, &t.logs),
            })
            .collect();
        let lag = transactions
            .first()
            .map(|t| read_at - t.block_time)
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
            more: named.skipped,
        })
    }

    /// Every program's events, one pass each.
    pub async fn all_events_pass<C: Chain>(&mut self, chain: &mut C, limit: usize) -> Result<Pass> {
        let mut all = Pass::default();
        for (program, name) in crate::events::programs() {
            let p = self.events_pass(chain, program, name, limit).await?;
            all.read += p.read;
            all.inserted += p.inserted;
            all.more |= p.more;
        }
        Ok(all)
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
