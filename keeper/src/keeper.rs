//! The keeper's work, one pass at a time (`Keeper::tick`): attested batches from the bridge
//! into `submit_readings`, then the cranks (GRID and REC issuance, clearing, settlement).
//!
//! The chain is the keeper's memory: the oracle remembers the last batches it applied
//! (sequence and hash), the ledgers what was minted, the books whether they were cleared. So
//! a keeper that restarts, or a second one, recomputes what is due from the chain and never
//! applies anything twice; the bridge keeps a batch until the keeper acknowledges it, which
//! it does only once the batch is confirmed (or found already applied).
use std::collections::BTreeMap;

use anchor_lang::prelude::Pubkey;
use anchor_lang::Discriminator;
use anyhow::Result;
use oracle::OracleError;
use registry::identity::Lfdi;
use registry::{Meter, MeterStatus};
use sdk::accounts::{anchor_account, events, zero_copy};
use sdk::chain::{send_and_confirm, Chain, Confirmed, SendError, SendPolicy};
use sdk::ix::trading as market_ix;
use sdk::ix::{energy_token as token_ix, oracle as oracle_ix, registry as registry_ix};
use serde::Serialize;
use solana_instruction::Instruction;
use solana_message::AddressLookupTableAccount;

use crate::bridge_api::{meter_record, BridgeClient, DecodedBatch, MeterRecord, SyncReport};
use crate::table::CampusTable;

/// Meters per `mint_generation` / `issue_rec` (4 accounts each; the runtime locks at most
/// 64 accounts per transaction).
pub const METERS_PER_MINT: usize = 14;
/// Seats per `sweep` (2 token accounts each).
pub const SEATS_PER_SWEEP: usize = 25;
/// A batch the chain refuses this many times is given up (reported, not retried).
pub const MAX_ATTEMPTS: u32 = 3;
/// Intervals the market crank looks back for uncleared books.
pub const CLEAR_LOOKBACK: u64 = 8;

fn log_skipped(logs: &[String], what: &str) {
    for skipped in events::<energy_token::events::MeterSkipped>(logs) {
        tracing::warn!(
            what,
            meter = %skipped.lfdi.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            reason = skipped.reason,
            "meter skipped; its export stays due"
        );
    }
}

/// A refusal the keeper gave up on, for the operator.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Failure {
    pub what: String,
    pub reason: String,
    pub at_slot: u64,
}

/// What the keeper has done since it started, for the operator (`status`).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Status {
    /// Meters in the registry, and how many of them are active.
    pub meters_registered: u64,
    pub meters_active: u64,
    pub batches_applied: u64,
    pub readings_submitted: u64,
    /// Batches found already applied on chain (by an earlier run or another keeper).
    pub batches_already_applied: u64,
    /// Batches at the bridge not yet confirmed.
    pub batches_pending: u64,
    pub last_confirmed_slot: u64,
    pub grid_minted_wh: u64,
    pub recs_issued: u64,
    pub intervals_cleared: u64,
    pub seats_swept: u64,
    /// Cleared books closed (their rent returned to whoever opened them).
    pub books_closed: u64,
    pub transactions: u64,
    /// Largest transaction sent, bytes.
    pub largest_transaction: usize,
    pub failures: Vec<Failure>,
    /// Passes run (by the keeper binary), and why the last one failed if it did (the bridge
    /// or the RPC endpoint away: retried).
    pub passes: u64,
    pub last_error: Option<String>,
}

/// What one `tick` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub batches: u64,
    /// When the last batch of this pass was confirmed.
    pub last_batch_confirmed: Option<std::time::Instant>,
    pub readings: u64,
    pub minted_wh: u64,
    pub recs: u64,
    pub cleared: Vec<u64>,
    pub swept: u64,
}

pub struct Keeper {
    pub bridge: Option<BridgeClient>,
    /// Meters the keeper cranks: the registry's, in index order (read from the chain every
    /// pass; the bootstrap list until the registry has any).
    pub meters: Vec<Lfdi>,
    /// The registry's meters as last pushed to the bridge, and when.
    pushed: Option<(Vec<MeterRecord>, tokio::time::Instant)>,
    pub table: CampusTable,
    pub policy: SendPolicy,
    pub status: Status,
    attempts: BTreeMap<u64, u32>,
}

