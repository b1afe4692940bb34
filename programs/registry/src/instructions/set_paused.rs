use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::RegistryPauseChanged;
use crate::state::{seeds, Campus};

/// Pauses the registry until `paused_until` (0 lifts the pause; see
/// `program_common::pause`). Its account list, `[config (writable), authority
/// (signer)]`, is the same in every GridTokenX program so governance can pause any of them.
#[derive(Accounts)]
pub struct SetPaused<'info> {
    #[account(mut, seeds = [seeds::CAMPUS], bump = campus.bump, has_one = authority @ RegistryError::Unauthorized)]
    pub campus: Account<'info, Campus>,
    pub authority: Signer<'info>,
}

pub fn handler(ctx: Context<SetPaused>, paused_until: i64) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let campus = &mut ctx.accounts.campus;
    campus.paused_until = program_common::pause::next(campus.paused_until, paused_until, now)
        .ok_or(RegistryError::InvalidPause)?;
    program_common::emit_event!(RegistryPauseChanged {
        paused_until: campus.paused_until
    });
    Ok(())
}
