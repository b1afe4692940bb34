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
use sdk::chain::{
    send_and_confirm, send_pipelined_signed, Chain, Confirmed, Job, SendError, SendPolicy,
};
use sdk::ix::trading as market_ix;
use sdk::ix::{energy_token as token_ix, oracle as oracle_ix, registry as registry_ix};
use serde::Serialize;
use solana_instruction::Instruction;
use solana_message::AddressLookupTableAccount;

use crate::bridge_api::{meter_record, BridgeClient, DecodedBatch, MeterRecord, SyncReport};
use crate::table::{CampusTables, TableMeter};

/// Meters per `mint_generation` / `issue_rec` (4 accounts each; the runtime locks at most
/// 64 accounts per transaction).
pub const METERS_PER_MINT: usize = 14;
/// Balances per `sweep` (4 accounts each: balance, two token accounts, wallet).
pub const BALANCES_PER_SWEEP: usize = 12;
/// Orders per `settle_orders` (2 accounts each; an order's address is new every interval,
/// so it takes 32 bytes of the transaction).
pub const ORDERS_PER_SETTLEMENT: usize = 24;
/// `clear_interval`s per transaction (an empty interval costs little).
pub const CLEARS_PER_TRANSACTION: u64 = 8;
/// Where an `Order` keeps its interval: what `getProgramAccounts` filters on.
pub const ORDER_INTERVAL_OFFSET: usize = trading::Order::INTERVAL_OFFSET;
/// Refusals the status keeps (the most recent).
pub const MAX_FAILURES_KEPT: usize = 100;
/// A batch the chain refuses this many times is given up (reported, not retried).
pub const MAX_ATTEMPTS: u32 = 3;
/// Batch transactions in flight at once by default: a 10,000-meter round is 400 batches.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// Windows of batches one pass takes at most (64 x 128 batches of 25 readings: 204,800
/// readings, twenty 10,000-meter rounds).
const MAX_WINDOWS_PER_PASS: usize = 64;

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
    /// Batches whose sequence the chain settled without them (a bridge restored from a
    /// backup, a governance skip), which the bridge signed again under a new sequence.
    pub batches_resigned: u64,
    /// The chain's highest settled sequence as last reported to the bridge (it signs
    /// nothing at or below it).
    pub chain_floor: u64,
    /// Batches at the bridge not yet confirmed.
    pub batches_pending: u64,
    pub last_confirmed_slot: u64,
    pub grid_minted_wh: u64,
    pub recs_issued: u64,
    pub intervals_cleared: u64,
    pub books_opened: u64,
    pub orders_settled: u64,
    pub balances_swept: u64,
    /// Cleared books closed (their rent returned to whoever opened them).
    pub books_closed: u64,
    /// Lookup tables replaced by a rebuild, deactivated and then closed (their rent back to
    /// the payer), and the lamports recovered.
    pub lookup_tables_closed: u64,
    pub lookup_table_rent_recovered: u64,
    pub transactions: u64,
    /// Largest transaction sent, bytes.
    pub largest_transaction: usize,
    pub failures: Vec<Failure>,
    /// Passes run (by the keeper binary), and why the last one failed if it did (the bridge
    /// or the RPC endpoint away: retried).
    pub passes: u64,
    pub last_error: Option<String>,
    /// Transactions that failed for a reason other than a program's refusal (payer short of
    /// SOL, blockhash expired, ...): retried on the next pass, never given up on.
    pub transient_errors: u64,
    pub last_transient_error: Option<String>,
    /// What the last consistency check found wrong between bridge, chain and oracle, each
    /// with what to change; nothing is submitted while any remains.
    pub inconsistencies: Vec<String>,
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
    /// Each interval cleared in this pass, as the program reported it.
    pub clearings: Vec<Clearing>,
    pub settled: u64,
    /// Each order settled in this pass (from the program's `OrderSettled` events).
    pub settlements: Vec<Settlement>,
    pub swept: u64,
    /// Flow reservations the bridge took an update for: (request id, its state now).
    pub flow_updates: Vec<(u64, keeper_protocol::market::FlowState)>,
}

/// One interval's clearing, as the program reported it (`IntervalCleared`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clearing {
    pub interval: u64,
    /// 0 when nothing traded.
    pub price: u64,
    pub volume_wh: u64,
    pub buy_orders: u32,
    pub sell_orders: u32,
}

