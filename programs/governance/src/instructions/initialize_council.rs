use anchor_lang::prelude::*;

use crate::events::CouncilConfigured;
use crate::state::{seeds, Council, CouncilConfig};

/// Creates the council. Run by the migration right after deployment.
#[derive(Accounts)]
pub struct InitializeCouncil<'info> {
    #[account(init, payer = payer, space = Council::SPACE, seeds = [seeds::COUNCIL], bump)]
    pub council: Account<'info, Council>,
    /// CHECK: only its address is derived and stored; it never holds data.
    #[account(seeds = [seeds::AUTHORITY], bump)]
    pub governance_authority: UncheckedAccount<'info>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

pub fn handler(ctx: Context<InitializeCouncil>, config: CouncilConfig) -> Result<()> {
    config.validate()?;
    let council = &mut ctx.accounts.council;
    council.bump = ctx.bumps.council;
    council.authority_bump = ctx.bumps.governance_authority;
    council.proposal_count = 0;
    council.apply(config.clone());
    emit!(CouncilConfigured {
        members: config.members,
        guardians: config.guardians,
        threshold: config.threshold,
        timelock_seconds: config.timelock_seconds,
    });
    Ok(())
}
