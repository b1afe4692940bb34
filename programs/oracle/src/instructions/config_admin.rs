use anchor_lang::prelude::*;

use crate::errors::OracleError;
use crate::events::{
    AttestorsUpdated, BatchesSkipped, OracleAuthorityChanged, OracleAuthorityProposed,
    OracleParamsUpdated, OraclePauseChanged,
};
use crate::state::{seeds, OracleConfig, ReadingLimits, MAX_SKIP_BATCHES};

/// The authority changes the configuration. The account list `[config, authority]` is the
/// one every GridTokenX `set_paused` shares, so a governance guardian can pause the oracle.
#[derive(Accounts)]
pub struct ConfigAdmin<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump, has_one = authority @ OracleError::Unauthorized)]
    pub config: AccountLoader<'info, OracleConfig>,
    pub authority: Signer<'info>,
}

pub fn set_attestors_handler(
    ctx: Context<ConfigAdmin>,
    attestors: Vec<Pubkey>,
    quorum: u8,
) -> Result<()> {
    OracleConfig::validate_attestors(&attestors, quorum)?;
    ctx.accounts
        .config
        .load_mut()?
        .set_attestors(&attestors, quorum);
    program_common::emit_event!(AttestorsUpdated { attestors, quorum });
    Ok(())
}

pub fn set_limits_handler(ctx: Context<ConfigAdmin>, limits: ReadingLimits) -> Result<()> {
    limits.validate()?;
    ctx.accounts.config.load_mut()?.set_limits(&limits);
    program_common::emit_event!(OracleParamsUpdated { params: limits });
    Ok(())
}

/// Pauses until `paused_until` (0 lifts the pause; see `program_common::pause`).
pub fn set_paused_handler(ctx: Context<ConfigAdmin>, paused_until: i64) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let mut config = ctx.accounts.config.load_mut()?;
    config.paused_until = program_common::pause::next(config.paused_until, paused_until, now)
        .ok_or(OracleError::InvalidPause)?;
    program_common::emit_event!(OraclePauseChanged {
        paused_until: config.paused_until
    });
    Ok(())
}

/// Moves the window's start past batches that can never apply (e.g. an attestor that lost
/// its store and signed other contents under numbers already taken), through `through`:
/// every batch up to it is then settled (those applied early stay applied, the others can
/// never be), and the window runs from `through + 1` (further over any batches applied
/// beyond it). Only forward, and by at most [`MAX_SKIP_BATCHES`], so that no skip (a typo,
/// say) can make every future batch a replay.
pub fn skip_batches_handler(ctx: Context<ConfigAdmin>, through: u64) -> Result<()> {
    let mut config = ctx.accounts.config.load_mut()?;
    let furthest = config
        .last_sequence
        .checked_add(MAX_SKIP_BATCHES)
        .ok_or(OracleError::Overflow)?;
    require!(
        through > config.last_sequence && through <= furthest,
        OracleError::InvalidSkip
    );
    let from = config
        .last_sequence
        .checked_add(1)
        .ok_or(OracleError::Overflow)?;
    config.skip_through(through);
    program_common::emit_event!(BatchesSkipped { from, through });
    Ok(())
}

/// First step of a hand-over (normally to the governance authority): nothing changes until
/// the successor accepts.
pub fn propose_authority_handler(ctx: Context<ConfigAdmin>, new_authority: Pubkey) -> Result<()> {
    let mut config = ctx.accounts.config.load_mut()?;
    require!(
        new_authority != Pubkey::default() && new_authority != config.authority,
        OracleError::InvalidAuthority
    );
    config.pending_authority = new_authority;
    program_common::emit_event!(OracleAuthorityProposed {
        authority: config.authority,
        pending: new_authority,
    });
    Ok(())
}

/// Second step of a hand-over: the proposed successor signs.
#[derive(Accounts)]
pub struct AcceptAuthority<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump)]
    pub config: AccountLoader<'info, OracleConfig>,
    pub new_authority: Signer<'info>,
}

impl AcceptAuthority<'_> {
    pub fn validate(&self) -> Result<()> {
        let pending = self.config.load()?.pending_authority;
        require!(
            pending != Pubkey::default() && pending == self.new_authority.key(),
            OracleError::NotPendingAuthority
        );
        Ok(())
    }
}

pub fn accept_authority_handler(ctx: Context<AcceptAuthority>) -> Result<()> {
    let mut config = ctx.accounts.config.load_mut()?;
    let from = config.authority;
    config.authority = config.pending_authority;
    config.pending_authority = Pubkey::default();
    program_common::emit_event!(OracleAuthorityChanged {
        from,
        to: config.authority,
    });
    Ok(())
}
