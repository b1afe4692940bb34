use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::errors::TradingError;
use crate::events::{
    FeesWithdrawn, MarketAuthorityChanged, MarketAuthorityProposed, MarketParamsUpdated,
    MarketPauseChanged,
};
use crate::instructions::vault::pay_out;
use crate::state::{seeds, Market, MarketParams};

/// The authority changes the market. `[config, authority]` is the account list every
/// GridTokenX `set_paused` shares, so a governance guardian can pause the market.
#[derive(Accounts)]
pub struct MarketAdmin<'info> {
    #[account(mut, seeds = [seeds::MARKET], bump = market.load()?.bump, has_one = authority @ TradingError::Unauthorized)]
    pub market: AccountLoader<'info, Market>,
    pub authority: Signer<'info>,
}

/// New parameters apply to orders placed from now on; placed orders keep their prices.
pub fn set_params_handler(ctx: Context<MarketAdmin>, params: MarketParams) -> Result<()> {
    params.validate()?;
    ctx.accounts.market.load_mut()?.set_params(&params);
    program_common::emit_event!(MarketParamsUpdated { params });
    Ok(())
}

/// While paused, no order is placed and no interval cleared; owners can still cancel open
/// orders and withdraw what is theirs.
pub fn set_paused_handler(ctx: Context<MarketAdmin>, paused_until: i64) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let mut market = ctx.accounts.market.load_mut()?;
    market.paused_until = program_common::pause::next(market.paused_until, paused_until, now)
        .ok_or(TradingError::InvalidPause)?;
    program_common::emit_event!(MarketPauseChanged {
        paused_until: market.paused_until
    });
    Ok(())
}

pub fn propose_authority_handler(ctx: Context<MarketAdmin>, new_authority: Pubkey) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    require!(
        new_authority != Pubkey::default() && new_authority != market.authority,
        TradingError::InvalidAuthority
    );
    market.pending_authority = new_authority;
    program_common::emit_event!(MarketAuthorityProposed {
        authority: market.authority,
        pending: new_authority,
    });
    Ok(())
}

#[derive(Accounts)]
pub struct AcceptMarketAuthority<'info> {
    #[account(mut, seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    pub new_authority: Signer<'info>,
}

impl AcceptMarketAuthority<'_> {
    pub fn validate(&self) -> Result<()> {
        let pending = self.market.load()?.pending_authority;
        require!(
            pending != Pubkey::default() && pending == self.new_authority.key(),
            TradingError::NotPendingAuthority
        );
        Ok(())
    }
}

pub fn accept_authority_handler(ctx: Context<AcceptMarketAuthority>) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    let from = market.authority;
    market.authority = market.pending_authority;
    market.pending_authority = Pubkey::default();
    program_common::emit_event!(MarketAuthorityChanged {
        from,
        to: market.authority,
    });
    Ok(())
}

/// The authority takes accrued fees from the quote vault.
#[derive(Accounts)]
pub struct WithdrawFees<'info> {
    #[account(
        mut,
        seeds = [seeds::MARKET],
        bump = market.load()?.bump,
        has_one = authority @ TradingError::Unauthorized,
        has_one = quote_vault @ TradingError::WrongMint,
    )]
    pub market: AccountLoader<'info, Market>,
    pub authority: Signer<'info>,
    #[account(mut)]
    pub quote_vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs the transfer.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    #[account(mut, token::mint = quote_vault.mint)]
    pub destination: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn withdraw_fees_handler(ctx: Context<WithdrawFees>, amount: u64) -> Result<()> {
    let a = &ctx.accounts;
    let bump = {
        let mut market = a.market.load_mut()?;
        market.fees = market
            .fees
            .checked_sub(amount)
            .ok_or(TradingError::InsufficientFees)?;
        market.vault_authority_bump
    };
    pay_out(
        &a.token_program,
        &a.quote_vault.to_account_info(),
        &a.destination.to_account_info(),
        &a.vault_authority,
        bump,
        amount,
    )?;
    program_common::emit_event!(FeesWithdrawn {
        amount,
        to: a.destination.key(),
    });
    Ok(())
}
