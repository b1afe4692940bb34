use anchor_lang::prelude::*;
use anchor_lang::solana_program::bpf_loader_upgradeable;
use program_common::pda::{create_pda_account, write_account};

use crate::errors::GovernanceError;
use crate::events::CouncilConfigured;
use crate::state::{seeds, Council, CouncilConfig};

/// Creates the council. Only the governance program's upgrade authority (whoever deployed
/// it) may, so nobody can install their own council by calling first. Run by the migration
/// right after deployment.
#[derive(Accounts)]
pub struct InitializeCouncil<'info> {
    /// CHECK: the council PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::COUNCIL], bump)]
    pub council: UncheckedAccount<'info>,
    #[account(mut)]
    pub payer: Signer<'info>,
    /// The governance program's `ProgramData` (upgradeable loader): names its upgrade
    /// authority, which must be `payer`.
    #[account(
        seeds = [crate::ID.as_ref()],
        bump,
        seeds::program = bpf_loader_upgradeable::ID,
        constraint = program_data.upgrade_authority_address == Some(payer.key())
            @ GovernanceError::NotUpgradeAuthority,
    )]
    pub program_data: Account<'info, ProgramData>,
    pub system_program: Program<'info, System>,
}

pub fn handler(ctx: Context<InitializeCouncil>, config: CouncilConfig) -> Result<()> {
    config.validate()?;
    let a = &ctx.accounts;
    let bump = ctx.bumps.council;
    create_pda_account(
        &a.payer.to_account_info(),
        &a.council.to_account_info(),
        &a.system_program.to_account_info(),
        Council::SPACE,
        &crate::ID,
        &[seeds::COUNCIL, &[bump]],
    )?;
    let council = Council {
        members: config.members.clone(),
        guardians: config.guardians.clone(),
        threshold: config.threshold,
        timelock_seconds: config.timelock_seconds,
        proposal_count: 0,
        members_changed_at: Clock::get()?.unix_timestamp,
        bump,
        max_guardian_pause_s: config.max_guardian_pause_s,
        guardian_cooldown_s: config.guardian_cooldown_s,
        guardian_pauses: Vec::new(),
    };
    write_account(&a.council, &council)?;
    program_common::emit_event!(CouncilConfigured {
        members: config.members,
        guardians: config.guardians,
        threshold: config.threshold,
        timelock_seconds: config.timelock_seconds,
        max_guardian_pause_s: config.max_guardian_pause_s,
        guardian_cooldown_s: config.guardian_cooldown_s,
    });
    Ok(())
}
