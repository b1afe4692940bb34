use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::MeterStatusChanged;
use crate::state::{seeds, Campus, Meter, MeterStatus};

/// Activates, suspends or retires a meter (campus authority only), recording when.
#[derive(Accounts)]
pub struct SetMeterStatus<'info> {
    #[account(seeds = [seeds::CAMPUS], bump = campus.bump, has_one = authority @ RegistryError::Unauthorized)]
    pub campus: Account<'info, Campus>,
    pub authority: Signer<'info>,
    #[account(mut, seeds = [seeds::METER, meter.lfdi.as_ref()], bump = meter.bump)]
    pub meter: Account<'info, Meter>,
}

impl SetMeterStatus<'_> {
    pub fn validate(&self, status: MeterStatus) -> Result<()> {
        self.meter.check_status_change(status)
    }
}

pub fn handler(ctx: Context<SetMeterStatus>, status: MeterStatus) -> Result<()> {
    let meter = &mut ctx.accounts.meter;
    let from = meter.status;
    let at = Clock::get()?.unix_timestamp;
    meter.status = status;
    // The oracle verifies nothing measured before this: a reactivated meter starts a new
    // baseline, and no allowance accrues while it was suspended.
    meter.status_changed_at = at;
    program_common::emit_event!(MeterStatusChanged {
        meter: meter.key(),
        lfdi: meter.lfdi,
        from,
        to: status,
        at,
    });
    Ok(())
}
