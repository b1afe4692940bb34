use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::MeterOwnershipTransferred;
use crate::state::{seeds, Campus, Meter};

/// Moves a meter to a new owner wallet; both the current and the new owner sign.
#[derive(Accounts)]
pub struct TransferMeterOwnership<'info> {
    #[account(seeds = [seeds::CAMPUS], bump = campus.bump)]
    pub campus: Account<'info, Campus>,
    #[account(
        mut,
        seeds = [seeds::METER, meter.lfdi.as_ref()],
        bump = meter.bump,
        has_one = owner @ RegistryError::NotMeterOwner,
    )]
    pub meter: Account<'info, Meter>,
    pub owner: Signer<'info>,
    pub new_owner: Signer<'info>,
}

impl TransferMeterOwnership<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(
            !self.campus.is_paused(Clock::get()?.unix_timestamp),
            RegistryError::Paused
        );
        self.meter.check_mutable()?;
        require_keys_neq!(
            self.owner.key(),
            self.new_owner.key(),
            RegistryError::SameOwner
        );
        Ok(())
    }
}

pub fn handler(ctx: Context<TransferMeterOwnership>) -> Result<()> {
    let meter = &mut ctx.accounts.meter;
    let from = meter.owner;
    meter.owner = ctx.accounts.new_owner.key();
    program_common::emit_event!(MeterOwnershipTransferred {
        meter: meter.key(),
        lfdi: meter.lfdi,
        from,
        to: meter.owner,
    });
    Ok(())
}