/// One order's settlement, as the program reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub interval: u64,
    pub lfdi: Lfdi,
    /// Who placed the order (whose balance was credited).
    pub owner: Pubkey,
    pub buy: bool,
    /// GRID received (buy) or delivered (sell), Wh.
    pub filled_wh: u64,
    /// Quote paid (buy) or received after the fee (sell).
    pub quote: u64,
    /// Escrow returned: quote (buy) or GRID (sell).
    pub refund: u64,
}

pub struct Keeper {
    pub bridge: Option<BridgeClient>,
    /// Meters the keeper cranks: the registry's, in index order (read from the chain every
    /// pass; the bootstrap list until the registry has any).
    pub meters: Vec<Lfdi>,
    /// The registry's meters as last pushed to the bridge, and when.
    pushed: Option<(Vec<MeterRecord>, tokio::time::Instant)>,
    pub tables: CampusTables,
    pub policy: SendPolicy,
    /// Batch transactions sent and not yet confirmed, at most (`send_pipelined`).
    pub max_in_flight: usize,
    pub status: Status,
    attempts: BTreeMap<u64, u32>,
    /// Batches the chain has (applied now or before) not yet acknowledged: the bridge takes
    /// acknowledgements oldest first, so one waits for those before it.
    to_acknowledge: std::collections::BTreeSet<u64>,
    /// What `/metrics` shows as it happens.
    pub metrics: std::sync::Arc<crate::metrics::KeeperMetrics>,
    /// The RPC endpoint's genesis hash, read once.
    genesis: Option<[u8; 32]>,
    /// The oracle's pause last logged (its end), so that a pause is logged once.
    pause_logged: i64,
    /// Flow reservations carried into orders (`flows`), and the clearings the bridge
    /// publishes as the tariff.
    pub flows: crate::flows::FlowAgent,
}

