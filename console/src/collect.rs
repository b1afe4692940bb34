//! Reading the campus from the chain (accounts by program, the owners' token accounts, the
//! market's and oracle's events since the last read) and from the bridge's keeper
//! interface, into a [`Snapshot`].
//!
//! Accounts give the present: meters, registers, balances, open books and orders,
//! proposals. The chain keeps no past in accounts (a book is closed once its orders are
//! settled), so intervals' prices and volumes, fills and applied batches come from the
//! events in the programs' transactions, which the collector follows from where it last
//! stopped (`Chain::transactions_naming`) and keeps, bounded, in memory.
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use anchor_lang::prelude::Pubkey;
use anchor_lang::Discriminator;
use anyhow::{Context, Result};
use registry::identity::Lfdi;
use sdk::accounts::{anchor_account, events, zero_copy};
use sdk::chain::Chain;
use sdk::ix::trading as market_ix;
use sdk::ix::{energy_token as token_ix, oracle as oracle_ix, registry as registry_ix};
use solana_signature::Signature;

use crate::model::*;

/// Cleared intervals kept (a week of 15-minute intervals).
pub const KEPT_INTERVALS: usize = 672;
/// Intervals shown (a day of 15-minute intervals).
pub const SHOWN_INTERVALS: usize = 96;
/// Fills and batches kept.
pub const KEPT_FILLS: usize = 500;
pub const KEPT_BATCHES: usize = 50;
/// Transactions read per program per refresh; more and the oldest are skipped (the
/// snapshot says its history is incomplete).
pub const TRANSACTIONS_PER_READ: usize = 5_000;
/// Transactions read per program at the first refresh (the history before them is not
/// the console's: it starts there).
pub const FIRST_READ: usize = 1_000;
/// Signatures remembered so that none is counted twice (a node that lost the cursor
/// pages back to transactions already seen).
pub const REMEMBERED_SIGNATURES: usize = 20_000;

/// Settled per building (by LFDI): bought, sold (Wh), paid, received (quote).
#[derive(Clone, Copy, Debug, Default)]
struct Settled {
    bought_wh: u64,
    sold_wh: u64,
    paid: u64,
    received: u64,
}

/// Reads snapshots, keeping what the events told it between reads.
pub struct Collector {
    names: HashMap<Lfdi, String>,
    /// Registry indexes of the meters last read (names meters without a code).
    indexes: HashMap<Lfdi, u16>,
    silent_after_s: i64,
    bridge: Option<keeper::bridge_api::BridgeClient>,
    market_cursor: Option<Signature>,
    oracle_cursor: Option<Signature>,
    cleared: BTreeMap<u64, Interval>,
    fills: VecDeque<Fill>,
    settled: HashMap<Lfdi, Settled>,
    batches: VecDeque<BatchRow>,
    seen: HashSet<Signature>,
    seen_order: VecDeque<Signature>,
    history_complete: bool,
    history_error: Option<String>,
    version: u64,
    time_zone: String,
}

impl Collector {
    /// `names`: building codes by meter LFDI (others are shown by their index);
    /// `silent_after_s`: a meter whose last reading on chain is older is `silent`.
    pub fn new(
        names: HashMap<Lfdi, String>,
        silent_after_s: i64,
        bridge: Option<keeper::bridge_api::BridgeClient>,
    ) -> Collector {
        Collector {
            names,
            indexes: HashMap::new(),
            silent_after_s: silent_after_s.max(1),
            bridge,
            market_cursor: None,
            oracle_cursor: None,
            cleared: BTreeMap::new(),
            fills: VecDeque::new(),
            settled: HashMap::new(),
            batches: VecDeque::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            history_complete: true,
            history_error: None,
            version: 0,
            time_zone: "UTC".into(),
        }
    }

    /// The campus's IANA time zone, which the snapshot names for the page (default UTC).
    pub fn with_time_zone(mut self, zone: &str) -> Collector {
        self.time_zone = zone.to_string();
        self
    }

    /// A meter's building code, else `#` and its registry index, else its LFDI.
    fn name(&self, lfdi: &Lfdi) -> String {
        match (self.names.get(lfdi), self.indexes.get(lfdi)) {
            (Some(code), _) => code.clone(),
            (None, Some(i)) => format!("#{i}"),
            (None, None) => sdk::identity::lfdi_hex(lfdi),
        }
    }

