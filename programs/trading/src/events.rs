use anchor_lang::prelude::*;

use crate::state::{MarketParams, Side};

#[event]
pub struct MarketInitialized {
    pub market: Pubkey,
    pub authority: Pubkey,
    pub base_mint: Pubkey,
    pub quote_mint: Pubkey,
    pub start_time: i64,
    pub params: MarketParams,
}

#[event]
pub struct MarketParamsUpdated {
    pub params: MarketParams,
}

#[event]
pub struct MarketPauseChanged {
    /// Paused until this Unix time; 0 when not paused (`program_common::pause`).
    pub paused_until: i64,
}

#[event]
pub struct MarketAuthorityProposed {
    pub authority: Pubkey,
    pub pending: Pubkey,
}

#[event]
pub struct MarketAuthorityChanged {
    pub from: Pubkey,
    pub to: Pubkey,
}

#[event]
pub struct SeatClaimed {
    pub owner: Pubkey,
    pub seat: u16,
}

#[event]
pub struct OrderPlaced {
    pub interval: u64,
    pub order: u16,
    pub owner: Pubkey,
    pub side: Side,
    pub quantity_wh: u64,
    pub limit_price: u64,
    /// Quote base units (buy) or Wh of GRID (sell) locked in the vault.
    pub escrow: u64,
}

#[event]
pub struct OrderCancelled {
    pub interval: u64,
    pub order: u16,
    pub owner: Pubkey,
    /// Returned to the owner's token account.
    pub refunded: u64,
}

#[event]
pub struct IntervalCleared {
    pub interval: u64,
    /// Quote base units per kWh; 0 when nothing traded.
    pub price: u64,
    pub volume_wh: u64,
    pub buy_orders: u16,
    pub sell_orders: u16,
    pub filled_orders: u16,
    pub buy_volume_offered: u64,
    pub sell_volume_offered: u64,
    /// Quote fees (and rounding in the market's favour) this interval added.
    pub fees: u64,
}

#[event]
pub struct Withdrawn {
    pub owner: Pubkey,
    pub seat: u16,
    pub base: u64,
    pub quote: u64,
}

/// A seat left out of a sweep (its owner has no account of the mint); its balance stays
/// claimable.
#[event]
pub struct SweepSkipped {
    pub seat: u16,
    pub owner: Pubkey,
}

#[event]
pub struct FeesWithdrawn {
    pub amount: u64,
    pub to: Pubkey,
}
