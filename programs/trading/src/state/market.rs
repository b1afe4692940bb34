use anchor_lang::prelude::*;

use crate::errors::TradingError;
use crate::state::quantities::Price;

/// Most steps of the price ladder: bounds a book's size (8 KiB of aggregates, so that
/// `open_interval` can create it by CPI, which allows at most 10 KiB of new data) and the
/// work of clearing it, whatever the number of orders.
pub const MAX_TICKS: usize = 512;
/// Most intervals ahead of the open one that take orders (a building's balance remembers
/// its sides for this many intervals and the next).
pub const MAX_HORIZON: u8 = 7;
/// Largest order, Wh (1 TWh): sums over a ladder stay far inside u64.
pub const MAX_QUANTITY_WH: u64 = 1_000_000_000_000;

/// What governance may set.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketParams {
    /// Length of an interval, seconds (the seeds' 15-minute settlement: 900).
    pub interval_s: u32,
    /// The ladder: prices `min_price + i * price_tick` for `i < ticks`, quote base units per
    /// kWh.
    pub price_tick: u64,
    pub min_price: u64,
    pub ticks: u16,
    /// Fee on the seller's proceeds, basis points (at most 1,000: 10 %).
    pub fee_bps: u16,
    /// Smallest order, Wh.
    pub min_quantity_wh: u64,
    /// An interval's gate closes this many seconds before it starts: from then on nothing
    /// can change its orders, and it can be cleared. At most `(horizon - 1) x interval_s`,
    /// so that some interval within the horizon always takes orders.
    pub gate_lead_s: u32,
    /// Orders may be placed for the intervals up to this many after the open one.
    pub horizon: u8,
}

impl MarketParams {
    pub const MAX_FEE_BPS: u16 = 1_000;

    pub fn validate(&self) -> Result<()> {
        let top = u64::from(self.ticks.saturating_sub(1))
            .checked_mul(self.price_tick)
            .and_then(|span| span.checked_add(self.min_price));
        require!(
            (60..=86_400).contains(&self.interval_s)
                && self.price_tick > 0
                && self.min_price > 0
                && (1..=MAX_TICKS as u16).contains(&self.ticks)
                && top.is_some_and(|t| t <= u64::MAX / 1_000)
                && self.fee_bps <= Self::MAX_FEE_BPS
                && self.min_quantity_wh > 0
                && (1..=MAX_HORIZON).contains(&self.horizon)
                // Some interval within the horizon must always have an open gate.
                && u64::from(self.gate_lead_s)
                    <= u64::from(self.horizon - 1) * u64::from(self.interval_s),
            TradingError::InvalidParams
        );
        Ok(())
    }

    /// The highest price of the ladder.
    pub fn max_price(&self) -> u64 {
        self.min_price + u64::from(self.ticks - 1) * self.price_tick
    }
}

/// The ladder an interval's book was opened with (kept by the book: new parameters apply to
/// books opened afterwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ladder {
    pub min_price: u64,
    pub price_tick: u64,
    pub ticks: u16,
}

impl Ladder {
    /// The step of `price` on the ladder.
    pub fn tick_of(&self, price: u64) -> Result<u16> {
        require!(price >= self.min_price, TradingError::PriceOutOfBounds);
        let offset = price - self.min_price;
        require!(offset % self.price_tick == 0, TradingError::PriceOffTick);
        let tick = offset / self.price_tick;
        require!(tick < u64::from(self.ticks), TradingError::PriceOutOfBounds);
        Ok(tick as u16)
    }

    /// The price at step `tick`.
    pub fn price(&self, tick: u16) -> Price {
        Price(self.min_price + u64::from(tick) * self.price_tick)
    }
}