    /// Whether `signature` is new (remembering it if so).
    fn first_sight(&mut self, signature: Signature) -> bool {
        if !self.seen.insert(signature) {
            return false;
        }
        self.seen_order.push_back(signature);
        while self.seen_order.len() > REMEMBERED_SIGNATURES {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// Transactions to read of a program this time.
    fn read_limit(cursor: Option<Signature>) -> usize {
        if cursor.is_some() {
            TRANSACTIONS_PER_READ
        } else {
            FIRST_READ
        }
    }

    /// The market's and oracle's events since the last read.
    async fn follow<C: Chain>(&mut self, chain: &mut C) -> Result<()> {
        let market = chain
            .transactions_naming(
                trading::ID,
                self.market_cursor,
                Self::read_limit(self.market_cursor),
            )
            .await
            .context("the market's transactions")?;
        // The first read starts from what the chain keeps: a gap before it is expected.
        if market.skipped && self.market_cursor.is_some() {
            self.history_complete = false;
        }
        for tx in &market.transactions {
            if !self.first_sight(tx.signature) {
                continue;
            }
            for e in events::<trading::events::IntervalCleared>(&tx.logs) {
                self.cleared.insert(
                    e.interval,
                    Interval {
                        interval: e.interval,
                        state: "closed".into(),
                        price: e.price,
                        volume_wh: e.volume_wh,
                        buy_orders: e.buy_orders,
                        sell_orders: e.sell_orders,
                        buy_offered_wh: e.buy_volume_offered,
                        sell_offered_wh: e.sell_volume_offered,
                        starts_at: 0,
                    },
                );
            }
            for e in events::<trading::events::OrderSettled>(&tx.logs) {
                let building = self.name(&e.lfdi);
                let buy = matches!(e.side, trading::Side::Buy);
                let s = self.settled.entry(e.lfdi).or_default();
                if buy {
                    s.bought_wh = s.bought_wh.saturating_add(e.filled_wh);
                    s.paid = s.paid.saturating_add(e.quote);
                } else {
                    s.sold_wh = s.sold_wh.saturating_add(e.filled_wh);
                    s.received = s.received.saturating_add(e.quote);
                }
                self.fills.push_back(Fill {
                    interval: e.interval,
                    building,
                    side: cli::side_word(e.side).into(),
                    filled_wh: e.filled_wh,
                    quote: e.quote,
                    refund: e.refund,
                    slot: tx.slot,
                });
            }
        }
        while self.cleared.len() > KEPT_INTERVALS {
            self.cleared.pop_first();
        }
        while self.fills.len() > KEPT_FILLS {
            self.fills.pop_front();
        }
        if let Some(last) = market.transactions.last() {
            self.market_cursor = Some(last.signature);
        }

        let oracle = chain
            .transactions_naming(
                oracle::ID,
                self.oracle_cursor,
                Self::read_limit(self.oracle_cursor),
            )
            .await
            .context("the oracle's transactions")?;
        if oracle.skipped && self.oracle_cursor.is_some() {
            self.history_complete = false;
        }
        for tx in &oracle.transactions {
            if !self.first_sight(tx.signature) {
                continue;
            }
            for e in events::<oracle::events::BatchApplied>(&tx.logs) {
                self.batches.push_back(BatchRow {
                    sequence: e.sequence,
                    applied: e.applied,
                    skipped: e.skipped,
                    slot: tx.slot,
                });
            }
        }
        while self.batches.len() > KEPT_BATCHES {
            self.batches.pop_front();
        }
        if let Some(last) = oracle.transactions.last() {
            self.oracle_cursor = Some(last.signature);
        }
        Ok(())
    }

    /// Reads the campus: the chain's accounts, the events since the last read, the bridge.
    pub async fn read<C: Chain>(&mut self, chain: &mut C) -> Result<Snapshot> {
        let began = std::time::Instant::now();
        let clock = chain.clock().await?;
        let now = clock.unix_timestamp;
        let campus = chain
            .account(registry_ix::campus_address())
            .await?
            .and_then(|a| anchor_account::<registry::Campus>(&a))
            .context("the campus is not initialised on this cluster")?;
        let market = chain
            .account(market_ix::market_address())
            .await?
            .and_then(|a| zero_copy::<trading::Market>(&a))
            .context("the market is not initialised on this cluster")?;
        let oracle_config = chain
            .account(oracle_ix::config_address())
            .await?
            .and_then(|a| zero_copy::<oracle::OracleConfig>(&a))
            .context("the oracle is not initialised on this cluster")?;

        let mut meters: Vec<registry::Meter> = chain
            .program_accounts(registry::ID, registry::Meter::DISCRIMINATOR)
            .await?
            .iter()
            .filter_map(|(_, a)| anchor_account::<registry::Meter>(a))
            .collect();
        meters.sort_by_key(|m| m.index);
        self.indexes = meters.iter().map(|m| (m.lfdi, m.index)).collect();
        // The events since the last read. Without them (a node that keeps no transaction
        // history, or fails to serve it now) the accounts are still served.
        match self.follow(chain).await {
            Ok(()) => self.history_error = None,
            Err(e) => {
                let reason = format!("{e:#}");
                if self.history_error.as_deref() != Some(&reason) {
                    tracing::warn!(error = %reason, "the programs' transaction history could not be read: intervals, fills and batches wait");
                }
                self.history_complete = false;
                self.history_error = Some(reason);
            }
        }
        let states: HashMap<Lfdi, oracle::MeterState> = chain
            .program_accounts(oracle::ID, oracle::MeterState::DISCRIMINATOR)
            .await?
            .iter()
            .filter_map(|(_, a)| zero_copy::<oracle::MeterState>(a))
            .map(|s| (s.lfdi, s))
            .collect();
        let ledgers: HashMap<Lfdi, energy_token::MeterLedger> = chain
            .program_accounts(energy_token::ID, energy_token::MeterLedger::DISCRIMINATOR)
            .await?
            .iter()
            .filter_map(|(_, a)| zero_copy::<energy_token::MeterLedger>(a))
            .map(|l| (l.lfdi, l))
            .collect();
        let balances: HashMap<Pubkey, trading::Balance> = chain
            .program_accounts(trading::ID, trading::Balance::DISCRIMINATOR)
            .await?
            .iter()
            .filter_map(|(_, a)| zero_copy::<trading::Balance>(a))
            .map(|b| (b.owner, b))
            .collect();
        let books: BTreeMap<u64, trading::IntervalBook> = chain
            .program_accounts(trading::ID, trading::IntervalBook::DISCRIMINATOR)
            .await?
            .iter()
            .filter_map(|(_, a)| zero_copy::<trading::IntervalBook>(a))
            .map(|b| (b.interval, b))
            .collect();
        let mut orders: Vec<(Pubkey, trading::Order)> = chain
            .program_accounts(trading::ID, trading::Order::DISCRIMINATOR)
            .await?
            .iter()
            .filter_map(|(k, a)| zero_copy::<trading::Order>(a).map(|o| (*k, o)))
            .collect();
        orders.sort_by_key(|(_, o)| (o.interval, o.lfdi, o.side));

        // The owners' token accounts (GRID, quote, RECs), and GRID's supply.
        let grid_mint = token_ix::grid_mint();
        let rec_mint = token_ix::rec_mint();
        let mut keys = Vec::with_capacity(meters.len() * 3 + 1);
        for m in &meters {
            keys.push(token_ix::ata(&m.owner, &grid_mint));
            keys.push(token_ix::ata(&m.owner, &market.quote_mint));
            keys.push(token_ix::ata(&m.owner, &rec_mint));
        }
        keys.push(grid_mint);
        keys.push(market.quote_mint);
        let tokens = chain.accounts(&keys).await?;
        let amount = |i: usize| -> u64 {
            tokens
                .get(i)
                .and_then(|a| a.as_ref())
                .and_then(sdk::accounts::token_account)
                .map_or(0, |(_, amount)| amount)
        };
        let mint = |i: usize| {
            tokens
                .get(i)
                .and_then(|a| a.as_ref())
                .and_then(sdk::accounts::mint_supply_and_decimals)
                .unwrap_or_default()
        };
        let grid_supply_wh = mint(keys.len() - 2).0;
        let quote_decimals = mint(keys.len() - 1).1;

        let proposals = match cli::council::proposals(chain, true).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "no proposals read");
                Vec::new()
            }
        };

