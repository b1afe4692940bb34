use anchor_lang::prelude::*;
use registry::pda::{create_pda_account, write_account};
use registry::Campus;

use crate::events::OracleInitialized;
use crate::state::{seeds, OracleConfig, ReadingLimits};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct InitializeOracleArgs {
    pub attestors: Vec<Pubkey>,
    pub quorum: u8,
    pub limits: ReadingLimits,
}

/// Creates the oracle's configuration for the registry's campus, with a bootstrap authority
/// (the payer) that is later handed to governance.
#[derive(Accounts)]
pub struct InitializeOracle<'info> {
    /// CHECK: the config PDA, created by the handler (see `registry::pda`).
    #[account(mut, seeds = [seeds::CONFIG], bump)]
    pub config: UncheckedAccount<'info>,
    #[account(
        seeds = [registry::seeds::CAMPUS],
        bump = campus.bump,
        seeds::program = registry::ID,
    )]
    pub campus: Account<'info, Campus>,
    #[account(mut)]
    pub authority: Signer<'info>,
    pub system_program: Program<'info, System>,
}

pub fn handler(ctx: Context<InitializeOracle>, args: InitializeOracleArgs) -> Result<()> {
    OracleConfig::validate_attestors(&args.attestors, args.quorum)?;
    args.limits.validate()?;
    let a = &ctx.accounts;
    let bump = ctx.bumps.config;
    create_pda_account(
        &a.authority.to_account_info(),
        &a.config.to_account_info(),
        &a.system_program.to_account_info(),
        OracleConfig::SPACE,
        &crate::ID,
        &[seeds::CONFIG, &[bump]],
    )?;
    let config = OracleConfig {
        authority: a.authority.key(),
        campus: a.campus.key(),
        attestors: args.attestors,
        quorum: args.quorum,
        limits: args.limits,
        paused: false,
        last_sequence: 0,
        bump,
    };
    write_account(&a.config, &config)?;
    emit!(OracleInitialized {
        campus: config.campus,
        authority: config.authority,
    });
    Ok(())
}