/// The campus market, at `[MARKET]`. Orders, balances and the intervals' ladders are
/// accounts of their own: nothing here fills with participants.
#[account(zero_copy)]
#[derive(Debug)]
pub struct Market {
    pub authority: Pubkey,
    pub pending_authority: Pubkey,
    /// The registry campus whose meters trade.
    pub campus: Pubkey,
    /// GRID (the energy token's mint) and the campus's quote token.
    pub base_mint: Pubkey,
    pub quote_mint: Pubkey,
    pub base_vault: Pubkey,
    pub quote_vault: Pubkey,
    /// Interval k covers [start_time + k * interval_s, start_time + (k + 1) * interval_s).
    pub start_time: i64,
    pub price_tick: u64,
    pub min_price: u64,
    pub min_quantity_wh: u64,
    /// Quote fees (and rounding in the market's favour) accrued and not withdrawn.
    pub fees: u64,
    /// GRID (Wh) the rounding of marginal orders left in the base vault.
    pub dust_wh: u64,
    /// The price of the latest interval that traded (0 before any): the last tie-break.
    pub last_price: u64,
    pub last_price_interval: u64,
    /// The next interval to clear: intervals clear in order.
    pub next_clear: u64,
    /// Paused until this Unix time (0: not paused; `program_common::pause`).
    pub paused_until: i64,
    pub interval_s: u32,
    pub gate_lead_s: u32,
    pub ticks: u16,
    pub fee_bps: u16,
    pub horizon: u8,
    pub bump: u8,
    pub vault_authority_bump: u8,
    pub _reserved: [u8; 1],
}

impl Market {
    pub const SPACE: usize = 8 + std::mem::size_of::<Market>();

    pub fn params(&self) -> MarketParams {
        MarketParams {
            interval_s: self.interval_s,
            price_tick: self.price_tick,
            min_price: self.min_price,
            ticks: self.ticks,
            fee_bps: self.fee_bps,
            min_quantity_wh: self.min_quantity_wh,
            gate_lead_s: self.gate_lead_s,
            horizon: self.horizon,
        }
    }

    pub fn set_params(&mut self, p: &MarketParams) {
        self.interval_s = p.interval_s;
        self.price_tick = p.price_tick;
        self.min_price = p.min_price;
        self.ticks = p.ticks;
        self.fee_bps = p.fee_bps;
        self.min_quantity_wh = p.min_quantity_wh;
        self.gate_lead_s = p.gate_lead_s;
        self.horizon = p.horizon;
    }

    pub fn ladder(&self) -> Ladder {
        Ladder {
            min_price: self.min_price,
            price_tick: self.price_tick,
            ticks: self.ticks,
        }
    }

    pub fn is_paused(&self, now: i64) -> bool {
        program_common::pause::is_paused(self.paused_until, now)
    }

    /// The interval open at `now` (intervals before the start count as 0).
    pub fn interval_at(&self, now: i64) -> u64 {
        let elapsed = now.saturating_sub(self.start_time).max(0) as u64;
        elapsed / u64::from(self.interval_s)
    }

    /// When interval `k` starts.
    pub fn interval_start(&self, k: u64) -> Result<i64> {
        let offset = k
            .checked_mul(u64::from(self.interval_s))
            .and_then(|s| i64::try_from(s).ok())
            .ok_or(TradingError::Overflow)?;
        self.start_time
            .checked_add(offset)
            .ok_or_else(|| error!(TradingError::Overflow))
    }

    /// When interval `k`'s gate closes: its orders are final from then on.
    pub fn gate(&self, k: u64) -> Result<i64> {
        self.interval_start(k)?
            .checked_sub(i64::from(self.gate_lead_s))
            .ok_or_else(|| error!(TradingError::Overflow))
    }

    /// Whether interval `k`'s book may be opened at `now`: its gate (under the current
    /// parameters) is open, and it is at most `horizon` intervals after the open one.
    pub fn check_open(&self, k: u64, now: i64) -> Result<()> {
        require!(now < self.gate(k)?, TradingError::GateClosed);
        self.check_horizon(k, now)
    }

    /// Whether interval `k` is at most `horizon` intervals after the one open at `now`.
    pub fn check_horizon(&self, k: u64, now: i64) -> Result<()> {
        let furthest = self
            .interval_at(now)
            .checked_add(u64::from(self.horizon))
            .ok_or(TradingError::Overflow)?;
        require!(k <= furthest, TradingError::BeyondHorizon);
        Ok(())
    }
}
