use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::RegistryPauseChanged;
use crate::state::{seeds, Campus};

/// Pauses or unpauses the registry. Its account list, `[config (writable), authority
/// (signer)]`, is the same in every GridTokenX program so governance can pause any of them.
#[derive(Accounts)]
pub struct SetPaused<'info> {
    #[account(mut, seeds = [seeds::CAMPUS], bump = campus.bump, has_one = authority @ RegistryError::Unauthorized)]
    pub campus: Account<'info, Campus>,
    pub authority: Signer<'info>,
}

pub fn handler(ctx: Context<SetPaused>, paused: bool) -> Result<()> {
    ctx.accounts.campus.paused = paused;
    program_common::emit_event!(RegistryPauseChanged { paused });
    Ok(())
}
