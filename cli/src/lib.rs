//! The `gridtokenx` command line for building managers and the council: a building's
//! status (meter, registers, verified import and export, GRID, quote and REC balances,
//! claimable balance, open orders), its orders (place, replace, cancel), withdrawals,
//! GRID redeemed against import, RECs retired, and the council's proposals (`council`),
//! against any cluster (`--url`, as the Solana
//! CLI) or, in the tests, the embedded chain: every command is a function generic over the
//! SDK's `Chain`.
//!
//! Bad input is refused before anything is sent, with an error that names the fix: an
//! unknown building (the campus's codes are listed), a signer that is not the building's
//! owner, a price off the market's ladder (the nearest prices named), a quantity under the
//! minimum, an interval whose gate has closed (the next open one named).
use std::path::Path;

pub mod agent;
pub mod council;

use anchor_lang::prelude::Pubkey;
use anchor_lang::Discriminator;
use anyhow::{bail, Context, Result};
use registry::identity::Lfdi;
use registry::{Meter, MeterStatus};
use sdk::accounts::{anchor_account, zero_copy};
use sdk::chain::{send_and_confirm, Chain, SendPolicy};
use sdk::ix::trading as market_ix;
use sdk::ix::{energy_token as token_ix, oracle as oracle_ix, registry as registry_ix};
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::Side;

/// The campus's buildings by code, with their meters' LFDIs (from the campus file and the
/// device certificates in the PKI directory).
#[derive(Clone, Debug)]
pub struct Buildings {
    pub buildings: Vec<(String, Lfdi)>,
    /// The campus file they come from (kinds, capacities).
    pub campus: Option<sdk::CampusConfig>,
}

impl Buildings {
    pub fn load(campus_file: &Path, pki_dir: &Path) -> Result<Buildings> {
        let campus = sdk::CampusConfig::load(campus_file)
            .with_context(|| format!("campus file {}", campus_file.display()))?;
        let layout = certs::Layout::new(pki_dir);
        let mut buildings = Vec::new();
        for b in &campus.buildings {
            let path = layout.meter_cert(&b.code);
            let pem = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "device certificate of {} at {} (set --pki)",
                    b.code,
                    path.display()
                )
            })?;
            let der = certs::pem_to_der(&pem, &path)?;
            buildings.push((b.code.clone(), sdk::identity::lfdi_from_certificate(&der)));
        }
        Ok(Buildings {
            buildings,
            campus: Some(campus),
        })
    }

    /// A building's kind and capacity as the campus file gives them.
    pub fn registration(
        &self,
        code: &str,
    ) -> Result<(registry::BuildingKind, registry::MeterCapacity)> {
        let b = self
            .campus
            .as_ref()
            .context("no campus file loaded")?
            .buildings
            .iter()
            .find(|b| b.code == code)
            .with_context(|| format!("building {code} is not in the campus file"))?;
        let capacity = b
            .capacity()
            .with_context(|| format!("building {code}'s capacity overflows"))?;
        Ok((b.kind.into(), capacity))
    }

    /// No buildings (for commands that name none).
    pub fn none() -> Buildings {
        Buildings {
            buildings: Vec::new(),
            campus: None,
        }
    }

    /// A building by its code, or a meter by its LFDI (40 hex digits).
    pub fn lfdi(&self, building: &str) -> Result<(String, Lfdi)> {
        if let Some((code, lfdi)) = self.buildings.iter().find(|(c, _)| c == building) {
            return Ok((code.clone(), *lfdi));
        }
        if let Some(lfdi) = sdk::identity::parse_lfdi_hex(building) {
            let code = self
                .buildings
                .iter()
                .find(|(_, l)| *l == lfdi)
                .map_or_else(|| building.to_uppercase(), |(c, _)| c.clone());
            return Ok((code, lfdi));
        }
        let codes: Vec<&str> = self.buildings.iter().map(|(c, _)| c.as_str()).collect();
        bail!(
            "unknown building {building:?}: the campus has {} (or give a meter's LFDI, 40 hex digits)",
            codes.join(", ")
        )
    }
}

