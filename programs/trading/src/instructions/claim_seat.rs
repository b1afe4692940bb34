use anchor_lang::prelude::*;
use registry::Meter;

use crate::errors::TradingError;
use crate::events::SeatClaimed;
use crate::state::{seeds, Market};

/// A building manager takes a seat in the market: where clearing credits what they bought
/// and sold. Only owners of registered meters can, once each.
#[derive(Accounts)]
pub struct ClaimSeat<'info> {
    #[account(mut, seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    #[account(
        seeds = [registry::seeds::METER, meter.lfdi.as_ref()],
        bump = meter.bump,
        seeds::program = registry::ID,
        constraint = meter.owner == owner.key() @ TradingError::NotMeterOwner,
    )]
    pub meter: Account<'info, Meter>,
    pub owner: Signer<'info>,
}

pub fn handler(ctx: Context<ClaimSeat>) -> Result<()> {
    let owner = ctx.accounts.owner.key();
    let seat = ctx.accounts.market.load_mut()?.add_seat(owner)?;
    program_common::emit_event!(SeatClaimed { owner, seat });
    Ok(())
}
