use anchor_lang::prelude::*;
use program_common::pda::{create_pda_account, init_zero_copy};
use registry::Campus;

use crate::attestation::batch_domain;
use crate::errors::OracleError;
use crate::events::OracleInitialized;
use crate::state::{seeds, OracleConfig, ReadingLimits};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct InitializeOracleArgs {
    pub attestors: Vec<Pubkey>,
    pub quorum: u8,
    pub limits: ReadingLimits,
    /// The cluster's genesis hash: batches signed for another cluster are refused.
    pub cluster: [u8; 32],
}

/// Creates the oracle's configuration for the registry's campus. Only the campus authority
/// may, and it becomes the oracle's bootstrap authority (later handed to governance).
#[derive(Accounts)]
pub struct InitializeOracle<'info> {
    /// CHECK: the config PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::CONFIG], bump)]
    pub config: UncheckedAccount<'info>,
    #[account(
        seeds = [registry::seeds::CAMPUS],
        bump = campus.bump,
        seeds::program = registry::ID,
        constraint = campus.authority == authority.key() @ OracleError::NotCampusAuthority,
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
    // In place: the configuration (with its rings of recent batches) is larger than the
    // 4 KiB SBF stack.
    let (authority, campus) = (a.authority.key(), a.campus.key());
    let domain = batch_domain(&crate::ID.to_bytes(), &campus.to_bytes(), &args.cluster);
    init_zero_copy::<OracleConfig>(&a.config, |config| {
        config.authority = authority;
        config.campus = campus;
        config.domain = domain;
        config.set_attestors(&args.attestors, args.quorum);
        config.set_limits(&args.limits);
        config.bump = bump;
    })?;
    program_common::emit_event!(OracleInitialized {
        campus,
        authority,
        domain,
    });
    Ok(())
}
