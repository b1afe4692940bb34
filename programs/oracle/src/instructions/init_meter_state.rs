use anchor_lang::prelude::*;
use program_common::pda::{create_pda_account, write_zero_copy};
use registry::Meter;

use crate::errors::OracleError;
use crate::events::MeterStateInitialized;
use crate::state::{seeds, MeterState};

/// Creates the oracle's state for a registered meter. Anyone may pay for it (the keeper does
/// when it first sees a meter); it holds nothing until attested readings arrive.
#[derive(Accounts)]
pub struct InitMeterState<'info> {
    #[account(
        seeds = [registry::seeds::METER, meter.lfdi.as_ref()],
        bump = meter.bump,
        seeds::program = registry::ID,
    )]
    pub meter: Account<'info, Meter>,
    /// CHECK: the meter state PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::METER_STATE, meter.lfdi.as_ref()], bump)]
    pub meter_state: UncheckedAccount<'info>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

impl InitMeterState<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.meter_state.data_is_empty(),
            OracleError::MeterStateExists
        );
        Ok(())
    }
}

pub fn handler(ctx: Context<InitMeterState>) -> Result<()> {
    let a = &ctx.accounts;
    let bump = ctx.bumps.meter_state;
    let lfdi = a.meter.lfdi;
    create_pda_account(
        &a.payer.to_account_info(),
        &a.meter_state.to_account_info(),
        &a.system_program.to_account_info(),
        MeterState::SPACE,
        &crate::ID,
        &[seeds::METER_STATE, &lfdi, &[bump]],
    )?;
    write_zero_copy(&a.meter_state, &MeterState::new(lfdi, bump))?;
    program_common::emit_event!(MeterStateInitialized { lfdi });
    Ok(())
}