impl Keeper {
    pub fn new(bridge: Option<BridgeClient>, meters: Vec<Lfdi>) -> Keeper {
        Keeper {
            bridge,
            meters,
            table: CampusTable::default(),
            policy: SendPolicy::default(),
            status: Status::default(),
            attempts: BTreeMap::new(),
            pushed: None,
        }
    }

    /// Reads every meter the registry has, makes them the keeper's meters, and pushes them
    /// to the bridge when they changed (or a minute has passed: the bridge may have
    /// restarted from its campus file).
    pub async fn refresh_meters<C: Chain>(&mut self, chain: &mut C) -> Result<Vec<Meter>> {
        let mut meters: Vec<Meter> = chain
            .program_accounts(registry::ID, Meter::DISCRIMINATOR)
            .await?
            .iter()
            .filter_map(|(_, a)| anchor_account::<Meter>(a))
            .collect();
        meters.sort_by_key(|m| m.index);
        if !meters.is_empty() {
            self.meters = meters.iter().map(|m| m.lfdi).collect();
        }
        self.status.meters_registered = meters.len() as u64;
        self.status.meters_active = meters
            .iter()
            .filter(|m| m.status == MeterStatus::Active)
            .count() as u64;
        if let Some(bridge) = self.bridge.clone() {
            let records: Vec<MeterRecord> = meters.iter().map(meter_record).collect();
            let due = match &self.pushed {
                None => true,
                Some((last, at)) => {
                    *last != records || at.elapsed() >= std::time::Duration::from_secs(60)
                }
            };
            if due && !records.is_empty() {
                let report = bridge.sync_meters(&records).await?;
                if report != SyncReport::default() {
                    tracing::info!(
                        added = report.added,
                        changed = report.changed,
                        unregistered = report.unregistered,
                        "bridge meters synced from the registry"
                    );
                }
                self.pushed = Some((records, tokio::time::Instant::now()));
            }
        }
        Ok(meters)
    }

    fn record(&mut self, confirmed: &Confirmed) {
        self.status.transactions += 1;
        self.status.last_confirmed_slot = self.status.last_confirmed_slot.max(confirmed.slot);
        self.status.largest_transaction = self.status.largest_transaction.max(confirmed.size);
    }

    fn fail(&mut self, what: String, reason: String, at_slot: u64) {
        tracing::error!(%what, %reason, "given up");
        self.status.failures.push(Failure {
            what,
            reason,
            at_slot,
        });
    }

    async fn send<C: Chain>(
        &mut self,
        chain: &mut C,
        instructions: &[Instruction],
    ) -> Result<Confirmed, SendError> {
        let tables: Vec<AddressLookupTableAccount> = self.table.lookup().into_iter().collect();
        let confirmed = send_and_confirm(chain, instructions, &[], &tables, self.policy).await?;
        self.record(&confirmed);
        Ok(confirmed)
    }

    /// Sends one crank (`what` names it to the operator). Confirmed: `Some`. Refused by a
    /// program: recorded as a failure with the program's reason, `None` (the next pass
    /// computes again what is due). The chain unavailable: an error, and the pass stops
    /// (the keeper retries it).
    async fn crank<C: Chain>(
        &mut self,
        chain: &mut C,
        what: impl FnOnce() -> String,
        instructions: &[Instruction],
    ) -> Result<Option<Confirmed>> {
        match self.send(chain, instructions).await {
            Ok(confirmed) => Ok(Some(confirmed)),
            Err(SendError::Unavailable(e)) => Err(e),
            Err(e) => {
                let slot = chain.clock().await?.slot;
                self.fail(what(), e.reason(), slot);
                Ok(None)
            }
        }
    }

    /// One pass: batches, then minting, then the market.
    pub async fn tick<C: Chain>(&mut self, chain: &mut C) -> Result<Progress> {
        let mut progress = Progress::default();
        let registry = self.refresh_meters(chain).await?;
        let owners: Vec<(Lfdi, Pubkey)> = registry.iter().map(|m| (m.lfdi, m.owner)).collect();
        let quote_mint = self.quote_mint(chain).await?;
        self.table.ensure(chain, &owners, quote_mint).await?;
        self.submit_batches(chain, &mut progress).await?;
        self.mint(chain, &mut progress).await?;
        self.crank_market(chain, &mut progress).await?;
        Ok(progress)
    }

