//! Buildings' IEEE 2030.5 flow reservations, carried into the market: each request the
//! bridge stored becomes the building's order, signed by the campus's order delegate (a key
//! each building's owner authorises on chain for orders only, `authorize_delegate`), at the
//! building's price limit (its PriceResponseCfg, else this keeper's configuration); a
//! cancellation before the gate cancels the order; once the interval clears, the fill (as
//! settlement computes it, from the order and the book's clearing) goes back to the bridge,
//! which answers the EMS with a FlowReservationResponse. The market's parameters and
//! clearings go to the bridge too: it publishes them as the campus tariff.
//!
//! The bridge holds every request and its state, the keeper's intent included (Placing):
//! a pass that fails, or a placement whose outcome is lost, is resolved by the next pass
//! from the chain. Only the fills noted before settlement live in memory until answered: a
//! keeper restarted between settling an interval and answering it leaves those requests
//! unanswered (they age out with the bridge's 7 days).
use std::collections::BTreeMap;

use anchor_lang::prelude::Pubkey;
use anyhow::Result;
use keeper_protocol::market::{
    ClearedInterval, FlowRequest, FlowSide, FlowState, FlowUpdate, MarketInfo, MarketReport,
};
use registry::identity::Lfdi;
use registry::Meter;
use sdk::accounts::zero_copy;
use sdk::chain::{Chain, SendError};
use sdk::ix::trading as market_ix;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::state::auction;

use crate::keeper::{Keeper, Progress};

/// Requests read from the bridge per pass, at most.
pub const FLOWS_PER_PASS: usize = 500;

/// What the keeper needs to carry flow reservations, and what it learnt of clearings.
#[derive(Default)]
pub struct FlowAgent {
    /// The campus's order delegate (`order_delegate_keypair`): without it every request is
    /// rejected, saying so.
    pub delegate: Option<Keypair>,
    /// Price limits for buildings without a PriceResponseCfg (quote base units per kWh).
    pub buy_limit: Option<u64>,
    pub sell_limit: Option<u64>,
    /// Clearings not yet reported to the bridge.
    pending: Vec<ClearedInterval>,
    /// Each order's fill at its interval's clearing: (interval, LFDI, side) -> (Wh, price).
    fills: BTreeMap<(u64, Lfdi, u8), (u64, u64)>,
    /// Flow reservations placed, cancelled, rejected and answered (counts, this run).
    pub placed: u64,
    pub cancelled: u64,
    pub rejected: u64,
    pub filled: u64,
}

fn side_code(side: FlowSide) -> u8 {
    match side {
        FlowSide::Buy => trading::SIDE_BUY,
        FlowSide::Sell => trading::SIDE_SELL,
    }
}

fn trading_side(side: FlowSide) -> trading::Side {
    match side {
        FlowSide::Buy => trading::Side::Buy,
        FlowSide::Sell => trading::Side::Sell,
    }
}

fn market_info(m: &trading::Market) -> MarketInfo {
    MarketInfo {
        start_time: m.start_time,
        interval_s: m.interval_s,
        gate_lead_s: m.gate_lead_s,
        horizon: m.horizon,
        min_price: m.min_price,
        price_tick: m.price_tick,
        ticks: m.ticks,
        fee_bps: m.fee_bps,
        min_quantity_wh: m.min_quantity_wh,
    }
}

impl FlowAgent {
    /// Notes what every order of a cleared `book` fills (the auction's rules, as
    /// `settle_orders` applies them), before settlement closes the orders.
    pub fn note_fills(
        &mut self,
        book: &trading::IntervalBook,
        orders: impl Iterator<Item = trading::Order>,
    ) {
        let clearing = book.clearing();
        let price = clearing.as_ref().map_or(0, |c| c.price.0);
        for order in orders {
            let filled = match order.side() {
                Ok(trading::Side::Buy) => {
                    auction::settle_buy(order.tick, order.quantity(), clearing.as_ref())
                        .map(|f| f.received.0)
                }
                Ok(trading::Side::Sell) => {
                    auction::settle_sell(order.tick, order.quantity(), clearing.as_ref())
                        .map(|f| f.delivered.0)
                }
                Err(e) => Err(e),
            };
            if let Ok(filled) = filled {
                self.fills
                    .insert((order.interval, order.lfdi, order.side), (filled, price));
            }
        }
        // Fills are looked up within a few passes of their clearing.
        while self.fills.len() > 100_000 {
            self.fills.pop_first();
        }
    }
}

