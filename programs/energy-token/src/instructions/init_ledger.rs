use anchor_lang::prelude::*;
use program_common::pda::{create_pda_account, write_zero_copy};
use registry::Meter;

use crate::errors::TokenError;
use crate::events::LedgerInitialized;
use crate::state::{seeds, MeterLedger};

/// Creates a registered meter's ledger. Anyone may pay for it (the keeper does when it first
/// sees a meter); pre-funding its address cannot block it.
#[derive(Accounts)]
pub struct InitLedger<'info> {
    #[account(
        seeds = [registry::seeds::METER, meter.lfdi.as_ref()],
        bump = meter.bump,
        seeds::program = registry::ID,
    )]
    pub meter: Account<'info, Meter>,
    /// CHECK: the ledger PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::LEDGER, meter.lfdi.as_ref()], bump)]
    pub ledger: UncheckedAccount<'info>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

impl InitLedger<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(self.ledger.data_is_empty(), TokenError::LedgerExists);
        Ok(())
    }
}

pub fn handler(ctx: Context<InitLedger>) -> Result<()> {
    let a = &ctx.accounts;
    let lfdi = a.meter.lfdi;
    let bump = ctx.bumps.ledger;
    create_pda_account(
        &a.payer.to_account_info(),
        &a.ledger.to_account_info(),
        &a.system_program.to_account_info(),
        MeterLedger::SPACE,
        &crate::ID,
        &[seeds::LEDGER, &lfdi, &[bump]],
    )?;
    write_zero_copy(&a.ledger, &MeterLedger::new(lfdi, bump))?;
    program_common::emit_event!(LedgerInitialized { lfdi });
    Ok(())
}