        let bridge = match &self.bridge {
            None => None,
            Some(client) => Some(match client.status().await {
                Ok(status) => BridgeView {
                    reachable: true,
                    error: None,
                    attestor: status.attestor,
                    chain_floor: status.chain_floor,
                    attestation: status.attestation,
                    denied: client.denied().await.unwrap_or_default(),
                },
                Err(e) => BridgeView {
                    reachable: false,
                    error: Some(format!("{e:#}")),
                    ..BridgeView::default()
                },
            }),
        };
        let mut orders_of: HashMap<Lfdi, u64> = HashMap::new();
        for (_, o) in &orders {
            *orders_of.entry(o.lfdi).or_default() += 1;
        }
        let denied: Vec<String> = bridge
            .iter()
            .flat_map(|b| b.denied.iter().map(|d| d.lfdi.to_uppercase()))
            .collect();

        // Buildings and their meters' health.
        let mut buildings = Vec::with_capacity(meters.len());
        let mut health = Vec::with_capacity(meters.len());
        let mut totals = Totals {
            grid_supply_wh,
            open_orders: orders.len() as u64,
            ..Totals::default()
        };
        let (mut active, mut silent) = (0, 0);
        for (i, m) in meters.iter().enumerate() {
            let code = self.name(&m.lfdi);
            let lfdi = sdk::identity::lfdi_hex(&m.lfdi);
            let state = states.get(&m.lfdi);
            let ledger = ledgers.get(&m.lfdi);
            let balance = balances.get(&m.owner);
            let settled = self.settled.get(&m.lfdi).copied().unwrap_or_default();
            let status = format!("{:?}", m.status);
            let last_reading = state.map_or(0, |s| s.last_timestamp);
            let readings = state.map_or(0, |s| s.reading_count);
            let age_s = (readings > 0).then(|| now.saturating_sub(last_reading).max(0));
            let health_word = if denied.contains(&lfdi) {
                "denied"
            } else {
                match m.status {
                    registry::MeterStatus::Suspended => "suspended",
                    registry::MeterStatus::Retired => "retired",
                    registry::MeterStatus::Active => match age_s {
                        None => "no reading",
                        Some(a) if a > self.silent_after_s => "silent",
                        Some(a) if a > self.silent_after_s / 2 => "late",
                        Some(_) => "ok",
                    },
                }
            };
            if m.status == registry::MeterStatus::Active {
                active += 1;
            }
            if health_word == "silent" || health_word == "no reading" {
                silent += 1;
            }
            let b = Building {
                code: code.clone(),
                lfdi: lfdi.clone(),
                kind: format!("{:?}", m.building_kind),
                owner: m.owner.to_string(),
                status: status.clone(),
                import_wh: state.map_or(0, |s| s.import_wh),
                export_wh: state.map_or(0, |s| s.export_wh),
                verified_import_wh: state.map_or(0, |s| s.verified_import_wh),
                verified_export_wh: state.map_or(0, |s| s.verified_export_wh),
                grid_minted_wh: ledger.map_or(0, |l| l.grid_minted_wh),
                redeemed_wh: ledger.map_or(0, |l| l.redeemed_wh),
                grid_wh: amount(3 * i),
                quote: amount(3 * i + 1),
                recs: amount(3 * i + 2),
                claimable_grid_wh: balance.map_or(0, |b| b.base),
                claimable_quote: balance.map_or(0, |b| b.quote),
                recs_issued: ledger.map_or(0, |l| l.recs_issued),
                open_orders: orders_of.get(&m.lfdi).copied().unwrap_or(0),
                bought_wh: settled.bought_wh,
                sold_wh: settled.sold_wh,
                paid: settled.paid,
                received: settled.received,
            };
            totals.verified_import_wh += b.verified_import_wh;
            totals.verified_export_wh += b.verified_export_wh;
            totals.grid_minted_wh += b.grid_minted_wh;
            totals.redeemed_wh += b.redeemed_wh;
            totals.recs_issued += b.recs_issued;
            buildings.push(b);
            health.push(MeterHealth {
                code,
                lfdi,
                status,
                last_reading,
                age_s,
                readings,
                health: health_word.into(),
            });
        }

