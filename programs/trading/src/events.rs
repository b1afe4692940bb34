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
pub struct IntervalOpened {
    pub interval: u64,
    pub payer: Pubkey,
}

#[event]
pub struct OrderPlaced {
    pub interval: u64,
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    /// Who signed: the owner, or the building's order delegate.
    pub by: Pubkey,
    pub side: Side,
    pub quantity_wh: u64,
    pub limit_price: u64,
    /// Quote base units (buy) or Wh of GRID (sell) locked in the vault.
    pub escrow: u64,
    /// The building's earlier order on this side, replaced (its escrow returned).
    pub replaced: bool,
}

#[event]
pub struct OrderCancelled {
    pub interval: u64,
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    /// Who signed: the owner, or the building's order delegate.
    pub by: Pubkey,
    pub side: Side,
    /// Returned to the owner's token account.
    pub refunded: u64,
}

#[event]
pub struct IntervalCleared {
    pub interval: u64,
    /// Quote base units per kWh; 0 when nothing traded.
    pub price: u64,
    pub volume_wh: u64,
    pub buy_orders: u32,
    pub sell_orders: u32,
    pub buy_volume_offered: u64,
    pub sell_volume_offered: u64,
}

#[event]
pub struct OrderSettled {
    pub interval: u64,
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    pub side: Side,
    /// GRID received (buy) or delivered (sell), Wh.
    pub filled_wh: u64,
    /// Quote paid (buy) or received after the fee (sell).
    pub quote: u64,
    /// Escrow returned to the balance: quote (buy) or GRID (sell).
    pub refund: u64,
}

#[event]
pub struct IntervalClosed {
    pub interval: u64,
    /// Rounding the interval's marginal orders left to the market: GRID, Wh ...
    pub dust_wh: u64,
    /// ... the sellers' fees ...
    pub fees: u64,
    /// ... and quote rounding.
    pub quote_surplus: u64,
}

/// The meter's current owner evicted an order its previous owner placed before the gate:
/// its escrow and rent went to the previous owner's balance.
#[event]
pub struct OrderEvicted {
    pub interval: u64,
    pub lfdi: [u8; 20],
    /// Who placed the order (whose balance was credited).
    pub owner: Pubkey,
    /// The meter's owner now.
    pub by: Pubkey,
    pub side: Side,
    /// Escrow credited: quote (buy) or GRID (sell).
    pub credited: u64,
}

#[event]
pub struct Withdrawn {
    pub owner: Pubkey,
    pub base: u64,
    pub quote: u64,
    pub lamports: u64,
}

/// A balance left out of a sweep (its owner has no account of a mint); it stays claimable.
#[event]
pub struct SweepSkipped {
    pub owner: Pubkey,
}

#[event]
pub struct FeesWithdrawn {
    pub quote: u64,
    pub base: u64,
}

#[event]
pub struct DelegateAuthorized {
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    pub delegate: Pubkey,
    /// The delegate it replaced, if the building had one.
    pub replaced: Option<Pubkey>,
    /// The delegation's rent float now, lamports.
    pub rent_float: u64,
}

#[event]
pub struct DelegateRevoked {
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    pub delegate: Pubkey,
    /// The delegation's owner, or the meter's owner now.
    pub by: Pubkey,
}
