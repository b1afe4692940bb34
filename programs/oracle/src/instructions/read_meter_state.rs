use anchor_lang::prelude::*;

use crate::state::MeterState;

/// What the oracle verified for a meter, as `read_meter_state` returns it.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedEnergy {
    pub lfdi: [u8; 20],
    pub verified_import_wh: u64,
    pub verified_export_wh: u64,
    /// Of the verified export, what the rules count as renewable (what RECs certify).
    pub verified_renewable_wh: u64,
    /// Upper bound on what the meter's battery could hold after its last accepted reading.
    pub stored_bound_wh: u64,
    /// Upper bound on the grid energy among it.
    pub stored_grid_wh: u64,
    pub last_timestamp: i64,
    pub reading_count: u64,
}

/// A view: returns a meter's verified energy (return data), for clients that simulate it and
/// programs that call it by CPI instead of decoding the account.
#[derive(Accounts)]
pub struct ReadMeterState<'info> {
    pub meter_state: AccountLoader<'info, MeterState>,
}

pub fn handler(ctx: Context<ReadMeterState>) -> Result<VerifiedEnergy> {
    let s = ctx.accounts.meter_state.load()?;
    Ok(VerifiedEnergy {
        lfdi: s.lfdi,
        verified_import_wh: s.verified_import_wh,
        verified_export_wh: s.verified_export_wh,
        verified_renewable_wh: s.verified_renewable_wh,
        stored_bound_wh: s.stored_bound_wh,
        stored_grid_wh: s.stored_grid_wh,
        last_timestamp: s.last_timestamp,
        reading_count: s.reading_count,
    })
}