    async fn quote_mint<C: Chain>(&mut self, chain: &mut C) -> Result<Option<Pubkey>> {
        Ok(chain
            .account(market_ix::market_address())
            .await?
            .and_then(|a| zero_copy::<trading::Market>(&a))
            .map(|m| m.quote_mint))
    }

    /// Applies the bridge's unacknowledged batches in sequence order.
    pub async fn submit_batches<C: Chain>(
        &mut self,
        chain: &mut C,
        progress: &mut Progress,
    ) -> Result<()> {
        let Some(bridge) = self.bridge.clone() else {
            return Ok(());
        };
        let batches = bridge.batches(64).await?;
        self.status.batches_pending = batches.len() as u64;
        for batch in batches {
            let batch = match batch.decode() {
                Ok(b) => b,
                Err(e) => {
                    let slot = chain.clock().await?.slot;
                    self.fail(
                        format!("batch {}", batch.sequence),
                        format!("undecodable: {e:#}"),
                        slot,
                    );
                    break;
                }
            };
            if self.attempts.get(&batch.sequence).copied().unwrap_or(0) >= MAX_ATTEMPTS {
                // Given up on: later batches cannot apply before it (BatchOutOfOrder) until
                // governance skips it (`skip_batches`).
                break;
            }
            match self.apply_batch(chain, &batch).await? {
                Applied::Now(readings) => {
                    bridge.acknowledge(batch.sequence).await?;
                    self.status.batches_applied += 1;
                    self.status.readings_submitted += u64::from(readings);
                    self.status.batches_pending = self.status.batches_pending.saturating_sub(1);
                    progress.batches += 1;
                    progress.readings += u64::from(readings);
                    progress.last_batch_confirmed = Some(std::time::Instant::now());
                }
                Applied::Before => {
                    bridge.acknowledge(batch.sequence).await?;
                    self.status.batches_already_applied += 1;
                    self.status.batches_pending = self.status.batches_pending.saturating_sub(1);
                }
                Applied::NotYet => break,
            }
        }
        Ok(())
    }

    async fn apply_batch<C: Chain>(
        &mut self,
        chain: &mut C,
        batch: &DecodedBatch,
    ) -> Result<Applied> {
        let config = chain
            .account(oracle_ix::config_address())
            .await?
            .and_then(|a| zero_copy::<oracle::OracleConfig>(&a))
            .ok_or_else(|| anyhow::anyhow!("the oracle is not initialised"))?;
        if batch.sequence <= config.last_sequence {
            return self.judge_applied(chain, batch, &config).await;
        }
        if batch.sequence > config.last_sequence + 1 {
            tracing::warn!(
                sequence = batch.sequence,
                last = config.last_sequence,
                "batch waits for an earlier one the bridge no longer serves"
            );
            return Ok(Applied::NotYet);
        }
        let instructions = [
            oracle_ix::ed25519_verify(&batch.message, &[(batch.attestor, batch.signature)]),
            // Index 1: `send_and_confirm` puts the compute-unit limit first.
            oracle_ix::submit_readings(chain.payer_key(), 1, &batch.meters),
        ];
        match self.send(chain, &instructions).await {
            Ok(confirmed) => {
                tracing::info!(
                    sequence = batch.sequence,
                    readings = batch.meters.len(),
                    slot = confirmed.slot,
                    bytes = confirmed.size,
                    "batch applied"
                );
                Ok(Applied::Now(batch.meters.len() as u16))
            }
            Err(e) if e.custom_code() == Some(OracleError::BatchReplayed.into()) => {
                // Applied meanwhile (another keeper, or a confirmation we missed).
                let config = chain
                    .account(oracle_ix::config_address())
                    .await?
                    .and_then(|a| zero_copy::<oracle::OracleConfig>(&a))
                    .ok_or_else(|| anyhow::anyhow!("the oracle is not initialised"))?;
                self.judge_applied(chain, batch, &config).await
            }
            Err(SendError::Unavailable(e)) => Err(e),
            Err(e) => {
                let attempts = self.attempts.entry(batch.sequence).or_insert(0);
                *attempts += 1;
                let attempts = *attempts;
                let slot = chain.clock().await?.slot;
                let reason = e.reason();
                if attempts >= MAX_ATTEMPTS {
                    self.fail(
                        format!("batch {}", batch.sequence),
                        format!("{reason} ({attempts} attempts; skip it with the oracle's skip_batches)"),
                        slot,
                    );
                } else {
                    tracing::warn!(sequence = batch.sequence, %reason, attempts, "batch refused; will retry");
                }
                Ok(Applied::NotYet)
            }
        }
    }