/// Why a request cannot become an order (its answer to the EMS).
fn refuse(why: impl Into<String>) -> Decision {
    Decision::Reject(why.into())
}

enum Decision {
    Place {
        owner: Pubkey,
        limit: u64,
        quantity_wh: u64,
    },
    Reject(String),
}

/// What an owner's token account lets a delegated order lock: its balance, within the
/// allowance it gave the market's vault authority.
fn lockable(account: &[u8]) -> u64 {
    use anchor_lang::solana_program::program_pack::Pack;
    let Ok(a) = spl_token_interface::state::Account::unpack(account) else {
        return 0;
    };
    match Option::<Pubkey>::from(a.delegate) {
        Some(d) if d == market_ix::vault_authority() => a.amount.min(a.delegated_amount),
        _ => 0,
    }
}

impl Keeper {
    /// One pass over the bridge's flow reservations (after the market's cranks, so that
    /// this pass's clearings are known): report the market, place what was requested,
    /// cancel what was cancelled, answer what cleared.
    pub async fn carry_flows<C: Chain>(
        &mut self,
        chain: &mut C,
        registry: &[Meter],
        progress: &mut Progress,
    ) -> Result<()> {
        let Some(bridge) = self.bridge.clone() else {
            return Ok(());
        };
        let Some(market) = chain
            .account(market_ix::market_address())
            .await?
            .and_then(|a| zero_copy::<trading::Market>(&a))
        else {
            return Ok(());
        };
        let info = market_info(&market);
        let now = chain.clock().await?.unix_timestamp;
        // Fills as settlement reported them (for orders settled without a fill noted first).
        for st in &progress.settlements {
            let price = progress
                .clearings
                .iter()
                .find(|c| c.interval == st.interval)
                .map_or(0, |c| c.price);
            let side = if st.buy {
                trading::SIDE_BUY
            } else {
                trading::SIDE_SELL
            };
            self.flows
                .fills
                .entry((st.interval, st.lfdi, side))
                .or_insert((st.filled_wh, price));
        }
        self.flows
            .pending
            .extend(progress.clearings.iter().map(|c| ClearedInterval {
                interval: c.interval,
                price: c.price,
                volume_wh: c.volume_wh,
            }));
        let report = MarketReport {
            market: info,
            cleared: self.flows.pending.clone(),
            chain_time: now,
        };
        match bridge.report_market(&report).await {
            Ok(()) => self.flows.pending.clear(),
            Err(e) => {
                // Kept for the next pass.
                tracing::warn!(error = %format!("{e:#}"), "market report to the bridge failed");
                return Ok(());
            }
        }
        let requests = match bridge.flow_requests(FLOWS_PER_PASS).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "flow reservations unavailable");
                return Ok(());
            }
        };
        for request in requests {
            let update = match request.state {
                FlowState::Requested => {
                    self.place_flow(chain, &bridge, registry, &market, &info, &request, now)
                        .await?
                }
                FlowState::Placing => {
                    self.resume_placing(chain, &bridge, registry, &market, &info, &request, now)
                        .await?
                }
                FlowState::CancelRequested => self.cancel_flow(chain, &market, &request).await?,
                FlowState::Placed => self.answer_flow(chain, &market, &request).await?,
                _ => None,
            };
            let Some(update) = update else { continue };
            match bridge.flow_update(request.id, &update).await {
                Ok(after) => {
                    if let (FlowUpdate::Filled { .. }, Ok(lfdi)) = (
                        &update,
                        keeper_protocol::hex::decode_array::<20>(&request.lfdi),
                    ) {
                        // Answered: the fill is no longer needed.
                        self.flows
                            .fills
                            .remove(&(request.interval, lfdi, side_code(request.side)));
                    }
                    let outcome = match &update {
                        FlowUpdate::Placing { .. } => "placing",
                        FlowUpdate::Placed { .. } => {
                            self.flows.placed += 1;
                            "placed"
                        }
                        FlowUpdate::Cancelled => {
                            self.flows.cancelled += 1;
                            "cancelled"
                        }
                        FlowUpdate::Rejected { reason } => {
                            self.flows.rejected += 1;
                            tracing::info!(id = request.id, %reason, "flow reservation rejected");
                            "rejected"
                        }
                        FlowUpdate::Filled { .. } => {
                            self.flows.filled += 1;
                            "filled"
                        }
                    };
                    self.metrics.flow_updates.inc(outcome);
                    progress.flow_updates.push((after.id, after.state));
                }
                Err(e) => {
                    tracing::warn!(id = request.id, error = %format!("{e:#}"), "flow update not taken")
                }
            }
        }
        Ok(())
    }

    /// Whether and how request `r` becomes an order.
    async fn decide<C: Chain>(
        &mut self,
        chain: &mut C,
        registry: &[Meter],
        info: &MarketInfo,
        quote_mint: Pubkey,
        r: &FlowRequest,
        now: i64,
    ) -> Result<Decision> {
        let Some(delegate) = self.flows.delegate.as_ref().map(|k| k.pubkey()) else {
            return Ok(refuse(
                "this campus's keeper places no delegated orders (no order_delegate_keypair)",
            ));
        };
        let Ok(lfdi) = keeper_protocol::hex::decode_array::<20>(&r.lfdi) else {
            return Ok(refuse("the request names no meter"));
        };
        let Some(meter) = registry.iter().find(|m| m.lfdi == lfdi) else {
            return Ok(refuse("the meter is not registered"));
        };
        let delegation = chain
            .account(market_ix::order_delegate_address(&lfdi))
            .await?
            .and_then(|a| zero_copy::<trading::OrderDelegate>(&a));
        match delegation {
            None => return Ok(refuse(format!("the building's owner has not authorised an order delegate (authorize_delegate to {delegate})"))),
            Some(d) if d.delegate != delegate => {
                return Ok(refuse(format!("the building's order delegate is {}, not this keeper's {delegate}", d.delegate)))
            }
            Some(d) if d.owner != meter.owner => {
                return Ok(refuse("the delegation was given by the meter's previous owner"))
            }
            Some(_) => {}
        }
        let limit = r.price_limit.or(match r.side {
            FlowSide::Buy => self.flows.buy_limit,
            FlowSide::Sell => self.flows.sell_limit,
        });
        let Some(limit) = limit else {
            return Ok(refuse(
                "no price limit: set a PriceResponseCfg for the rate component",
            ));
        };
        let Some(limit) = info.ladder_price(limit, r.side) else {
            return Ok(refuse(format!(
                "the price limit {limit} is outside the market's ladder"
            )));
        };
        if info.gate_of(r.interval).is_none_or(|g| g <= now) {
            return Ok(refuse(
                "the interval's gate closed before the order could be placed",
            ));
        }
        let order = market_ix::order_address(r.interval, &lfdi, trading_side(r.side));
        if chain.account(order).await?.is_some() {
            return Ok(refuse(
                "the building already has an order on this side of the interval",
            ));
        }
        // What the owner's accounts let the order lock: GRID to sell, credits to buy (at
        // the limit, rounded up as the escrow is). Less than asked: the order is smaller.
        let (mint, what) = match r.side {
            FlowSide::Buy => (quote_mint, "credits"),
            FlowSide::Sell => (sdk::ix::energy_token::grid_mint(), "GRID"),
        };
        let tokens = chain
            .account(sdk::ix::energy_token::ata(&meter.owner, &mint))
            .await?;
        let available = tokens.map_or(0, |a| lockable(&a.data));
        let quantity_wh = match r.side {
            FlowSide::Sell => r.energy_wh.min(available),
            FlowSide::Buy => {
                let affordable = u128::from(available) * 1_000 / u128::from(limit.max(1));
                r.energy_wh
                    .min(u64::try_from(affordable).unwrap_or(u64::MAX))
            }
        };
        if quantity_wh == 0 || quantity_wh < info.min_quantity_wh {
            return Ok(refuse(format!(
                "the owner's {what} account allows the order to lock {available} (approve more for the market's vault authority)"
            )));
        }
        // The order's rent (and the owner's balance account's, the first time) comes out of
        // the delegation's rent float, which the owner funds.
        let rent = anchor_lang::prelude::Rent::default();
        let balance_missing = chain
            .account(market_ix::balance_address(&meter.owner))
            .await?
            .is_none();
        let needed = rent.minimum_balance(trading::Order::SPACE)
            + if balance_missing {
                rent.minimum_balance(trading::Balance::SPACE)
            } else {
                0
            };
        let float = chain
            .account(market_ix::order_delegate_address(&lfdi))
            .await?
            .map_or(0, |a| {
                a.lamports
                    .saturating_sub(rent.minimum_balance(trading::OrderDelegate::SPACE))
            });
        if float < needed {
            return Ok(refuse(format!(
                "the delegation's rent float holds {float} lamports, less than the order's rent ({needed}): its owner tops it up (gridtokenx delegate authorize --rent-float-sol)"
            )));
        }
        Ok(Decision::Place {
            owner: meter.owner,
            limit,
            quantity_wh,
        })
    }

    /// Places a requested flow reservation: its intent recorded at the bridge first (so
    /// that a placement whose outcome is not learnt is found on chain by the next pass, and
    /// a cancellation meanwhile cancels the order), then the order sent.
    #[allow(clippy::too_many_arguments)]
    async fn place_flow<C: Chain>(
        &mut self,
        chain: &mut C,
        bridge: &crate::bridge_api::BridgeClient,
        registry: &[Meter],
        market: &trading::Market,
        info: &MarketInfo,
        r: &FlowRequest,
        now: i64,
    ) -> Result<Option<FlowUpdate>> {
        let (owner, limit, quantity_wh) = match self
            .decide(chain, registry, info, market.quote_mint, r, now)
            .await?
        {
            Decision::Reject(reason) => return Ok(Some(FlowUpdate::Rejected { reason })),
            Decision::Place {
                owner,
                limit,
                quantity_wh,
            } => (owner, limit, quantity_wh),
        };
        let intent = FlowUpdate::Placing {
            limit_price: limit,
            quantity_wh,
        };
        match bridge.flow_update(r.id, &intent).await {
            Ok(after) if after.state == FlowState::Placing => {}
            // Cancelled meanwhile (or the bridge away): nothing sent.
            Ok(_) => return Ok(None),
            Err(e) => {
                tracing::warn!(id = r.id, error = %format!("{e:#}"), "flow reservation's intent not recorded");
                return Ok(None);
            }
        }
        let delegate = self
            .flows
            .delegate
            .as_ref()
            .expect("decided with a delegate")
            .insecure_clone();
        let lfdi = keeper_protocol::hex::decode_array::<20>(&r.lfdi).expect("decided");
        let ix = market_ix::place_delegated_order(
            delegate.pubkey(),
            owner,
            &market.quote_mint,
            &lfdi,
            r.interval,
            trading_side(r.side),
            quantity_wh,
            limit,
        );
        Ok(match self.send_signed(chain, &[ix], &[&delegate]).await {
            Ok(_) => {
                tracing::info!(id = r.id, interval = r.interval, side = ?r.side,
                    wh = quantity_wh, requested = r.energy_wh, limit,
                    "flow reservation placed as the building's order");
                Some(FlowUpdate::Placed { limit_price: limit })
            }
            // The outcome is unknown: the request stays Placing, and the next pass looks.
            Err(SendError::Unavailable(e)) => return Err(e),
            Err(e) if e.is_program_refusal() => Some(FlowUpdate::Rejected { reason: e.reason() }),
            // Transient (fees, blockhash): the next pass looks, and sends again.
            Err(e) => {
                tracing::warn!(id = r.id, error = %e, "flow reservation not placed yet");
                None
            }
        })
    }

    /// A request left Placing (the keeper did not learn the outcome): placed if its order
    /// is on chain, the building's; else placed again while the gate is open.
    #[allow(clippy::too_many_arguments)]
    async fn resume_placing<C: Chain>(
        &mut self,
        chain: &mut C,
        bridge: &crate::bridge_api::BridgeClient,
        registry: &[Meter],
        market: &trading::Market,
        info: &MarketInfo,
        r: &FlowRequest,
        now: i64,
    ) -> Result<Option<FlowUpdate>> {
        let Ok(lfdi) = keeper_protocol::hex::decode_array::<20>(&r.lfdi) else {
            return Ok(Some(FlowUpdate::Rejected {
                reason: "the request names no meter".into(),
            }));
        };
        let address = market_ix::order_address(r.interval, &lfdi, trading_side(r.side));
        let order = chain
            .account(address)
            .await?
            .and_then(|a| zero_copy::<trading::Order>(&a));
        let owner = registry.iter().find(|m| m.lfdi == lfdi).map(|m| m.owner);
        if let Some(order) = order {
            if Some(order.owner) == owner {
                return Ok(Some(FlowUpdate::Placed {
                    limit_price: r.limit_price.unwrap_or(0),
                }));
            }
        }
        if r.interval < market.next_clear {
            // Cleared without its order: it was never placed.
            return Ok(Some(FlowUpdate::Rejected {
                reason: "the order was not placed before the gate".into(),
            }));
        }
        self.place_flow(chain, bridge, registry, market, info, r, now)
            .await
    }

    /// Cancels a request's order before the gate. After it, the order stands: once its
    /// interval clears, the request is answered with its fill like any placed one.
    async fn cancel_flow<C: Chain>(
        &mut self,
        chain: &mut C,
        market: &trading::Market,
        r: &FlowRequest,
    ) -> Result<Option<FlowUpdate>> {
        if r.interval < market.next_clear {
            return self.answer_flow(chain, market, r).await;
        }
        let Ok(lfdi) = keeper_protocol::hex::decode_array::<20>(&r.lfdi) else {
            return Ok(Some(FlowUpdate::Cancelled));
        };
        let address = market_ix::order_address(r.interval, &lfdi, trading_side(r.side));
        let Some(order) = chain
            .account(address)
            .await?
            .and_then(|a| zero_copy::<trading::Order>(&a))
        else {
            // No order (never placed, or already cancelled): nothing to undo.
            return Ok(Some(FlowUpdate::Cancelled));
        };
        let Some(delegate) = self.flows.delegate.as_ref().map(|k| k.insecure_clone()) else {
            return Ok(None);
        };
        let ix = market_ix::cancel_delegated_order(
            delegate.pubkey(),
            order.owner,
            &market.quote_mint,
            &lfdi,
            r.interval,
            trading_side(r.side),
        );
        Ok(match self.send_signed(chain, &[ix], &[&delegate]).await {
            Ok(_) => Some(FlowUpdate::Cancelled),
            Err(SendError::Unavailable(e)) => return Err(e),
            // After the gate the order stands: it fills and is answered as such.
            Err(e) => {
                tracing::info!(id = r.id, reason = %e.reason(), "flow reservation's order not cancelled");
                None
            }
        })
    }

    /// A placed request whose interval cleared: its fill, as noted before settlement (or as
    /// settlement reported it). An order still on chain waits for its settlement; a fill
    /// this keeper never saw (settled by someone else while it was away) stays unanswered,
    /// said in the log, until the request ages out.
    async fn answer_flow<C: Chain>(
        &mut self,
        chain: &mut C,
        market: &trading::Market,
        r: &FlowRequest,
    ) -> Result<Option<FlowUpdate>> {
        if r.interval >= market.next_clear {
            return Ok(None);
        }
        let Ok(lfdi) = keeper_protocol::hex::decode_array::<20>(&r.lfdi) else {
            return Ok(None);
        };
        if let Some((filled_wh, price)) =
            self.flows.fills.get(&(r.interval, lfdi, side_code(r.side)))
        {
            return Ok(Some(FlowUpdate::Filled {
                filled_wh: *filled_wh,
                price: *price,
            }));
        }
        let address = market_ix::order_address(r.interval, &lfdi, trading_side(r.side));
        if chain.account(address).await?.is_none() {
            tracing::warn!(
                id = r.id,
                interval = r.interval,
                "a flow reservation's order was settled without this keeper seeing its fill"
            );
        }
        Ok(None)
    }
}
