use anchor_lang::prelude::*;

use crate::errors::TokenError;
use crate::events::{TokenAuthorityChanged, TokenAuthorityProposed, TokenPauseChanged};
use crate::state::{seeds, TokenConfig};

/// The authority changes the configuration. `[config, authority]` is the account list every
/// GridTokenX `set_paused` shares, so a governance guardian can pause minting.
#[derive(Accounts)]
pub struct TokenAdmin<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump, has_one = authority @ TokenError::Unauthorized)]
    pub config: AccountLoader<'info, TokenConfig>,
    pub authority: Signer<'info>,
}

/// Pausing stops `mint_generation` and `issue_rec`; redemption and REC retirement go on, so
/// holders can always use what they have.
/// Pauses until `paused_until` (0 lifts the pause; see `program_common::pause`).
pub fn set_paused_handler(ctx: Context<TokenAdmin>, paused_until: i64) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let mut config = ctx.accounts.config.load_mut()?;
    config.paused_until = program_common::pause::next(config.paused_until, paused_until, now)
        .ok_or(TokenError::InvalidPause)?;
    program_common::emit_event!(TokenPauseChanged {
        paused_until: config.paused_until
    });
    Ok(())
}

/// First step of a hand-over (normally to the governance authority).
pub fn propose_authority_handler(ctx: Context<TokenAdmin>, new_authority: Pubkey) -> Result<()> {
    let mut config = ctx.accounts.config.load_mut()?;
    require!(
        new_authority != Pubkey::default() && new_authority != config.authority,
        TokenError::InvalidAuthority
    );
    config.pending_authority = new_authority;
    program_common::emit_event!(TokenAuthorityProposed {
        authority: config.authority,
        pending: new_authority,
    });
    Ok(())
}

/// Second step of a hand-over: the proposed successor signs.
#[derive(Accounts)]
pub struct AcceptTokenAuthority<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump)]
    pub config: AccountLoader<'info, TokenConfig>,
    pub new_authority: Signer<'info>,
}

impl AcceptTokenAuthority<'_> {
    pub fn validate(&self) -> Result<()> {
        let pending = self.config.load()?.pending_authority;
        require!(
            pending != Pubkey::default() && pending == self.new_authority.key(),
            TokenError::NotPendingAuthority
        );
        Ok(())
    }
}

pub fn accept_authority_handler(ctx: Context<AcceptTokenAuthority>) -> Result<()> {
    let mut config = ctx.accounts.config.load_mut()?;
    let from = config.authority;
    config.authority = config.pending_authority;
    config.pending_authority = Pubkey::default();
    program_common::emit_event!(TokenAuthorityChanged {
        from,
        to: config.authority,
    });
    Ok(())
}
