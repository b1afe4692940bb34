use anchor_lang::prelude::*;

use crate::events::CampusInitialized;
use crate::state::{seeds, Campus};

/// Creates the campus singleton with a bootstrap authority (the payer). Run by the migration
/// right after deployment; the authority is then handed to governance.
#[derive(Accounts)]
pub struct InitializeCampus<'info> {
    #[account(init, payer = authority, space = Campus::SPACE, seeds = [seeds::CAMPUS], bump)]
    pub campus: Account<'info, Campus>,
    #[account(mut)]
    pub authority: Signer<'info>,
    pub system_program: Program<'info, System>,
}

pub fn handler(ctx: Context<InitializeCampus>, name: String) -> Result<()> {
    Campus::validate_name(&name)?;
    let campus = &mut ctx.accounts.campus;
    campus.authority = ctx.accounts.authority.key();
    campus.meter_count = 0;
    campus.paused = false;
    campus.bump = ctx.bumps.campus;
    campus.name = name.clone();
    emit!(CampusInitialized {
        campus: campus.key(),
        authority: campus.authority,
        name,
    });
    Ok(())
}
