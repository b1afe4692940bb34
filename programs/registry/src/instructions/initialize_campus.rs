use anchor_lang::prelude::*;

use crate::events::CampusInitialized;
use crate::pda::{create_pda_account, write_account};
use crate::state::{seeds, Campus};

/// Creates the campus singleton with a bootstrap authority (the payer). Run by the migration
/// right after deployment; the authority is then handed to governance.
#[derive(Accounts)]
pub struct InitializeCampus<'info> {
    /// CHECK: the campus PDA, created by the handler (see `pda`).
    #[account(mut, seeds = [seeds::CAMPUS], bump)]
    pub campus: UncheckedAccount<'info>,
    #[account(mut)]
    pub authority: Signer<'info>,
    pub system_program: Program<'info, System>,
}

pub fn handler(ctx: Context<InitializeCampus>, name: String) -> Result<()> {
    Campus::validate_name(&name)?;
    let a = &ctx.accounts;
    let bump = ctx.bumps.campus;
    create_pda_account(
        &a.authority.to_account_info(),
        &a.campus.to_account_info(),
        &a.system_program.to_account_info(),
        Campus::SPACE,
        &crate::ID,
        &[seeds::CAMPUS, &[bump]],
    )?;
    let campus = Campus {
        authority: a.authority.key(),
        meter_count: 0,
        paused: false,
        bump,
        name,
    };
    write_account(&a.campus, &campus)?;
    emit!(CampusInitialized {
        campus: a.campus.key(),
        authority: campus.authority,
        name: campus.name,
    });
    Ok(())
}