        // Intervals: those the events cleared, then the books on chain (open, gate closed,
        // cleared and settling), newest last.
        let mut intervals: BTreeMap<u64, Interval> = self
            .cleared
            .iter()
            .rev()
            .take(SHOWN_INTERVALS)
            .map(|(k, i)| (*k, i.clone()))
            .collect();
        for (k, b) in &books {
            let sum = |q: &[u64]| q.iter().fold(0u64, |s, x| s.saturating_add(*x));
            let cleared = b.is_cleared();
            let entry = intervals.entry(*k).or_default();
            *entry = Interval {
                interval: *k,
                starts_at: 0,
                state: if b.is_open(now) {
                    "open"
                } else if cleared {
                    "cleared"
                } else {
                    "gate closed"
                }
                .into(),
                price: if cleared { b.price } else { 0 },
                volume_wh: if cleared { b.volume_wh } else { 0 },
                buy_orders: b.buy_orders,
                sell_orders: b.sell_orders,
                // A cleared book's offers are what the event said; an open book's, its
                // ladder's sums.
                buy_offered_wh: if cleared && entry.buy_offered_wh > 0 {
                    entry.buy_offered_wh
                } else {
                    sum(&b.demand)
                },
                sell_offered_wh: if cleared && entry.sell_offered_wh > 0 {
                    entry.sell_offered_wh
                } else {
                    sum(&b.supply)
                },
            };
        }
        let skip = intervals.len().saturating_sub(SHOWN_INTERVALS);
        let intervals: Vec<Interval> = intervals
            .into_values()
            .skip(skip)
            .map(|mut i| {
                i.starts_at = market.interval_start(i.interval).unwrap_or(0);
                i
            })
            .collect();
        totals.traded_wh = self.cleared.values().map(|i| i.volume_wh).sum();

