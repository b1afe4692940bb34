use anchor_lang::prelude::*;

use crate::errors::TradingError;
use crate::state::auction::{Clearing, Marginal};
use crate::state::market::{Ladder, MAX_TICKS};
use crate::state::quantities::{Price, QuoteUnits, Wh};

pub const BOOK_OPEN: u8 = 0;
pub const BOOK_CLEARED: u8 = 1;

pub const MARGINAL_NONE: u8 = 0;
pub const MARGINAL_BUY: u8 = 1;
pub const MARGINAL_SELL: u8 = 2;

/// One interval's aggregate ladder, at `[BOOK, interval]`: for each price step, the Wh of
/// open buys and sells. Orders are accounts of their own; placing, replacing and cancelling
/// one adjusts one step here in O(1), and clearing scans the ladder (at most `MAX_TICKS`
/// steps) whatever the number of orders. Opened by anyone (`open_interval`), who gets the
/// rent back when every order of the cleared interval is settled (`close_book`).
#[account(zero_copy)]
#[derive(Debug)]
pub struct IntervalBook {
    pub market: Pubkey,
    pub payer: Pubkey,
    pub interval: u64,
    /// The ladder the interval trades on (the market's when the book was opened).
    pub min_price: u64,
    pub price_tick: u64,
    /// The clearing: price, volume, and the marginal side's rationing (that side's orders
    /// at the clearing step share `marginal_fill` of their `marginal_total` Wh).
    pub price: u64,
    pub volume_wh: u64,
    pub marginal_fill: u64,
    pub marginal_total: u64,
    /// Settlement so far: GRID delivered by sells and received by buys, quote paid by buys
    /// and paid out (after the fee) to sells. Their differences (the rounding, and the fees)
    /// are the market's once every order is settled.
    pub base_in: u64,
    pub base_out: u64,
    pub quote_in: u64,
    pub quote_out: u64,
    /// When the interval's gate closes (fixed when the book is opened: a later change of
    /// the market's gate lead never reopens it): orders and cancellations before, clearing
    /// from then on.
    pub gate: i64,
    /// Sellers' fees taken by settlement so far (the market's once the book closes).
    pub fees: u64,
    /// Orders not yet settled (or cancelled).
    pub open_orders: u32,
    pub buy_orders: u32,
    pub sell_orders: u32,
    pub ticks: u16,
    pub clear_tick: u16,
    /// The sellers' fee, basis points (the market's when the book was opened).
    pub fee_bps: u16,
    pub status: u8,
    pub marginal_side: u8,
    pub bump: u8,
    pub _reserved: [u8; 3],
    pub demand: [u64; MAX_TICKS],
    pub supply: [u64; MAX_TICKS],
}

impl IntervalBook {
    pub const SPACE: usize = 8 + std::mem::size_of::<IntervalBook>();

    pub fn is_cleared(&self) -> bool {
        self.status == BOOK_CLEARED
    }

    pub fn ladder(&self) -> Ladder {
        Ladder {
            min_price: self.min_price,
            price_tick: self.price_tick,
            ticks: self.ticks,
        }
    }

    fn step(&mut self, buy: bool, tick: u16) -> Result<&mut u64> {
        require!(tick < self.ticks, TradingError::PriceOutOfBounds);
        let i = usize::from(tick);
        Ok(if buy {
            &mut self.demand[i]
        } else {
            &mut self.supply[i]
        })
    }

    /// An order of `quantity` at step `tick` joins the book.
    pub fn add(&mut self, buy: bool, tick: u16, quantity: Wh) -> Result<()> {
        let step = self.step(buy, tick)?;
        *step = step.checked_add(quantity.0).ok_or(TradingError::Overflow)?;
        Ok(())
    }

    /// An order of `quantity` at step `tick` leaves the book (cancelled or replaced).
    pub fn remove(&mut self, buy: bool, tick: u16, quantity: Wh) -> Result<()> {
        let step = self.step(buy, tick)?;
        *step = step.checked_sub(quantity.0).ok_or(TradingError::Overflow)?;
        Ok(())
    }

    /// Takes an open order off the book (cancelled or evicted): its quantity off its
    /// ladder step, and one off the open and side counts.
    pub fn take_out(&mut self, buy: bool, tick: u16, quantity: Wh) -> Result<()> {
        self.remove(buy, tick, quantity)?;
        self.open_orders = self
            .open_orders
            .checked_sub(1)
            .ok_or(TradingError::Overflow)?;
        let count = if buy {
            &mut self.buy_orders
        } else {
            &mut self.sell_orders
        };
        *count = count.checked_sub(1).ok_or(TradingError::Overflow)?;
        Ok(())
    }

    /// The clearing this book recorded.
    pub fn clearing(&self) -> Option<Clearing> {
        if !self.is_cleared() || self.volume_wh == 0 {
            return None;
        }
        Some(Clearing {
            tick: self.clear_tick,
            price: Price(self.price),
            volume: Wh(self.volume_wh),
            marginal: match self.marginal_side {
                MARGINAL_BUY => Marginal::Buy {
                    fill: self.marginal_fill,
                    total: self.marginal_total,
                },
                MARGINAL_SELL => Marginal::Sell {
                    fill: self.marginal_fill,
                    total: self.marginal_total,
                },
                _ => Marginal::None,
            },
        })
    }

    pub fn record_clearing(&mut self, clearing: Option<&Clearing>) {
        self.status = BOOK_CLEARED;
        let Some(c) = clearing else {
            return;
        };
        self.clear_tick = c.tick;
        self.price = c.price.0;
        self.volume_wh = c.volume.0;
        (self.marginal_side, self.marginal_fill, self.marginal_total) = match c.marginal {
            Marginal::None => (MARGINAL_NONE, 0, 0),
            Marginal::Buy { fill, total } => (MARGINAL_BUY, fill, total),
            Marginal::Sell { fill, total } => (MARGINAL_SELL, fill, total),
        };
    }

    /// Whether orders and cancellations are still taken at `now`.
    pub fn is_open(&self, now: i64) -> bool {
        !self.is_cleared() && now < self.gate
    }

    /// Records one order's settlement (its flows add to the interval's).
    pub fn record_settlement(
        &mut self,
        base_in: Wh,
        base_out: Wh,
        quote_in: QuoteUnits,
        quote_out: QuoteUnits,
        fee: QuoteUnits,
    ) -> Result<()> {
        let add = |a: u64, b: u64| a.checked_add(b).ok_or(TradingError::Overflow);
        self.base_in = add(self.base_in, base_in.0)?;
        self.base_out = add(self.base_out, base_out.0)?;
        self.quote_in = add(self.quote_in, quote_in.0)?;
        self.quote_out = add(self.quote_out, quote_out.0)?;
        self.fees = add(self.fees, fee.0)?;
        self.open_orders = self
            .open_orders
            .checked_sub(1)
            .ok_or(TradingError::Overflow)?;
        Ok(())
    }
}
