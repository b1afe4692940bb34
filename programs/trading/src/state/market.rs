use anchor_lang::prelude::*;

use crate::errors::TradingError;

/// Seats a market holds: one per building (meter owner) that trades.
pub const MAX_SEATS: usize = 128;
/// Orders one interval's book can hold.
pub const MAX_ORDERS: usize = 128;
/// Largest order, Wh (1 TWh): sums over a book stay far inside u64.
pub const MAX_QUANTITY_WH: u64 = 1_000_000_000_000;
/// Prices are quote base units per kWh; quantities are Wh.
pub const WH_PER_KWH: u128 = 1_000;

/// What governance may set.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketParams {
    /// Length of an interval, seconds (the seeds' 15-minute settlement: 900).
    pub interval_s: u32,
    /// Limit prices are multiples of this, quote base units per kWh.
    pub price_tick: u64,
    pub min_price: u64,
    pub max_price: u64,
    /// Fee on the seller's proceeds, basis points (at most 1,000: 10 %).
    pub fee_bps: u16,
    /// Orders per interval (64 to 128).
    pub max_orders: u16,
    /// Smallest order, Wh.
    pub min_quantity_wh: u64,
}

impl MarketParams {
    pub const MAX_FEE_BPS: u16 = 1_000;
    pub const MIN_ORDERS: u16 = 64;

    pub fn validate(&self) -> Result<()> {
        let on_tick = |p: u64| self.price_tick > 0 && p % self.price_tick == 0;
        require!(
            (60..=86_400).contains(&self.interval_s)
                && self.price_tick > 0
                && self.min_price > 0
                && on_tick(self.min_price)
                && on_tick(self.max_price)
                && self.min_price <= self.max_price
                && self.fee_bps <= Self::MAX_FEE_BPS
                && (Self::MIN_ORDERS..=MAX_ORDERS as u16).contains(&self.max_orders)
                && self.min_quantity_wh > 0,
            TradingError::InvalidParams
        );
        Ok(())
    }

    /// Whether `price` is on the tick and within the bounds.
    pub fn check_price(&self, price: u64) -> Result<()> {
        require!(
            (self.min_price..=self.max_price).contains(&price),
            TradingError::PriceOutOfBounds
        );
        require!(price % self.price_tick == 0, TradingError::PriceOffTick);
        Ok(())
    }
}

/// A building's place in the market: what clearing credited it and it has not withdrawn.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seat {
    pub owner: Pubkey,
    /// Claimable GRID, Wh.
    pub base: u64,
    /// Claimable quote tokens, base units.
    pub quote: u64,
}

/// The campus market, at `[MARKET]`. Zero-copy, with every seat inside (as Phoenix and
/// Manifest keep traders' balances in the market): clearing credits balances here, so it
/// needs no account per trader and no token account can make it fail.
#[account(zero_copy)]
#[derive(Debug)]
pub struct Market {
    pub authority: Pubkey,
    pub pending_authority: Pubkey,
    /// The registry campus whose meter owners trade.
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
    pub max_price: u64,
    pub min_quantity_wh: u64,
    /// Quote fees accrued in the quote vault and not withdrawn, base units.
    pub fees: u64,
    /// The price of the latest interval that traded (0 before any): the last tie-break.
    pub last_price: u64,
    pub last_price_interval: u64,
    /// Paused until this Unix time (0: not paused; `program_common::pause`).
    pub paused_until: i64,
    pub interval_s: u32,
    pub fee_bps: u16,
    pub max_orders: u16,
    pub seat_count: u16,
    pub bump: u8,
    pub vault_authority_bump: u8,
    pub _reserved: [u8; 4],
    pub seats: [Seat; MAX_SEATS],
}

impl Market {
    pub const SPACE: usize = 8 + std::mem::size_of::<Market>();

    pub fn params(&self) -> MarketParams {
        MarketParams {
            interval_s: self.interval_s,
            price_tick: self.price_tick,
            min_price: self.min_price,
            max_price: self.max_price,
            fee_bps: self.fee_bps,
            max_orders: self.max_orders,
            min_quantity_wh: self.min_quantity_wh,
        }
    }

    pub fn set_params(&mut self, p: &MarketParams) {
        self.interval_s = p.interval_s;
        self.price_tick = p.price_tick;
        self.min_price = p.min_price;
        self.max_price = p.max_price;
        self.fee_bps = p.fee_bps;
        self.max_orders = p.max_orders;
        self.min_quantity_wh = p.min_quantity_wh;
    }

    pub fn is_paused(&self, now: i64) -> bool {
        program_common::pause::is_paused(self.paused_until, now)
    }

    /// The interval open at `now` (intervals before the start count as 0).
    pub fn interval_at(&self, now: i64) -> u64 {
        let elapsed = now.saturating_sub(self.start_time).max(0) as u64;
        elapsed / u64::from(self.interval_s)
    }

    /// When interval `k` ends.
    pub fn interval_end(&self, k: u64) -> Result<i64> {
        let span = k
            .checked_add(1)
            .and_then(|n| n.checked_mul(u64::from(self.interval_s)))
            .and_then(|s| i64::try_from(s).ok())
            .ok_or(TradingError::Overflow)?;
        self.start_time
            .checked_add(span)
            .ok_or_else(|| error!(TradingError::Overflow))
    }

    pub fn seats(&self) -> &[Seat] {
        &self.seats[..usize::from(self.seat_count).min(MAX_SEATS)]
    }

    /// Whether the seat at `index` is `owner`'s.
    pub fn check_seat(&self, index: u16, owner: &Pubkey) -> Result<()> {
        require!(
            index < self.seat_count && self.seats[usize::from(index)].owner == *owner,
            TradingError::NotSeatOwner
        );
        Ok(())
    }

    /// The seat at `index`, which must be `owner`'s.
    pub fn seat_of(&mut self, index: u16, owner: &Pubkey) -> Result<&mut Seat> {
        require!(index < self.seat_count, TradingError::NotSeatOwner);
        let seat = &mut self.seats[usize::from(index)];
        require_keys_eq!(seat.owner, *owner, TradingError::NotSeatOwner);
        Ok(seat)
    }

    /// Gives `owner` the next seat; returns its index.
    pub fn add_seat(&mut self, owner: Pubkey) -> Result<u16> {
        require!(
            !self.seats().iter().any(|s| s.owner == owner),
            TradingError::SeatTaken
        );
        let index = self.seat_count;
        require!(usize::from(index) < MAX_SEATS, TradingError::SeatsFull);
        self.seats[usize::from(index)] = Seat {
            owner,
            base: 0,
            quote: 0,
        };
        self.seat_count += 1;
        Ok(index)
    }

    /// Credits a seat (clearing); the index comes from an order placed by its owner.
    pub fn credit(&mut self, index: u16, base: u64, quote: u64) -> Result<()> {
        let seat = &mut self.seats[usize::from(index)];
        seat.base = seat.base.checked_add(base).ok_or(TradingError::Overflow)?;
        seat.quote = seat
            .quote
            .checked_add(quote)
            .ok_or(TradingError::Overflow)?;
        Ok(())
    }
}

/// Quote a buy of `quantity_wh` at `price` locks: rounded up, so escrow always covers it.
pub fn buy_escrow(quantity_wh: u64, price: u64) -> Result<u64> {
    let value = u128::from(quantity_wh) * u128::from(price);
    u64::try_from(value.div_ceil(WH_PER_KWH)).map_err(|_| error!(TradingError::Overflow))
}