/// An open order, as `status` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct OrderView {
    pub interval: u64,
    /// When the interval starts (Unix seconds).
    pub starts_at: i64,
    pub side: String,
    pub quantity_wh: u64,
    /// Quote base units per kWh.
    pub limit_price: u64,
    /// Locked: quote base units (buy) or Wh of GRID (sell).
    pub escrow: u64,
    pub address: String,
    /// `open` until its gate closes; then awaiting clearing, then settlement.
    pub state: String,
}

/// A building's state on chain.
#[derive(Clone, Debug, Serialize)]
pub struct BuildingStatus {
    pub building: String,
    pub lfdi: String,
    pub owner: String,
    pub meter_status: String,
    /// The registers as last applied by the oracle (Wh) and when.
    pub import_wh: u64,
    pub export_wh: u64,
    pub last_reading: i64,
    pub verified_import_wh: u64,
    pub verified_export_wh: u64,
    pub grid_minted_wh: u64,
    pub redeemed_wh: u64,
    /// GRID (Wh) and quote tokens (base units) in the owner's token accounts.
    pub grid_wh: u64,
    pub quote: u64,
    /// Claimable in the market (settled, not yet withdrawn or swept).
    pub claimable_grid_wh: u64,
    pub claimable_quote: u64,
    /// RECs (1 MWh each) held by the owner, and issued for this meter's renewable export.
    pub recs: u64,
    pub recs_issued: u64,
    pub open_orders: Vec<OrderView>,
    /// The building's settled orders among the last [`FILLS_LOOKBACK`] transactions of its
    /// owner's market balance (every settlement credits it), oldest first; empty where the
    /// chain serves no transaction history.
    pub fills: Vec<FillView>,
}

/// How many of the owner's market balance's most recent transactions `status` reads for
/// fills (settlements, withdrawals and sweeps: each a `getTransaction` over RPC).
pub const FILLS_LOOKBACK: usize = 100;

/// A settled order, from the market's `OrderSettled` event.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FillView {
    pub interval: u64,
    pub side: String,
    /// GRID received (buy) or delivered (sell), Wh.
    pub filled_wh: u64,
    /// Quote paid (buy) or received after the fee (sell), base units.
    pub quote: u64,
    /// Escrow returned: quote (buy) or GRID (sell).
    pub refund: u64,
    pub slot: u64,
    pub signature: String,
}

