use anchor_lang::prelude::*;

use crate::errors::TradingError;
use crate::state::quantities::{Escrow, QuoteUnits, Wh};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Buys GRID with quote tokens.
    Buy,
    /// Sells GRID for quote tokens.
    Sell,
}

pub const SIDE_BUY: u8 = 0;
pub const SIDE_SELL: u8 = 1;

impl Side {
    pub fn code(self) -> u8 {
        match self {
            Side::Buy => SIDE_BUY,
            Side::Sell => SIDE_SELL,
        }
    }

    pub fn is_buy(self) -> bool {
        self == Side::Buy
    }

    pub fn other(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// One building's order on one side of one interval, at `[ORDER, interval, lfdi, side]`: at
/// most one buy and one sell per building per interval (placing again replaces). Its rent,
/// paid by the trader, goes back when it is cancelled (to the trader) or settled (to the
/// trader's balance account, withdrawn with it).
#[account(zero_copy)]
#[derive(Debug, PartialEq, Eq)]
pub struct Order {
    /// The meter's owner when the order was placed: its escrow, fills and refunds are
    /// theirs, whoever owns the meter later.
    pub owner: Pubkey,
    pub lfdi: [u8; 20],
    pub side: u8,
    pub bump: u8,
    /// The order's step on its interval's ladder.
    pub tick: u16,
    pub interval: u64,
    pub quantity_wh: u64,
    /// Locked in a vault: quote base units for a buy, Wh of GRID for a sell (`escrow()`).
    pub escrow: u64,
}

impl Order {
    pub const SPACE: usize = 8 + std::mem::size_of::<Order>();
    /// Byte offset of `interval` in the account (after the discriminator): clients find an
    /// interval's orders by it (`getProgramAccounts` with a memcmp filter).
    pub const INTERVAL_OFFSET: usize = 8 + std::mem::offset_of!(Order, interval);

    pub fn side(&self) -> Result<Side> {
        match self.side {
            SIDE_BUY => Ok(Side::Buy),
            SIDE_SELL => Ok(Side::Sell),
            _ => err!(TradingError::UnknownOrder),
        }
    }

    pub fn quantity(&self) -> Wh {
        Wh(self.quantity_wh)
    }

    pub fn escrow(&self) -> Result<Escrow> {
        Ok(match self.side()? {
            Side::Buy => Escrow::Quote(QuoteUnits(self.escrow)),
            Side::Sell => Escrow::Base(Wh(self.escrow)),
        })
    }
}

/// The sides a trader takes in one interval (for self-trade prevention).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IntervalSides {
    pub interval: u64,
    pub buys: u16,
    pub sells: u16,
    pub _reserved: [u8; 4],
}

/// Slots of `Balance::sides`: the open interval and `MAX_HORIZON` after it.
pub const SIDE_SLOTS: usize = 8;

/// A trader's claimable balances, at `[BALANCE, owner]`: what settlement credited and the
/// owner has not withdrawn (settlement needs no token account of theirs), and, per interval
/// they trade in, how many buy and sell orders they have open. Created by the trader's first
/// order.
#[account(zero_copy)]
#[derive(Debug)]
pub struct Balance {
    pub owner: Pubkey,
    /// Claimable GRID, Wh.
    pub base: u64,
    /// Claimable quote tokens, base units.
    pub quote: u64,
    /// Indexed by `interval % SIDE_SLOTS`.
    pub sides: [IntervalSides; SIDE_SLOTS],
    pub bump: u8,
    pub _reserved: [u8; 7],
}

impl Balance {
    pub const SPACE: usize = 8 + std::mem::size_of::<Balance>();

    /// The owner's sides in `interval` (a slot last used for an interval whose gate has long
    /// closed is taken over).
    pub fn sides_mut(&mut self, interval: u64) -> &mut IntervalSides {
        let slot = &mut self.sides[(interval % SIDE_SLOTS as u64) as usize];
        if slot.interval != interval {
            *slot = IntervalSides {
                interval,
                ..IntervalSides::default()
            };
        }
        slot
    }

    pub fn credit(&mut self, base: Wh, quote: QuoteUnits) -> Result<()> {
        self.base = self
            .base
            .checked_add(base.0)
            .ok_or(TradingError::Overflow)?;
        self.quote = self
            .quote
            .checked_add(quote.0)
            .ok_or(TradingError::Overflow)?;
        Ok(())
    }
}
