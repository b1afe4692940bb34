use anchor_lang::prelude::*;

use crate::errors::OracleError;
use crate::events::{
    AttestorsUpdated, OracleAuthorityChanged, OracleParamsUpdated, OraclePauseChanged,
};
use crate::state::{seeds, OracleConfig, ReadingLimits};

/// The authority changes the configuration. The account list `[config, authority]` is the
/// one every GridTokenX `set_paused` shares, so a governance guardian can pause the oracle.
#[derive(Accounts)]
pub struct ConfigAdmin<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.bump, has_one = authority @ OracleError::Unauthorized)]
    pub config: Account<'info, OracleConfig>,
    pub authority: Signer<'info>,
}

pub fn set_attestors_handler(
    ctx: Context<ConfigAdmin>,
    attestors: Vec<Pubkey>,
    quorum: u8,
) -> Result<()> {
    OracleConfig::validate_attestors(&attestors, quorum)?;
    let config = &mut ctx.accounts.config;
    config.attestors = attestors.clone();
    config.quorum = quorum;
    emit!(AttestorsUpdated { attestors, quorum });
    Ok(())
}

pub fn set_limits_handler(ctx: Context<ConfigAdmin>, limits: ReadingLimits) -> Result<()> {
    limits.validate()?;
    ctx.accounts.config.limits = limits;
    emit!(OracleParamsUpdated { params: limits });
    Ok(())
}

pub fn set_authority_handler(ctx: Context<ConfigAdmin>, new_authority: Pubkey) -> Result<()> {
    let config = &mut ctx.accounts.config;
    require!(
        new_authority != Pubkey::default() && new_authority != config.authority,
        OracleError::InvalidAuthority
    );
    let from = config.authority;
    config.authority = new_authority;
    emit!(OracleAuthorityChanged {
        from,
        to: new_authority
    });
    Ok(())
}

pub fn set_paused_handler(ctx: Context<ConfigAdmin>, paused: bool) -> Result<()> {
    ctx.accounts.config.paused = paused;
    emit!(OraclePauseChanged { paused });
    Ok(())
}