impl Keeper {
    pub fn new(bridge: Option<BridgeClient>, meters: Vec<Lfdi>) -> Keeper {
        Keeper {
            bridge,
            meters,
            tables: CampusTables::default(),
            policy: SendPolicy::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            status: Status::default(),
            attempts: BTreeMap::new(),
            to_acknowledge: Default::default(),
            pushed: None,
            metrics: Default::default(),
            genesis: None,
            pause_logged: 0,
            flows: Default::default(),
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

    /// A transaction failed for a reason that will pass (not a program's refusal): noted for
    /// the operator, retried on the next pass.
    fn transient(&mut self, what: String, e: &SendError) {
        let reason = e.reason();
        tracing::warn!(%what, %reason, "not sent (transient): retried next pass");
        self.status.transient_errors += 1;
        self.status.last_transient_error = Some(format!("{what}: {reason}"));
    }

    fn fail(&mut self, what: String, reason: String, at_slot: u64) {
        tracing::error!(%what, %reason, "given up");
        self.metrics.given_up.inc();
        // The most recent ones: a refusal repeated every pass must not grow without end.
        if self.status.failures.len() >= MAX_FAILURES_KEPT {
            self.status.failures.remove(0);
        }
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
        self.send_signed(chain, instructions, &[]).await
    }

    /// `send`, signed by `signers` too (an order delegate).
    pub(crate) async fn send_signed<C: Chain>(
        &mut self,
        chain: &mut C,
        instructions: &[Instruction],
        signers: &[&solana_keypair::Keypair],
    ) -> Result<Confirmed, SendError> {
        let tables = self.tables.for_instructions(instructions);
        let result = send_and_confirm(chain, instructions, signers, &tables, self.policy).await;
        self.count(instructions, &result);
        let confirmed = result?;
        self.record(&confirmed);
        Ok(confirmed)
    }

    /// `items` cut into consecutive batches of at most `max`, each as large as fits one
    /// transaction with the keeper's lookup tables (`build` makes a batch's instructions): an
    /// account missing from them (a table not yet extended or that failed) costs
    /// its 32 bytes in the transaction, and the batch shrinks instead of failing.
    fn batches<'a, T>(
        &self,
        payer: &solana_keypair::Keypair,
        items: &'a [T],
        max: usize,
        build: impl Fn(&[T]) -> Vec<Instruction>,
    ) -> Vec<&'a [T]> {
        let mut out = Vec::new();
        let mut rest = items;
        while !rest.is_empty() {
            let mut n = rest.len().min(max);
            while n > 1 && {
                let ixs = build(&rest[..n]);
                !sdk::chain::fits(payer, &ixs, &self.tables.for_instructions(&ixs))
            } {
                n -= 1;
            }
            out.push(&rest[..n]);
            rest = &rest[n..];
        }
        out
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
            Err(e) if !e.is_program_refusal() => {
                self.transient(what(), &e);
                Ok(None)
            }
            Err(e) => {
                let slot = chain.clock().await?.slot;
                self.fail(what(), e.reason(), slot);
                Ok(None)
            }
        }
    }

    /// Sends independent `jobs` pipelined (`max_in_flight` unconfirmed at once), each
    /// compiled with the lookup tables of its own accounts.
    async fn send_all<C: Chain>(
        &mut self,
        chain: &mut C,
        jobs: &[Vec<Instruction>],
    ) -> Vec<Result<Confirmed, SendError>> {
        let tables: Vec<Vec<AddressLookupTableAccount>> = jobs
            .iter()
            .map(|j| self.tables.for_instructions(j))
            .collect();
        let signed: Vec<Job<'_>> = jobs
            .iter()
            .zip(&tables)
            .map(|(instructions, tables)| Job {
                instructions,
                signers: &[],
                tables: Some(tables),
            })
            .collect();
        let results =
            send_pipelined_signed(chain, &signed, &[], self.policy, self.max_in_flight).await;
        for (job, result) in jobs.iter().zip(&results) {
            self.count(job, result);
        }
        results
    }

    /// A transaction's outcome, counted by its instruction (`/metrics`).
    fn count(&self, instructions: &[Instruction], result: &Result<Confirmed, SendError>) {
        self.metrics.count(instructions, result);
    }

    /// Independent cranks (`what` names them to the operator), sent pipelined: for each, as
    /// [`Self::crank`] reports one, except that the chain being unavailable is recorded as a
    /// transient error (the next pass computes again what is due) instead of stopping the
    /// pass, since the others were sent anyway.
    async fn crank_all<C: Chain>(
        &mut self,
        chain: &mut C,
        what: &str,
        jobs: &[Vec<Instruction>],
    ) -> Result<Vec<Option<Confirmed>>> {
        let results = self.send_all(chain, jobs).await;
        let mut out = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(confirmed) => {
                    self.record(&confirmed);
                    out.push(Some(confirmed));
                }
                Err(e) if !e.is_program_refusal() => {
                    self.transient(what.to_string(), &e);
                    out.push(None);
                }
                Err(e) => {
                    let slot = chain.clock().await?.slot;
                    self.fail(what.to_string(), e.reason(), slot);
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    /// One pass: batches, then minting, then the market.
    pub async fn tick<C: Chain>(&mut self, chain: &mut C) -> Result<Progress> {
        // The balance first: known even while a mismatch stops the pass.
        let payer = chain.payer_key();
        if let Some(account) = chain.accounts(&[payer]).await?.first() {
            self.metrics
                .payer_lamports
                .set(account.as_ref().map_or(0, |a| a.lamports as i64));
        }
        self.check_consistency(chain).await?;
        self.tables.metrics = Some(self.metrics.clone());
        let mut progress = Progress::default();
        let registry = self.refresh_meters(chain).await?;
        let meters: Vec<TableMeter> = registry
            .iter()
            .map(|m| TableMeter {
                lfdi: m.lfdi,
                owner: m.owner,
                index: m.index,
            })
            .collect();
        let quote_mint = self.quote_mint(chain).await?;
        // A table that fails is reported and retried next pass: its transactions name the
        // accounts it lacks themselves (and shrink to fit) meanwhile.
        let failed = self.tables.ensure(chain, &meters, quote_mint).await?;
        if failed > 0 {
            self.status.transient_errors += failed as u64;
            self.status.last_transient_error = Some(format!(
                "{failed} lookup table(s) not extended (see the log)"
            ));
        }
        // Tables a rebuild replaced: deactivated, then closed once the chain allows.
        match self.tables.reclaim(chain).await {
            Ok(reclaimed) => {
                self.status.lookup_tables_closed += reclaimed.closed;
                self.status.lookup_table_rent_recovered += reclaimed.lamports;
            }
            Err(e) => {
                self.status.transient_errors += 1;
                self.status.last_transient_error = Some(format!("retired lookup tables: {e:#}"));
            }
        }
        self.submit_batches(chain, &mut progress).await?;
        self.mint(chain, &mut progress).await?;
        self.crank_market(chain, &mut progress).await?;
        if self.bridge.is_some() {
            self.carry_flows(chain, &registry, &mut progress).await?;
        }
        Ok(progress)
    }

    async fn quote_mint<C: Chain>(&mut self, chain: &mut C) -> Result<Option<Pubkey>> {
        Ok(chain
            .account(market_ix::market_address())
            .await?
            .and_then(|a| zero_copy::<trading::Market>(&a))
            .map(|m| m.quote_mint))
    }

    /// Applies the bridge's unacknowledged batches, oldest first. The oracle takes them in any
    /// order within its window (`oracle::BATCH_WINDOW` after the last contiguous one), so
    /// they are sent pipelined (`max_in_flight` unconfirmed at once, each rebroadcast while
    /// pending) and a batch that waits (refused, or failed for a transient reason) holds up
    /// none of the others.
    pub async fn submit_batches<C: Chain>(
        &mut self,
        chain: &mut C,
        progress: &mut Progress,
    ) -> Result<()> {
        // A window at a time, until the bridge has nothing the oracle can take now (a
        // 10,000-meter round is 400 batches: several windows in one pass).
        for _ in 0..MAX_WINDOWS_PER_PASS {
            let before = (
                self.status.batches_applied,
                self.status.batches_already_applied,
                self.status.batches_resigned,
            );
            let fetched = self.submit_window(chain, progress).await?;
            let moved = (
                self.status.batches_applied,
                self.status.batches_already_applied,
                self.status.batches_resigned,
            ) != before;
            if fetched < oracle::BATCH_WINDOW as usize || !moved {
                break;
            }
        }
        Ok(())
    }

    /// One window of the bridge's unacknowledged batches; returns how many were fetched.
    async fn submit_window<C: Chain>(
        &mut self,
        chain: &mut C,
        progress: &mut Progress,
    ) -> Result<usize> {
        let Some(bridge) = self.bridge.clone() else {
            return Ok(0);
        };
        let batches = bridge.batches(oracle::BATCH_WINDOW as usize).await?;
        let fetched = batches.len();
        self.status.batches_pending = batches.len() as u64;
        let config = self.oracle_config(chain).await?;
        // The bridge signs nothing at or below what the chain has settled (a bridge restored
        // from a backup would otherwise sign sequences the chain already has).
        if config.highest_sequence > self.status.chain_floor || self.status.chain_floor == 0 {
            self.status.chain_floor = bridge.report_chain(config.highest_sequence).await?;
        }
        // Batches the oracle has settled (applied, or skipped by governance) need no count.
        self.attempts.retain(|s, _| !config.is_settled(*s));
        let sequences: Vec<u64> = batches.iter().map(|b| b.sequence).collect();
        let now = chain.clock().await?.unix_timestamp;
        let paused = config.is_paused(now);
        let mut due: Vec<DecodedBatch> = Vec::new();
        let mut beyond_window: Vec<u64> = Vec::new();
        for batch in batches {
            if config.is_settled(batch.sequence) {
                // Settled on chain: acknowledged if the chain has this batch, else signed
                // again by the bridge (skipped by governance, or a sequence a bridge
                // restored from a backup signed again).
                match batch.decode() {
                    Ok(b) => {
                        let applied = Self::judge_applied(&b, &config);
                        self.settle_batch(&bridge, b.sequence, applied, progress)
                            .await?;
                    }
                    // Nothing the bridge could sign again either: acknowledged, as before.
                    Err(_) => {
                        self.to_acknowledge.insert(batch.sequence);
                    }
                }
                continue;
            }
            if self.attempts.get(&batch.sequence).copied().unwrap_or(0) >= MAX_ATTEMPTS {
                // Given up on: the others go on; once the oracle's window is full behind
                // it, governance skips it (`skip_batches`), and it is acknowledged then.
                continue;
            }
            let batch = match batch.decode() {
                Ok(b) => b,
                Err(e) => {
                    let slot = chain.clock().await?.slot;
                    self.fail(
                        format!("batch {}", batch.sequence),
                        format!("undecodable: {e:#}"),
                        slot,
                    );
                    self.attempts.insert(batch.sequence, MAX_ATTEMPTS);
                    continue;
                }
            };
            if paused {
                // A pause is not a refusal of the batch: it waits, uncounted.
                continue;
            } else if batch.sequence > config.last_sequence.saturating_add(oracle::BATCH_WINDOW) {
                beyond_window.push(batch.sequence);
            } else {
                due.push(batch);
            }
        }
        // One line per pass for all of them, not one per batch.
        if let (Some(first), Some(last)) = (beyond_window.first(), beyond_window.last()) {
            tracing::warn!(
                batches = beyond_window.len(),
                first,
                last,
                settled_through = config.last_sequence,
                "batches beyond the oracle's window: they wait for an earlier one to land (or a governance skip)"
            );
        }
        if paused {
            // Said once per pause, not every pass.
            if self.pause_logged != config.paused_until {
                self.pause_logged = config.paused_until;
                tracing::warn!(
                    paused_until = config.paused_until,
                    "the oracle is paused: batches wait"
                );
            }
            self.status.last_transient_error =
                Some(format!("oracle paused until {}", config.paused_until));
        }
        if due.is_empty() {
            self.acknowledge_in_order(&bridge, &sequences).await?;
            return Ok(fetched);
        }
        let payer = chain.payer_key();
        let jobs: Vec<Vec<Instruction>> = due
            .iter()
            .map(|batch| {
                vec![
                    oracle_ix::ed25519_verify(&batch.message, &[(batch.attestor, batch.signature)]),
                    // Index 1: the compute-unit limit goes first.
                    oracle_ix::submit_readings(payer, 1, &batch.meters),
                ]
            })
            .collect();
        let results = self.send_all(chain, &jobs).await;
        let mut unavailable = None;
        for (batch, result) in due.iter().zip(results) {
            let applied = match result {
                Ok(confirmed) => {
                    self.record(&confirmed);
                    self.observe_applied(batch, &confirmed);
                    tracing::info!(
                        sequence = batch.sequence,
                        readings = batch.meters.len(),
                        slot = confirmed.slot,
                        bytes = confirmed.size,
                        "batch applied"
                    );
                    Applied::Now(batch.meters.len() as u16)
                }
                Err(e) if e.custom_code() == Some(OracleError::BatchReplayed.into()) => {
                    // Applied meanwhile (another keeper, or a confirmation we missed).
                    let config = self.oracle_config(chain).await?;
                    Self::judge_applied(batch, &config)
                }
                Err(SendError::Unavailable(e)) => {
                    // The cluster is away: the batch waits for the next pass.
                    unavailable.get_or_insert(e);
                    Applied::NotYet
                }
                Err(e) if !e.is_program_refusal() => {
                    // Not the oracle's refusal: the batch waits, uncounted.
                    self.transient(format!("batch {}", batch.sequence), &e);
                    Applied::NotYet
                }
                Err(e) => {
                    self.metrics.batch_refusals.inc();
                    let attempts = self.attempts.entry(batch.sequence).or_insert(0);
                    *attempts += 1;
                    let attempts = *attempts;
                    let slot = chain.clock().await?.slot;
                    let reason = e.reason();
                    if attempts >= MAX_ATTEMPTS {
                        self.fail(
                            format!("batch {}", batch.sequence),
                            format!(
                                "{reason} ({attempts} attempts); the council can skip it, and the bridge then signs its readings again under a new sequence: {}",
                                crate::governance::skip_command(batch.sequence)
                            ),
                            slot,
                        );
                    } else {
                        tracing::warn!(sequence = batch.sequence, %reason, attempts, "batch refused; will retry");
                    }
                    Applied::NotYet
                }
            };
            self.settle_batch(&bridge, batch.sequence, applied, progress)
                .await?;
        }
        self.acknowledge_in_order(&bridge, &sequences).await?;
        match unavailable {
            Some(e) => Err(e),
            None => Ok(fetched),
        }
    }

    /// The bridge (its status), the cluster the RPC endpoint serves and the oracle checked
    /// against each other (`consistency`): on a mismatch, an [`Inconsistent`] error and
    /// nothing submitted in this pass. Without a bridge (tests), nothing to check.
    ///
    /// [`Inconsistent`]: crate::consistency::Inconsistent
    pub async fn check_consistency<C: Chain>(&mut self, chain: &mut C) -> Result<()> {
        let Some(bridge) = self.bridge.clone() else {
            return Ok(());
        };
        let status = bridge.status().await?;
        let genesis = match self.genesis {
            Some(g) => g,
            None => {
                let g = chain.genesis_hash().await?;
                self.genesis = Some(g);
                g
            }
        };
        let config = self.oracle_config(chain).await?;
        let wrong = crate::consistency::check(&status, &genesis, &oracle::ID, &config);
        if wrong != self.status.inconsistencies {
            // Logged when what is wrong changes, not every pass.
            for w in wrong
                .iter()
                .filter(|w| !self.status.inconsistencies.contains(w))
            {
                tracing::error!(problem = %w, "bridge, chain and oracle disagree: nothing is submitted");
            }
            if wrong.is_empty() {
                tracing::info!("bridge, chain and oracle agree again");
            }
            self.status.inconsistencies = wrong.clone();
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(crate::consistency::Inconsistent(wrong).into())
        }
    }

    async fn oracle_config<C: Chain>(&mut self, chain: &mut C) -> Result<oracle::OracleConfig> {
        chain
            .account(oracle_ix::config_address())
            .await?
            .and_then(|a| zero_copy::<oracle::OracleConfig>(&a))
            .ok_or_else(|| anyhow::anyhow!("the oracle is not initialised"))
    }

    /// An applied batch's readings: how long each took from its end to the chain, and
    /// those the oracle skipped, by its reason (`/metrics`).
    fn observe_applied(&self, batch: &DecodedBatch, confirmed: &Confirmed) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Ok(parsed) = oracle::attestation::Batch::parse(&batch.message) {
            for i in 0..parsed.len() {
                let end = i64::from(parsed.reading(i).timestamp);
                self.metrics
                    .reading_to_chain_seconds
                    .observe((now - end).max(0) as f64);
            }
        }
        for skipped in events::<oracle::events::ReadingSkipped>(&confirmed.logs) {
            self.metrics
                .readings_skipped
                .inc(crate::metrics::oracle_error_label(skipped.reason));
        }
    }

    /// Counts a batch the chain has (now or before) and notes it for acknowledgement; has
    /// the bridge sign one the chain settled without it again.
    async fn settle_batch(
        &mut self,
        bridge: &BridgeClient,
        sequence: u64,
        applied: Applied,
        progress: &mut Progress,
    ) -> Result<()> {
        match applied {
            Applied::Now(readings) => {
                self.to_acknowledge.insert(sequence);
                self.status.batches_applied += 1;
                self.status.readings_submitted += u64::from(readings);
                self.status.batches_pending = self.status.batches_pending.saturating_sub(1);
                progress.batches += 1;
                progress.readings += u64::from(readings);
                progress.last_batch_confirmed = Some(std::time::Instant::now());
            }
            Applied::Before => {
                self.to_acknowledge.insert(sequence);
                self.status.batches_already_applied += 1;
                self.status.batches_pending = self.status.batches_pending.saturating_sub(1);
            }
            Applied::Superseded => {
                // The copy comes with the bridge's next batches; its readings apply unless
                // the chain has newer ones for their meters (then they are skipped: a copy
                // of a batch that did apply mints nothing twice).
                let copy = bridge.resign(sequence).await?;
                // Acknowledged by the bridge with the copy: acknowledging it again is a no-op
                // (204) that lets the batches after it be acknowledged in this pass.
                self.to_acknowledge.insert(sequence);
                tracing::warn!(
                    sequence,
                    copy = copy.sequence,
                    "the chain settled this batch's sequence without it: signed again by the bridge"
                );
                self.status.batches_resigned += 1;
            }
            Applied::NotYet => {}
        }
        Ok(())
    }

    /// Acknowledges, oldest first, the bridge's batches (`sequences`, as it served them,
    /// oldest first) that the chain has, up to the first it does not have yet.
    async fn acknowledge_in_order(
        &mut self,
        bridge: &BridgeClient,
        sequences: &[u64],
    ) -> Result<()> {
        for sequence in sequences {
            if !self.to_acknowledge.remove(sequence) {
                break;
            }
            bridge.acknowledge(*sequence).await?;
        }
        // Anything older than what the bridge serves is acknowledged already.
        if let Some(first) = sequences.first() {
            self.to_acknowledge.retain(|s| s > first);
        }
        Ok(())
    }

    /// A batch whose sequence the oracle has passed: the same batch (done) or another one.
    fn judge_applied(batch: &DecodedBatch, config: &oracle::OracleConfig) -> Applied {
        match config.applied_batch(batch.sequence) {
            Some(hash) if hash == batch.hash => Applied::Before,
            Some(_) => {
                tracing::warn!(
                    sequence = batch.sequence,
                    "the oracle applied a different batch with this sequence (a bridge restored from a backup, or two bridges with one key?): the bridge signs this one again under a new sequence"
                );
                Applied::Superseded
            }
            // Skipped by governance, or older than the oracle remembers: signed again, its
            // readings apply if the chain has nothing newer for their meters.
            None => Applied::Superseded,
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
        let grid = self
            .mint_all(
                chain,
                "mint_generation",
                &grid_due,
                token_ix::mint_generation,
                |logs| {
                    events::<energy_token::events::GenerationMinted>(logs)
                        .iter()
                        .map(|e| e.amount)
                        .sum()
                },
            )
            .await?;
        self.status.grid_minted_wh += grid;
        progress.minted_wh += grid;
        let recs = self
            .mint_all(chain, "issue_rec", &recs_due, token_ix::issue_rec, |logs| {
                events::<energy_token::events::RecsIssued>(logs)
                    .iter()
                    .map(|e| e.amount)
                    .sum()
            })
            .await?;
        self.status.recs_issued += recs;
        progress.recs += recs;
        Ok(())
    }

    /// Sends `instruction` (`what`) for every meter due, as many meters per transaction as
    /// fit (up to [`METERS_PER_MINT`]), pipelined; returns what the program reports it
    /// issued (`issued` reads a transaction's logs: a meter may have been skipped).
    async fn mint_all<C: Chain>(
        &mut self,
        chain: &mut C,
        what: &str,
        due: &[(Lfdi, Pubkey, u64)],
        instruction: fn(&[(Lfdi, Pubkey)]) -> Instruction,
        issued: impl Fn(&[String]) -> u64,
    ) -> Result<u64> {
        let group = |chunk: &[(Lfdi, Pubkey, u64)]| -> Vec<(Lfdi, Pubkey)> {
            chunk
                .iter()
                .map(|(lfdi, owner, _)| (*lfdi, *owner))
                .collect()
        };
        let payer = chain.payer().insecure_clone();
        let jobs: Vec<Vec<Instruction>> = self
            .batches(&payer, due, METERS_PER_MINT, |c| {
                vec![instruction(&group(c))]
            })
            .iter()
            .map(|chunk| vec![instruction(&group(chunk))])
            .collect();
        let mut total = 0;
        for confirmed in self
            .crank_all(chain, what, &jobs)
            .await?
            .into_iter()
            .flatten()
        {
            total += issued(&confirmed.logs);
            log_skipped(&confirmed.logs, what);
        }
        Ok(total)
    }

    /// The market's cranks, each a step anyone may take and none a choice: open the books of
    /// the next intervals (so buildings can place orders), clear every interval whose gate
    /// has closed from the market's cursor on (however long the keeper was away), settle
    /// the orders of cleared intervals in batches, close the books whose orders are all
    /// settled, and sweep claimable balances to their owners.
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
        let open = market.interval_at(now);
        let payer = chain.payer_key();

        // Books for every interval buildings may trade in (up to the market's horizon).
        let ahead = u64::from(market.horizon);
        let upcoming: Vec<u64> = (open..=open + ahead)
            .filter(|k| market.gate(*k).is_ok_and(|g| now < g))
            .collect();
        let books = chain
            .accounts(
                &upcoming
                    .iter()
                    .map(|k| market_ix::book_address(*k))
                    .collect::<Vec<_>>(),
            )
            .await?;
        for (k, book) in upcoming.iter().zip(books) {
            if book.is_none() && *k >= market.next_clear {
                let ix = market_ix::open_interval(payer, *k);
                if self
                    .crank(chain, || format!("open_interval {k}"), &[ix])
                    .await?
                    .is_some()
                {
                    self.status.books_opened += 1;
                }
            }
        }

        // Clear in order, from the cursor, every interval whose gate has closed: a book's
        // own gate (fixed when it was opened), else the market's for an interval without one.
        let mut next = market.next_clear;
        loop {
            let window: Vec<u64> = (next..next + CLEARS_PER_TRANSACTION).collect();
            let books = chain
                .accounts(
                    &window
                        .iter()
                        .map(|k| market_ix::book_address(*k))
                        .collect::<Vec<_>>(),
                )
                .await?;
            let batch: Vec<u64> = window
                .iter()
                .zip(&books)
                .take_while(|(k, book)| {
                    let gate = match book.as_ref().and_then(zero_copy::<trading::IntervalBook>) {
                        Some(b) => Ok(b.gate),
                        None => market.gate(**k),
                    };
                    gate.is_ok_and(|g| now >= g)
                })
                .map(|(k, _)| *k)
                .collect();
            if batch.is_empty() {
                break;
            }
            let ixs: Vec<_> = batch
                .iter()
                .map(|k| market_ix::clear_interval(*k))
                .collect();
            let what = || format!("clear_interval {}..={}", batch[0], batch[batch.len() - 1]);
            let Some(confirmed) = self.crank(chain, what, &ixs).await? else {
                break;
            };
            self.status.intervals_cleared += batch.len() as u64;
            progress.cleared.extend(&batch);
            progress.clearings.extend(
                events::<trading::events::IntervalCleared>(&confirmed.logs)
                    .into_iter()
                    .map(|e| Clearing {
                        interval: e.interval,
                        price: e.price,
                        volume_wh: e.volume_wh,
                        buy_orders: e.buy_orders,
                        sell_orders: e.sell_orders,
                    }),
            );
            next += batch.len() as u64;
        }

        // Settle the orders of cleared books; close the books all of whose orders are.
        let books = chain
            .program_accounts(trading::ID, trading::IntervalBook::DISCRIMINATOR)
            .await?;
        let mut cleared: Vec<trading::IntervalBook> = books
            .iter()
            .filter_map(|(_, a)| zero_copy::<trading::IntervalBook>(a))
            .filter(|b| b.is_cleared())
            .collect();
        cleared.sort_unstable_by_key(|b| b.interval);
        for book in cleared {
            let (interval, book_payer, open_orders) = (book.interval, book.payer, book.open_orders);
            if open_orders > 0 {
                let orders = chain
                    .program_accounts_matching(
                        trading::ID,
                        trading::Order::DISCRIMINATOR,
                        &[(ORDER_INTERVAL_OFFSET, interval.to_le_bytes().to_vec())],
                    )
                    .await?;
                // What each order fills, before settlement closes it (flow reservations
                // are answered with it).
                self.flows.note_fills(
                    &book,
                    orders
                        .iter()
                        .filter_map(|(_, a)| zero_copy::<trading::Order>(a)),
                );
                let mut due: Vec<(Pubkey, Pubkey)> = orders
                    .iter()
                    .filter_map(|(key, a)| zero_copy::<trading::Order>(a).map(|o| (*key, o.owner)))
                    .collect();
                due.sort_unstable();
                let payer = chain.payer().insecure_clone();
                let chunks = self.batches(&payer, &due, ORDERS_PER_SETTLEMENT, |c| {
                    vec![market_ix::settle_orders(interval, c)]
                });
                let jobs: Vec<Vec<Instruction>> = chunks
                    .iter()
                    .map(|chunk| vec![market_ix::settle_orders(interval, chunk)])
                    .collect();
                let what = format!("settle_orders {interval}");
                for confirmed in self
                    .crank_all(chain, &what, &jobs)
                    .await?
                    .into_iter()
                    .flatten()
                {
                    // An order settled by someone else meanwhile is passed over: count
                    // what this transaction settled.
                    let settled = events::<trading::events::OrderSettled>(&confirmed.logs);
                    self.status.orders_settled += settled.len() as u64;
                    progress.settled += settled.len() as u64;
                    progress
                        .settlements
                        .extend(settled.into_iter().map(|e| Settlement {
                            interval: e.interval,
                            lfdi: e.lfdi,
                            owner: e.owner,
                            buy: e.side == trading::Side::Buy,
                            filled_wh: e.filled_wh,
                            quote: e.quote,
                            refund: e.refund,
                        }));
                }
                if due.len() < open_orders as usize {
                    // Not all visible yet (an index behind): the next pass closes it.
                    continue;
                }
            }
            let ix = market_ix::close_book(interval, book_payer);
            if self
                .crank(chain, || format!("close_book {interval}"), &[ix])
                .await?
                .is_some()
            {
                self.status.books_closed += 1;
            }
        }

        // Pay claimable balances out to their owners.
        let balances = chain
            .program_accounts(trading::ID, trading::Balance::DISCRIMINATOR)
            .await?;
        let mut due: Vec<Pubkey> = balances
            .iter()
            .filter_map(|(_, a)| zero_copy::<trading::Balance>(a))
            .filter(|b| b.base > 0 || b.quote > 0)
            .map(|b| b.owner)
            .collect();
        due.sort_unstable();
        let payer = chain.payer().insecure_clone();
        let chunks = self.batches(&payer, &due, BALANCES_PER_SWEEP, |c| {
            vec![market_ix::sweep(&market.quote_mint, c)]
        });
        let jobs: Vec<Vec<Instruction>> = chunks
            .iter()
            .map(|chunk| vec![market_ix::sweep(&market.quote_mint, chunk)])
            .collect();
        let results = self.crank_all(chain, "sweep", &jobs).await?;
        for (chunk, confirmed) in chunks.iter().zip(results) {
            if confirmed.is_some() {
                self.status.balances_swept += chunk.len() as u64;
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
    /// Its sequence is settled on chain without it (skipped by governance, taken by
    /// another batch, or too old for the oracle to tell): the bridge signs it again.
    Superseded,
}

/// A meter's accounts as the keeper reads them.
pub struct MeterAccounts {
    pub lfdi: Lfdi,
    pub meter: Meter,
    pub state: Option<oracle::MeterState>,
    pub ledger: Option<energy_token::MeterLedger>,
}
