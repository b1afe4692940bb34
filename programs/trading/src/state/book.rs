use anchor_lang::prelude::*;

use crate::errors::TradingError;
use crate::state::MAX_ORDERS;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Buys GRID with quote tokens.
    Buy,
    /// Sells GRID for quote tokens.
    Sell,
}

pub const SIDE_BUY: u8 = 0;
pub const SIDE_SELL: u8 = 1;

pub const ORDER_OPEN: u8 = 0;
pub const ORDER_CANCELLED: u8 = 1;
/// Cleared: `filled_wh` says how much traded; its escrow was settled into the seat.
pub const ORDER_SETTLED: u8 = 2;

pub const BOOK_OPEN: u8 = 0;
pub const BOOK_CLEARED: u8 = 1;

/// One order. Its index in the book is its time priority and the tie-break of rationing.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Order {
    pub seat: u16,
    pub side: u8,
    pub status: u8,
    pub _reserved: [u8; 4],
    pub quantity_wh: u64,
    /// Quote base units per kWh.
    pub limit_price: u64,
    pub filled_wh: u64,
    /// What the order locked: quote base units for a buy, Wh of GRID for a sell.
    pub escrow: u64,
}

impl Order {
    pub fn is_open(&self) -> bool {
        self.status == ORDER_OPEN
    }
}

/// The orders of one interval, at `[BOOK, interval]`: every order in one account, so that
/// clearing sees them all in one instruction.
#[account(zero_copy)]
#[derive(Debug)]
pub struct IntervalBook {
    pub market: Pubkey,
    /// Paid for the account; gets the rent back when the cleared book is closed.
    pub payer: Pubkey,
    pub interval: u64,
    pub clearing_price: u64,
    pub volume_wh: u64,
    pub order_count: u16,
    pub status: u8,
    pub bump: u8,
    pub _reserved: [u8; 4],
    pub orders: [Order; MAX_ORDERS],
}

impl IntervalBook {
    pub const SPACE: usize = 8 + std::mem::size_of::<IntervalBook>();

    pub fn is_cleared(&self) -> bool {
        self.status == BOOK_CLEARED
    }

    pub fn orders(&self) -> &[Order] {
        &self.orders[..usize::from(self.order_count).min(MAX_ORDERS)]
    }

    /// Appends an order (checked for room by the caller's limit); returns its index.
    pub fn push(&mut self, order: Order, max_orders: u16) -> Result<u16> {
        let index = self.order_count;
        require!(
            index < max_orders && usize::from(index) < MAX_ORDERS,
            TradingError::IntervalFull
        );
        self.orders[usize::from(index)] = order;
        self.order_count += 1;
        Ok(index)
    }
}
