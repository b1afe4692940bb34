use anchor_lang::prelude::*;
use anchor_spl::token::{self, Burn, Mint, Token, TokenAccount};
use oracle::MeterState;
use registry::Meter;

use crate::errors::TokenError;
use crate::events::ConsumptionRedeemed;
use crate::state::{seeds, MeterLedger, TokenConfig};

/// A building burns `amount` GRID (Wh) against its own meter's verified import that no GRID
/// has covered yet: energy bought from other buildings then counts against real metered
/// consumption. Never more than the meter imported. Allowed while paused, and for meters of
/// any status: burning what one holds never creates anything.
#[derive(Accounts)]
pub struct RedeemForConsumption<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump, has_one = grid_mint)]
    pub config: AccountLoader<'info, TokenConfig>,
    #[account(mut)]
    pub grid_mint: Account<'info, Mint>,
    #[account(
        seeds = [registry::seeds::METER, meter.lfdi.as_ref()],
        bump = meter.bump,
        seeds::program = registry::ID,
        has_one = owner @ TokenError::NotMeterOwner,
    )]
    pub meter: Account<'info, Meter>,
    /// The meter's oracle state (owner and discriminator checked by the loader; the LFDI by
    /// the handler).
    pub meter_state: AccountLoader<'info, MeterState>,
    #[account(mut, seeds = [seeds::LEDGER, meter.lfdi.as_ref()], bump = ledger.load()?.bump)]
    pub ledger: AccountLoader<'info, MeterLedger>,
    #[account(mut, token::mint = grid_mint, token::authority = owner)]
    pub owner_grid: Account<'info, TokenAccount>,
    pub owner: Signer<'info>,
    pub token_program: Program<'info, Token>,
}

impl RedeemForConsumption<'_> {
    pub fn validate(&self, amount: u64) -> Result<()> {
        require!(amount > 0, TokenError::ZeroAmount);
        Ok(())
    }
}

pub fn handler(ctx: Context<RedeemForConsumption>, amount: u64) -> Result<()> {
    let a = &ctx.accounts;
    let state = MeterState::load_checked(&a.meter_state.to_account_info(), &a.meter.lfdi)
        .map_err(|_| TokenError::MeterMismatch)?;
    let total = {
        let mut ledger = a.ledger.load_mut()?;
        ledger.redeem(amount, state.verified_import_wh)?;
        ledger.redeemed_wh
    };
    token::burn(
        CpiContext::new(
            a.token_program.key(),
            Burn {
                mint: a.grid_mint.to_account_info(),
                from: a.owner_grid.to_account_info(),
                authority: a.owner.to_account_info(),
            },
        ),
        amount,
    )?;
    let mut config = a.config.load_mut()?;
    config.grid_redeemed_wh = config
        .grid_redeemed_wh
        .checked_add(amount)
        .ok_or(TokenError::Overflow)?;
    program_common::emit_event!(ConsumptionRedeemed {
        lfdi: a.meter.lfdi,
        owner: a.owner.key(),
        amount,
        total_redeemed_wh: total,
    });
    Ok(())
}