    /// A batch whose sequence the oracle has passed: the same batch (done) or another one.
    async fn judge_applied<C: Chain>(
        &mut self,
        chain: &mut C,
        batch: &DecodedBatch,
        config: &oracle::OracleConfig,
    ) -> Result<Applied> {
        match config.applied_batch(batch.sequence) {
            Some(hash) if hash == batch.hash => Ok(Applied::Before),
            Some(_) => {
                let slot = chain.clock().await?.slot;
                self.fail(
                    format!("batch {}", batch.sequence),
                    "the oracle applied a different batch with this sequence (two bridges signing one sequence?); acknowledged, its readings are superseded by later cumulative registers".into(),
                    slot,
                );
                Ok(Applied::Before)
            }
            None => {
                // Older than the oracle remembers, or skipped by governance: registers are
                // cumulative, so a later batch carries everything this one measured.
                tracing::warn!(
                    sequence = batch.sequence,
                    "batch superseded (skipped or too old to check)"
                );
                Ok(Applied::Before)
            }
        }
    }

    /// Reads every known meter's registry record, oracle state and ledger.
    pub async fn meter_accounts<C: Chain>(&mut self, chain: &mut C) -> Result<Vec<MeterAccounts>> {
        let mut keys = Vec::with_capacity(self.meters.len() * 3);
        for lfdi in &self.meters {
            keys.push(registry_ix::meter_address(lfdi));
            keys.push(oracle_ix::meter_state_address(lfdi));
            keys.push(token_ix::ledger_address(lfdi));
        }
        let accounts = chain.accounts(&keys).await?;
        Ok(self
            .meters
            .iter()
            .zip(accounts.chunks(3))
            .filter_map(|(lfdi, a)| {
                let meter = a[0].as_ref().and_then(anchor_account::<Meter>)?;
                Some(MeterAccounts {
                    lfdi: *lfdi,
                    state: a[1].as_ref().and_then(zero_copy::<oracle::MeterState>),
                    ledger: a[2]
                        .as_ref()
                        .and_then(zero_copy::<energy_token::MeterLedger>),
                    meter,
                })
            })
            .collect())
    }

    /// `mint_generation` and `issue_rec` for every Active meter with something due.
    pub async fn mint<C: Chain>(&mut self, chain: &mut C, progress: &mut Progress) -> Result<()> {
        if chain.account(token_ix::config_address()).await?.is_none() {
            return Ok(());
        }
        let meters = self.meter_accounts(chain).await?;
        let mut grid_due = Vec::new();
        let mut recs_due = Vec::new();
        for m in &meters {
            let (Some(state), Some(ledger)) = (&m.state, &m.ledger) else {
                continue;
            };
            if m.meter.status != MeterStatus::Active {
                continue;
            }
            let grid = state
                .verified_export_wh
                .saturating_sub(ledger.grid_minted_wh);
            if grid > 0 {
                grid_due.push((m.lfdi, m.meter.owner, grid));
            }
            let recs = state
                .verified_renewable_wh
                .saturating_sub(ledger.rec_certified_wh)
                / energy_token::WH_PER_REC;
            if recs > 0 {
                recs_due.push((m.lfdi, m.meter.owner, recs));
            }
        }
        for chunk in grid_due.chunks(METERS_PER_MINT) {
            let group: Vec<(Lfdi, Pubkey)> = chunk
                .iter()
                .map(|(lfdi, owner, _)| (*lfdi, *owner))
                .collect();
            let ix = token_ix::mint_generation(&group);
            if let Some(confirmed) = self
                .crank(chain, || "mint_generation".into(), &[ix])
                .await?
            {
                // What the program minted (a meter may have been skipped).
                let wh: u64 = events::<energy_token::events::GenerationMinted>(&confirmed.logs)
                    .iter()
                    .map(|e| e.amount)
                    .sum();
                log_skipped(&confirmed.logs, "mint_generation");
                self.status.grid_minted_wh += wh;
                progress.minted_wh += wh;
            }
        }
        for chunk in recs_due.chunks(METERS_PER_MINT) {
            let group: Vec<(Lfdi, Pubkey)> = chunk
                .iter()
                .map(|(lfdi, owner, _)| (*lfdi, *owner))
                .collect();
            let ix = token_ix::issue_rec(&group);
            if let Some(confirmed) = self.crank(chain, || "issue_rec".into(), &[ix]).await? {
                let recs: u64 = events::<energy_token::events::RecsIssued>(&confirmed.logs)
                    .iter()
                    .map(|e| e.amount)
                    .sum();
                log_skipped(&confirmed.logs, "issue_rec");
                self.status.recs_issued += recs;
                progress.recs += recs;
            }
        }
        Ok(())
    }

