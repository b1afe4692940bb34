use anchor_lang::prelude::*;

use registry::pda::{create_pda_account, write_account};

use crate::events::CouncilConfigured;
use crate::state::{seeds, Council, CouncilConfig};

/// Creates the council. Run by the migration right after deployment.
#[derive(Accounts)]
pub struct InitializeCouncil<'info> {
    /// CHECK: the council PDA, created by the handler (see `registry::pda`).
    #[account(mut, seeds = [seeds::COUNCIL], bump)]
    pub council: UncheckedAccount<'info>,
    /// CHECK: only its address is derived and stored; it never holds data.
    #[account(seeds = [seeds::AUTHORITY], bump)]
    pub governance_authority: UncheckedAccount<'info>,
    #[account(mut)]
    pub payer: Signer<'info>,
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
        bump,
        authority_bump: ctx.bumps.governance_authority,
    };
    write_account(&a.council, &council)?;
    emit!(CouncilConfigured {
        members: config.members,
        guardians: config.guardians,
        threshold: config.threshold,
        timelock_seconds: config.timelock_seconds,
    });
    Ok(())
}
