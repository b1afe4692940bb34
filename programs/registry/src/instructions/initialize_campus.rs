use anchor_lang::prelude::*;
use anchor_lang::solana_program::bpf_loader_upgradeable;
use program_common::pda::{create_pda_account, write_account};

use crate::errors::RegistryError;
use crate::events::CampusInitialized;
use crate::state::{seeds, Campus};

/// Creates the campus singleton with a bootstrap authority, which must be the registry's
/// upgrade authority (whoever deployed it), so nobody can take the campus by calling first.
/// Run by the migration right after deployment; the authority is then handed to governance.
#[derive(Accounts)]
pub struct InitializeCampus<'info> {
    /// CHECK: the campus PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::CAMPUS], bump)]
    pub campus: UncheckedAccount<'info>,
    #[account(mut)]
    pub authority: Signer<'info>,
    /// The registry's `ProgramData` (upgradeable loader): names its upgrade authority.
    #[account(
        seeds = [crate::ID.as_ref()],
        bump,
        seeds::program = bpf_loader_upgradeable::ID,
        constraint = program_data.upgrade_authority_address == Some(authority.key())
            @ RegistryError::NotUpgradeAuthority,
    )]
    pub program_data: Account<'info, ProgramData>,
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
        pending_authority: Pubkey::default(),
        meter_count: 0,
        paused_until: 0,
        bump,
        name,
    };
    write_account(&a.campus, &campus)?;
    program_common::emit_event!(CampusInitialized {
        campus: a.campus.key(),
        authority: campus.authority,
        name: campus.name,
    });
    Ok(())
}