    /// Clears every ended interval with an uncleared book, then pays out the seats.
    pub async fn crank_market<C: Chain>(
        &mut self,
        chain: &mut C,
        progress: &mut Progress,
    ) -> Result<()> {
        let Some(market) = chain
            .account(market_ix::market_address())
            .await?
            .and_then(|a| zero_copy::<trading::Market>(&a))
        else {
            return Ok(());
        };
        let now = chain.clock().await?.unix_timestamp;
        if now < market.start_time || market.interval_s == 0 {
            return Ok(());
        }
        let current = ((now - market.start_time) / i64::from(market.interval_s)) as u64;
        let first = current.saturating_sub(CLEAR_LOOKBACK);
        let books: Vec<Pubkey> = (first..current).map(market_ix::book_address).collect();
        let accounts = chain.accounts(&books).await?;
        for (interval, account) in (first..current).zip(accounts) {
            let Some(book) = account
                .as_ref()
                .and_then(zero_copy::<trading::IntervalBook>)
            else {
                continue;
            };
            if book.is_cleared() {
                // Cleared in an earlier pass and settled into the seats: return the rent to
                // whoever opened the book (nothing else reads it any more).
                let ix = market_ix::close_book(interval, book.payer);
                let what = || format!("close_book {interval}");
                if self.crank(chain, what, &[ix]).await?.is_some() {
                    self.status.books_closed += 1;
                }
                continue;
            }
            let ix = market_ix::clear_interval(interval);
            let what = || format!("clear_interval {interval}");
            if self.crank(chain, what, &[ix]).await?.is_some() {
                self.status.intervals_cleared += 1;
                progress.cleared.push(interval);
            }
        }
        // Settlement: push every seat's balance to its owner.
        let market = chain
            .account(market_ix::market_address())
            .await?
            .and_then(|a| zero_copy::<trading::Market>(&a))
            .ok_or_else(|| anyhow::anyhow!("market vanished"))?;
        let due: Vec<(u16, Pubkey)> = market
            .seats
            .iter()
            .take(usize::from(market.seat_count))
            .enumerate()
            .filter(|(_, s)| s.base > 0 || s.quote > 0)
            .map(|(i, s)| (i as u16, s.owner))
            .collect();
        for chunk in due.chunks(SEATS_PER_SWEEP) {
            let ix = market_ix::sweep(&market.quote_mint, chunk);
            if self.crank(chain, || "sweep".into(), &[ix]).await?.is_some() {
                self.status.seats_swept += chunk.len() as u64;
                progress.swept += chunk.len() as u64;
            }
        }
        Ok(())
    }
}

enum Applied {
    /// Confirmed now, with this many readings.
    Now(u16),
    /// The chain had it already.
    Before,
    /// Not applied (refused for now, or waiting for an earlier batch).
    NotYet,
}

/// A meter's accounts as the keeper reads them.
pub struct MeterAccounts {
    pub lfdi: Lfdi,
    pub meter: Meter,
    pub state: Option<oracle::MeterState>,
    pub ledger: Option<energy_token::MeterLedger>,
}
