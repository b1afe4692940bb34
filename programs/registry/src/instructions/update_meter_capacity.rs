use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::MeterCapacityUpdated;
use crate::state::{seeds, Campus, Meter, MeterCapacity};

/// Changes what a meter can physically do, e.g. after new panels or a bigger battery
/// (campus authority only).
#[derive(Accounts)]
pub struct UpdateMeterCapacity<'info> {
    #[account(seeds = [seeds::CAMPUS], bump = campus.bump, has_one = authority @ RegistryError::Unauthorized)]
    pub campus: Account<'info, Campus>,
    pub authority: Signer<'info>,
    #[account(mut, seeds = [seeds::METER, meter.lfdi.as_ref()], bump = meter.bump)]
    pub meter: Account<'info, Meter>,
}

impl UpdateMeterCapacity<'_> {
    pub fn validate(&self, capacity: &MeterCapacity) -> Result<()> {
        self.meter.check_mutable()?;
        capacity.validate()
    }
}

pub fn handler(ctx: Context<UpdateMeterCapacity>, capacity: MeterCapacity) -> Result<()> {
    let meter = &mut ctx.accounts.meter;
    meter.capacity = capacity;
    // The oracle's bounds start again from here (see `Meter::active_since`).
    meter.capacity_changed_at = Clock::get()?.unix_timestamp;
    program_common::emit_event!(MeterCapacityUpdated {
        meter: meter.key(),
        lfdi: meter.lfdi,
        capacity,
    });
    Ok(())
}