/// The fills of meter `lfdi`, owned by `owner`, among the last `lookback` transactions of
/// the owner's market balance: only the owner's settlements (and withdrawals and sweeps)
/// are read, not the whole market's.
pub async fn fills<C: Chain>(
    chain: &mut C,
    owner: &Pubkey,
    lfdi: &Lfdi,
    lookback: usize,
) -> Result<Vec<FillView>> {
    let txs = chain
        .transactions_naming(market_ix::balance_address(owner), None, lookback)
        .await?;
    let mut out = Vec::new();
    for tx in &txs.transactions {
        for e in sdk::accounts::events::<trading::events::OrderSettled>(&tx.logs) {
            if e.lfdi == *lfdi {
                out.push(FillView {
                    interval: e.interval,
                    side: side_word(e.side).into(),
                    filled_wh: e.filled_wh,
                    quote: e.quote,
                    refund: e.refund,
                    slot: tx.slot,
                    signature: tx.signature.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// An SPL token account's amount (0 when it does not exist).
async fn token_amount<C: Chain>(chain: &mut C, account: Pubkey) -> Result<u64> {
    Ok(chain
        .account(account)
        .await?
        .and_then(|a| sdk::accounts::token_account(&a))
        .map_or(0, |(_, amount)| amount))
}

async fn market<C: Chain>(chain: &mut C) -> Result<trading::Market> {
    chain
        .account(market_ix::market_address())
        .await?
        .and_then(|a| zero_copy::<trading::Market>(&a))
        .context("the market is not initialised on this cluster")
}

async fn meter<C: Chain>(chain: &mut C, code: &str, lfdi: &Lfdi) -> Result<Meter> {
    chain
        .account(registry_ix::meter_address(lfdi))
        .await?
        .and_then(|a| anchor_account::<Meter>(&a))
        .with_context(|| format!("building {code} has no meter registered on this cluster"))
}

/// An order's side as the command line and the console write it.
pub fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn side_name(side: u8) -> String {
    if side == 0 { "buy" } else { "sell" }.to_string()
}

/// `gridtokenx status BUILDING`.
pub async fn status<C: Chain>(chain: &mut C, code: &str, lfdi: &Lfdi) -> Result<BuildingStatus> {
    let meter = meter(chain, code, lfdi).await?;
    let market = market(chain).await?;
    let state = chain
        .account(oracle_ix::meter_state_address(lfdi))
        .await?
        .and_then(|a| zero_copy::<oracle::MeterState>(&a));
    let ledger = chain
        .account(token_ix::ledger_address(lfdi))
        .await?
        .and_then(|a| zero_copy::<energy_token::MeterLedger>(&a));
    let grid_wh = token_amount(chain, token_ix::ata(&meter.owner, &token_ix::grid_mint())).await?;
    let quote = token_amount(chain, token_ix::ata(&meter.owner, &market.quote_mint)).await?;
    let recs = token_amount(chain, token_ix::ata(&meter.owner, &token_ix::rec_mint())).await?;
    let balance = chain
        .account(market_ix::balance_address(&meter.owner))
        .await?
        .and_then(|a| zero_copy::<trading::Balance>(&a));
    let orders: Vec<(Pubkey, trading::Order)> = chain
        .program_accounts_matching(
            trading::ID,
            trading::Order::DISCRIMINATOR,
            &[(
                8 + std::mem::offset_of!(trading::Order, lfdi),
                lfdi.to_vec(),
            )],
        )
        .await?
        .iter()
        .filter_map(|(key, a)| zero_copy::<trading::Order>(a).map(|o| (*key, o)))
        .collect();
    let now = chain.clock().await?.unix_timestamp;
    let mut open_orders = Vec::with_capacity(orders.len());
    for (key, o) in orders {
        // Its price on its book's ladder (fixed when the book opened).
        let b = book(chain, o.interval).await?;
        let price = match &b {
            Some(b) => b.ladder().price(o.tick).0,
            None => market.ladder().price(o.tick).0,
        };
        open_orders.push(OrderView {
            interval: o.interval,
            starts_at: market.interval_start(o.interval).unwrap_or(0),
            side: side_name(o.side),
            quantity_wh: o.quantity_wh,
            limit_price: price,
            escrow: o.escrow,
            address: key.to_string(),
            state: match &b {
                Some(b) if b.is_open(now) => "open",
                Some(b) if b.is_cleared() => "cleared, awaiting settlement",
                _ => "gate closed, awaiting clearing",
            }
            .to_string(),
        });
    }
    open_orders.sort_by_key(|o| (o.interval, o.side.clone()));
    // History is a node's to serve (not every RPC keeps it): without it, no fills.
    let fills = fills(chain, &meter.owner, lfdi, FILLS_LOOKBACK)
        .await
        .unwrap_or_default();
    Ok(BuildingStatus {
        building: code.to_string(),
        lfdi: sdk::identity::lfdi_hex(lfdi),
        owner: meter.owner.to_string(),
        meter_status: format!("{:?}", meter.status),
        import_wh: state.map_or(0, |s| s.import_wh),
        export_wh: state.map_or(0, |s| s.export_wh),
        last_reading: state.map_or(0, |s| s.last_timestamp),
        verified_import_wh: state.map_or(0, |s| s.verified_import_wh),
        verified_export_wh: state.map_or(0, |s| s.verified_export_wh),
        grid_minted_wh: ledger.map_or(0, |l| l.grid_minted_wh),
        redeemed_wh: ledger.map_or(0, |l| l.redeemed_wh),
        grid_wh,
        quote,
        claimable_grid_wh: balance.map_or(0, |b| b.base),
        claimable_quote: balance.map_or(0, |b| b.quote),
        recs,
        recs_issued: ledger.map_or(0, |l| l.recs_issued),
        open_orders,
        fills,
    })
}

/// How long before an interval's gate an order is sent to it at the latest when no
/// interval is named: the next interval's gate closer than this, the order goes to the
/// one after.
pub const GATE_MARGIN_S: i64 = 15;

/// What `order place` is asked.
#[derive(Clone, Copy, Debug)]
pub struct OrderRequest {
    pub side: Side,
    pub quantity_wh: u64,
    /// Quote base units per kWh, on the market's ladder.
    pub limit_price: u64,
    /// The interval; the next whose gate is open when `None`.
    pub interval: Option<u64>,
}

/// What was placed.
#[derive(Clone, Debug, Serialize)]
pub struct Placed {
    pub building: String,
    pub interval: u64,
    pub starts_at: i64,
    pub side: String,
    pub quantity_wh: u64,
    pub limit_price: u64,
    pub signature: String,
}

impl Placed {
    fn new(
        code: &str,
        market: &trading::Market,
        interval: u64,
        request: &OrderRequest,
        confirmed: &sdk::chain::Confirmed,
    ) -> Placed {
        Placed {
            building: code.to_string(),
            interval,
            starts_at: market.interval_start(interval).unwrap_or(0),
            side: side_name(request.side as u8),
            quantity_wh: request.quantity_wh,
            limit_price: request.limit_price,
            signature: confirmed.signature.to_string(),
        }
    }
}

/// A price on a ladder from `min` to `max` in steps of `step`, or an error naming the
/// nearest ones.
fn check_price(p: u64, min: u64, max: u64, step: u64, whose: &str) -> Result<()> {
    if p >= min && p <= max && (p - min).is_multiple_of(step.max(1)) {
        return Ok(());
    }
    let nearest = if p <= min {
        format!("{min}")
    } else if p >= max {
        format!("{max}")
    } else {
        let below = min + (p - min) / step * step;
        format!("{below} or {}", (below + step).min(max))
    };
    bail!(
        "price {p} is not on {whose} ladder: prices run from {min} to {max} in steps of {step} (nearest: {nearest})"
    )
}

/// An interval's book, if it has been opened.
async fn book<C: Chain>(chain: &mut C, interval: u64) -> Result<Option<trading::IntervalBook>> {
    Ok(chain
        .account(market_ix::book_address(interval))
        .await?
        .and_then(|a| zero_copy::<trading::IntervalBook>(&a)))
}

/// Once an interval's book is open, its own gate and ladder (fixed when it opened) decide:
/// refused after the gate (`after_gate` says what that means), and a `price` off its ladder.
async fn check_book<C: Chain>(
    chain: &mut C,
    interval: u64,
    now: i64,
    price: Option<u64>,
    after_gate: &str,
) -> Result<()> {
    let Some(b) = book(chain, interval).await? else {
        return Ok(());
    };
    if !b.is_open(now) {
        bail!(
            "interval {interval}'s gate closed at {}: {after_gate}",
            b.gate
        );
    }
    if let Some(price) = price {
        let ladder = b.ladder();
        check_price(
            price,
            ladder.min_price,
            ladder.price(b.ticks.saturating_sub(1)).0,
            ladder.price_tick,
            &format!("interval {interval}'s book's"),
        )?;
    }
    Ok(())
}

/// The checks the program would make, made first so that the error names the fix.
fn check_order(
    market: &trading::Market,
    meter: &Meter,
    code: &str,
    owner: &Pubkey,
    request: &OrderRequest,
    now: i64,
) -> Result<u64> {
    if meter.owner != *owner {
        bail!(
            "building {code}'s orders are signed by its owner {}, not {owner}: give its keypair with --keypair",
            meter.owner
        );
    }
    if meter.status != MeterStatus::Active {
        bail!(
            "building {code}'s meter is {:?}: only an active meter's owner trades",
            meter.status
        );
    }
    if market.is_paused(now) {
        bail!(
            "the market is paused until {}: try again then",
            market.paused_until
        );
    }
    check_price(
        request.limit_price,
        market.min_price,
        market.params().max_price(),
        market.price_tick,
        "the market's",
    )?;
    if request.quantity_wh < market.min_quantity_wh {
        bail!(
            "{} Wh is under the market's minimum order of {} Wh",
            request.quantity_wh,
            market.min_quantity_wh
        );
    }
    // The next interval whose gate is still open; unless one is asked for, the next whose
    // gate is at least GATE_MARGIN_S away (an order sent a moment before its gate would
    // land after it).
    let mut next = market.interval_at(now);
    while market.gate(next).is_ok_and(|gate| gate <= now) {
        next += 1;
    }
    let mut default = next;
    while market
        .gate(default)
        .is_ok_and(|gate| gate <= now.saturating_add(GATE_MARGIN_S))
    {
        default += 1;
    }
    let last = market.interval_at(now) + u64::from(market.horizon);
    let interval = request.interval.unwrap_or(default);
    if interval < next {
        bail!(
            "interval {interval}'s gate has closed: the next open interval is {next} (starts at {})",
            market.interval_start(next).unwrap_or(0)
        );
    }
    if interval > last {
        bail!(
            "interval {interval} is beyond the market's horizon: orders go to intervals {next} to {last}"
        );
    }
    Ok(interval)
}

/// The checks of one order in its interval, as `place_order` makes them: the book's own
/// ladder and gate once it is open (a change of the market's parameters applies to books
/// opened after it), the meter's capacity over the interval, one side per building and
/// interval, and what the owner holds for the escrow.
#[allow(clippy::too_many_arguments)]
async fn check_placement<C: Chain>(
    chain: &mut C,
    market: &trading::Market,
    meter: &Meter,
    code: &str,
    lfdi: &Lfdi,
    interval: u64,
    request: &OrderRequest,
    now: i64,
) -> Result<()> {
    check_book(
        chain,
        interval,
        now,
        Some(request.limit_price),
        "choose a later interval",
    )
    .await?;
    let (power, what) = match request.side {
        Side::Buy => (meter.capacity.max_import_w, "import"),
        Side::Sell => (meter.capacity.max_export_w(), "export"),
    };
    let bound = power.saturating_mul(u64::from(market.interval_s)) / 3_600;
    if request.quantity_wh > bound {
        bail!(
            "{} Wh is more than building {code}'s meter can {what} in one interval ({bound} Wh at {power} W)",
            request.quantity_wh
        );
    }
    let other = match request.side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    };
    if chain
        .account(market_ix::order_address(interval, lfdi, other))
        .await?
        .is_some()
    {
        bail!(
            "building {code} has a {} order in interval {interval}: one side per interval (cancel it first)",
            side_name(other as u8)
        );
    }
    match request.side {
        Side::Sell => {
            let held =
                token_amount(chain, token_ix::ata(&meter.owner, &token_ix::grid_mint())).await?;
            if held < request.quantity_wh {
                bail!(
                    "the owner holds {held} Wh of GRID: sell at most that (or withdraw what the market holds for them first)"
                );
            }
        }
        Side::Buy => {
            let held = token_amount(chain, token_ix::ata(&meter.owner, &market.quote_mint)).await?;
            let needed = u128::from(request.quantity_wh) * u128::from(request.limit_price) / 1_000;
            if u128::from(held) < needed {
                bail!(
                    "the order locks about {needed} quote units (energy x price), the owner holds {held}: buy less or at a lower price"
                );
            }
        }
    }
    Ok(())
}

/// `gridtokenx order place`: checked first, then the book opened if it is not yet, then the
/// order, signed by the building's owner (`owner`).
pub async fn place<C: Chain>(
    chain: &mut C,
    owner: &Keypair,
    code: &str,
    lfdi: &Lfdi,
    request: OrderRequest,
) -> Result<Placed> {
    let meter = meter(chain, code, lfdi).await?;
    let market = market(chain).await?;
    let now = chain.clock().await?.unix_timestamp;
    let interval = check_order(&market, &meter, code, &owner.pubkey(), &request, now)?;
    check_placement(chain, &market, &meter, code, lfdi, interval, &request, now).await?;
    let mut instructions = Vec::new();
    if book(chain, interval).await?.is_none() {
        instructions.push(market_ix::open_interval(owner.pubkey(), interval));
    }
    instructions.push(market_ix::place_order(
        owner.pubkey(),
        &market.quote_mint,
        lfdi,
        interval,
        request.side,
        request.quantity_wh,
        request.limit_price,
    ));
    let confirmed = send_and_confirm(chain, &instructions, &[owner], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the market refused the order: {}", e.reason()))?;
    Ok(Placed::new(code, &market, interval, &request, &confirmed))
}

/// What a withdrawal moved to the owner's token accounts.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Withdrawn {
    pub grid_wh: u64,
    pub quote: u64,
}

/// `gridtokenx withdraw`: everything the signer can claim in the market (settled fills and
/// refunds) to their GRID and quote token accounts.
pub async fn withdraw<C: Chain>(chain: &mut C, owner: &Keypair) -> Result<Withdrawn> {
    let market = market(chain).await?;
    let balance = chain
        .account(market_ix::balance_address(&owner.pubkey()))
        .await?
        .and_then(|a| zero_copy::<trading::Balance>(&a));
    let (base, quote) = balance.map_or((0, 0), |b| (b.base, b.quote));
    if base == 0 && quote == 0 {
        bail!(
            "{} has nothing to claim in the market (settled fills are claimable until the keeper sweeps them to the owner's accounts)",
            owner.pubkey()
        );
    }
    // Both token accounts must exist (a missing one is also why a sweep skips a balance).
    let mut instructions = Vec::new();
    for mint in [token_ix::grid_mint(), market.quote_mint] {
        if chain
            .account(token_ix::ata(&owner.pubkey(), &mint))
            .await?
            .is_none()
        {
            instructions.push(token_ix::create_ata(
                &owner.pubkey(),
                &owner.pubkey(),
                &mint,
            ));
        }
    }
    instructions.push(market_ix::withdraw(
        owner.pubkey(),
        &market.quote_mint,
        base,
        quote,
    ));
    send_and_confirm(chain, &instructions, &[owner], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the market refused the withdrawal: {}", e.reason()))?;
    Ok(Withdrawn {
        grid_wh: base,
        quote,
    })
}

/// `gridtokenx order replace`: the building's order on the request's side in its interval
/// cancelled and placed again with the new quantity and price, in one transaction.
pub async fn replace<C: Chain>(
    chain: &mut C,
    owner: &Keypair,
    code: &str,
    lfdi: &Lfdi,
    request: OrderRequest,
) -> Result<Placed> {
    let Some(interval) = request.interval else {
        bail!("replace needs --interval: the interval of the order to replace");
    };
    let meter = meter(chain, code, lfdi).await?;
    let market = market(chain).await?;
    let now = chain.clock().await?.unix_timestamp;
    check_order(&market, &meter, code, &owner.pubkey(), &request, now)?;
    check_book(
        chain,
        interval,
        now,
        Some(request.limit_price),
        "its orders can no longer change",
    )
    .await?;
    let existing = chain
        .account(market_ix::order_address(interval, lfdi, request.side))
        .await?
        .and_then(|a| zero_copy::<trading::Order>(&a));
    if existing.is_none() {
        bail!(
            "building {code} has no {} order in interval {interval} to replace: place one",
            side_name(request.side as u8)
        );
    }
    let instructions = [
        market_ix::cancel_order(
            owner.pubkey(),
            &market.quote_mint,
            lfdi,
            interval,
            request.side,
        ),
        market_ix::place_order(
            owner.pubkey(),
            &market.quote_mint,
            lfdi,
            interval,
            request.side,
            request.quantity_wh,
            request.limit_price,
        ),
    ];
    let confirmed = send_and_confirm(chain, &instructions, &[owner], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the market refused the replacement: {}", e.reason()))?;
    Ok(Placed::new(code, &market, interval, &request, &confirmed))
}

/// `gridtokenx redeem BUILDING --energy-wh N`: GRID burnt against the building's verified
/// import not yet redeemed (signed by its owner, whose GRID it is).
pub async fn redeem<C: Chain>(
    chain: &mut C,
    owner: &Keypair,
    code: &str,
    lfdi: &Lfdi,
    amount_wh: u64,
) -> Result<()> {
    let s = status(chain, code, lfdi).await?;
    if s.owner != owner.pubkey().to_string() {
        bail!(
            "building {code}'s GRID is redeemed by its owner {}, not {}: give its keypair with --keypair",
            s.owner,
            owner.pubkey()
        );
    }
    if amount_wh == 0 {
        bail!("redeem at least 1 Wh");
    }
    let open = s.verified_import_wh.saturating_sub(s.redeemed_wh);
    if amount_wh > open {
        bail!(
            "building {code} has {open} Wh of verified import not yet redeemed ({} verified, {} redeemed): redeem at most that",
            s.verified_import_wh,
            s.redeemed_wh
        );
    }
    if amount_wh > s.grid_wh {
        bail!(
            "the owner holds {} Wh of GRID: buy or withdraw more first",
            s.grid_wh
        );
    }
    let ix = token_ix::redeem_for_consumption(lfdi, owner.pubkey(), amount_wh);
    send_and_confirm(chain, &[ix], &[owner], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the energy token refused the redemption: {}", e.reason()))?;
    Ok(())
}

/// A REC retirement made.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Retired {
    /// The retirement record's id (its address derives from the holder and the id).
    pub id: u64,
    pub address: String,
    pub recs: u64,
}

/// `gridtokenx rec retire --amount N --beneficiary ... --reason ...`: the signer's RECs
/// burnt, with a permanent record under the first unused id.
pub async fn retire<C: Chain>(
    chain: &mut C,
    holder: &Keypair,
    amount: u64,
    beneficiary: &str,
    reason: &str,
) -> Result<Retired> {
    use energy_token::{MAX_BENEFICIARY_LEN, MAX_REASON_LEN};
    if amount == 0 {
        bail!("retire at least 1 REC");
    }
    if !(1..=MAX_BENEFICIARY_LEN).contains(&beneficiary.len())
        || !(1..=MAX_REASON_LEN).contains(&reason.len())
    {
        bail!(
            "the beneficiary takes 1 to {MAX_BENEFICIARY_LEN} bytes and the reason 1 to {MAX_REASON_LEN}"
        );
    }
    let held = token_amount(
        chain,
        token_ix::ata(&holder.pubkey(), &token_ix::rec_mint()),
    )
    .await?;
    if amount > held {
        bail!("{} holds {held} RECs: retire at most that", holder.pubkey());
    }
    // The first id without a record.
    let mut id = 0u64;
    'search: loop {
        let ids: Vec<u64> = (id..id + 32).collect();
        let keys: Vec<Pubkey> = ids
            .iter()
            .map(|i| token_ix::retirement_address(&holder.pubkey(), *i))
            .collect();
        for (i, account) in ids.iter().zip(chain.accounts(&keys).await?) {
            if account.is_none() {
                id = *i;
                break 'search;
            }
        }
        id += 32;
    }
    let ix = token_ix::retire_rec(holder.pubkey(), id, amount, beneficiary, reason);
    send_and_confirm(chain, &[ix], &[holder], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the energy token refused the retirement: {}", e.reason()))?;
    Ok(Retired {
        id,
        address: token_ix::retirement_address(&holder.pubkey(), id).to_string(),
        recs: amount,
    })
}

/// `gridtokenx order cancel`: the building's order on `side` in `interval`, its escrow
/// returned.
pub async fn cancel<C: Chain>(
    chain: &mut C,
    owner: &Keypair,
    code: &str,
    lfdi: &Lfdi,
    interval: u64,
    side: Side,
) -> Result<String> {
    let market = market(chain).await?;
    let order = chain
        .account(market_ix::order_address(interval, lfdi, side))
        .await?
        .and_then(|a| zero_copy::<trading::Order>(&a));
    let Some(order) = order else {
        bail!(
            "building {code} has no {} order in interval {interval} (`gridtokenx status {code}` lists its orders)",
            side_name(side as u8)
        );
    };
    if order.owner != owner.pubkey() {
        bail!(
            "the order was placed by {}, not {}: give that keypair with --keypair",
            order.owner,
            owner.pubkey()
        );
    }
    let now = chain.clock().await?.unix_timestamp;
    check_book(
        chain,
        interval,
        now,
        None,
        "the order stands, and is settled after the auction clears",
    )
    .await?;
    let ix = market_ix::cancel_order(owner.pubkey(), &market.quote_mint, lfdi, interval, side);
    let confirmed = send_and_confirm(chain, &[ix], &[owner], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the market refused the cancellation: {}", e.reason()))?;
    Ok(confirmed.signature.to_string())
}

/// What `gridtokenx delegate authorize` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DelegateAuthorized {
    pub building: String,
    pub delegate: String,
    /// Lamports added to the delegation's rent float.
    pub rent_float: u64,
    /// Quote base units the delegate may lock in buys, and Wh of GRID in sells.
    pub quote_allowance: u64,
    pub grid_allowance: u64,
    pub signature: String,
}

/// `gridtokenx delegate authorize`: the building's owner lets `delegate` (the campus's
/// keeper, carrying the building's IEEE 2030.5 flow reservations) place and cancel the
/// building's orders, adds `rent_float` lamports to the delegation (its orders' rent comes
/// out of it and goes back to the owner as they settle), and sets what those orders may
/// lock in all: SPL allowances for the market's vault authority on the owner's quote and
/// GRID accounts (`approve` replaces an earlier one; each lock spends it, refunds do not give
/// it back). One transaction; the delegate can never withdraw.
#[allow(clippy::too_many_arguments)]
pub async fn authorize_delegate<C: Chain>(
    chain: &mut C,
    owner: &Keypair,
    code: &str,
    lfdi: &Lfdi,
    delegate: Pubkey,
    rent_float: u64,
    quote_allowance: u64,
    grid_allowance: u64,
) -> Result<DelegateAuthorized> {
    let market = market(chain).await?;
    let meter = chain
        .account(registry_ix::meter_address(lfdi))
        .await?
        .and_then(|a| anchor_account::<Meter>(&a))
        .ok_or_else(|| anyhow::anyhow!("building {code} has no meter on chain"))?;
    if meter.owner != owner.pubkey() {
        bail!(
            "building {code} is owned by {}, not {}: give the owner's keypair with --keypair",
            meter.owner,
            owner.pubkey()
        );
    }
    let mut ixs = vec![market_ix::authorize_delegate(
        owner.pubkey(),
        lfdi,
        delegate,
        rent_float,
    )];
    for (mint, amount) in [
        (market.quote_mint, quote_allowance),
        (token_ix::grid_mint(), grid_allowance),
    ] {
        let account = token_ix::ata(&owner.pubkey(), &mint);
        if chain.account(account).await?.is_some() {
            ixs.push(market_ix::approve_order_allowance(
                owner.pubkey(),
                &mint,
                amount,
            ));
        } else if amount > 0 {
            bail!("the owner has no token account of {mint} to allow {amount} from");
        }
    }
    let confirmed = send_and_confirm(chain, &ixs, &[owner], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the market refused the delegation: {}", e.reason()))?;
    Ok(DelegateAuthorized {
        building: code.to_string(),
        delegate: delegate.to_string(),
        rent_float,
        quote_allowance,
        grid_allowance,
        signature: confirmed.signature.to_string(),
    })
}

/// `gridtokenx delegate revoke`: ends the building's delegation, and the allowances its
/// orders drew on (SPL `revoke` on the owner's quote and GRID accounts).
pub async fn revoke_delegate<C: Chain>(
    chain: &mut C,
    owner: &Keypair,
    code: &str,
    lfdi: &Lfdi,
) -> Result<String> {
    let market = market(chain).await?;
    let Some(delegation) = chain
        .account(market_ix::order_delegate_address(lfdi))
        .await?
        .and_then(|a| zero_copy::<trading::OrderDelegate>(&a))
    else {
        bail!("building {code} has no order delegate");
    };
    // Its rent and float go back to whoever gave it.
    let mut ixs = vec![market_ix::revoke_delegate(
        owner.pubkey(),
        lfdi,
        delegation.owner,
    )];
    for mint in [market.quote_mint, token_ix::grid_mint()] {
        let account = token_ix::ata(&owner.pubkey(), &mint);
        if chain.account(account).await?.is_some() {
            ixs.push(market_ix::revoke_order_allowance(owner.pubkey(), &mint));
        }
    }
    let confirmed = send_and_confirm(chain, &ixs, &[owner], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("the market refused the revocation: {}", e.reason()))?;
    Ok(confirmed.signature.to_string())
}