        let order_rows = orders
            .iter()
            .map(|(key, o)| {
                let book = books.get(&o.interval);
                let price = match book {
                    Some(b) => b.ladder().price(o.tick).0,
                    None => market.ladder().price(o.tick).0,
                };
                OrderRow {
                    building: self.name(&o.lfdi),
                    order: cli::OrderView {
                        interval: o.interval,
                        starts_at: market.interval_start(o.interval).unwrap_or(0),
                        side: if o.side == 0 { "buy" } else { "sell" }.into(),
                        quantity_wh: o.quantity_wh,
                        limit_price: price,
                        escrow: o.escrow,
                        address: key.to_string(),
                        state: match book {
                            Some(b) if b.is_open(now) => "open",
                            Some(b) if b.is_cleared() => "cleared, awaiting settlement",
                            _ => "gate closed, awaiting clearing",
                        }
                        .into(),
                    },
                }
            })
            .collect();

        let current = market.interval_at(now);
        self.version += 1;
        Ok(Snapshot {
            version: self.version,
            campus: Campus {
                name: campus.name.clone(),
                time_zone: self.time_zone.clone(),
                slot: clock.slot,
                chain_time: now,
                read_at: unix_now(),
                read_ms: began.elapsed().as_millis() as u64,
                meters: meters.len() as u64,
                meters_active: active,
                meters_silent: silent,
                market: Market {
                    interval_s: market.interval_s,
                    gate_lead_s: market.gate_lead_s,
                    current_interval: current,
                    current_starts_at: market.interval_start(current).unwrap_or(0),
                    min_price: market.min_price,
                    price_tick: market.price_tick,
                    ticks: market.ticks,
                    fee_bps: market.fee_bps,
                    min_quantity_wh: market.min_quantity_wh,
                    quote_mint: market.quote_mint.to_string(),
                    quote_decimals,
                    last_price: market.last_price,
                    last_price_interval: market.last_price_interval,
                    fees: market.fees,
                    dust_wh: market.dust_wh,
                },
                paused: Paused {
                    registry_until: paused(campus.paused_until, now),
                    oracle_until: paused(oracle_config.paused_until, now),
                    market_until: paused(market.paused_until, now),
                },
                totals,
                history_complete: self.history_complete,
                history_error: self.history_error.clone(),
            },
            buildings,
            intervals,
            orders: order_rows,
            fills: self.fills.iter().cloned().collect(),
            meters: health,
            batches: Batches {
                highest_sequence: oracle_config.highest_sequence,
                recent: self.batches.iter().cloned().collect(),
                bridge,
            },
            proposals,
        })
    }
}

/// A pause's end if it is still in force, else 0.
fn paused(until: i64, now: i64) -> i64 {
    if until > now {
        until
    } else {
        0
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
