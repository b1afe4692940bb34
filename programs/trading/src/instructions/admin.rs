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

/// New parameters apply from now on: to books opened afterwards (their ladder), to gates
/// and the horizon at once, to the fee of intervals cleared afterwards; open books keep
/// their ladder. The interval length is fixed at initialisation: it numbers the intervals
/// (`start_time + k * interval_s`), so changing it would renumber books and orders.
pub fn set_params_handler(ctx: Context<MarketAdmin>, params: MarketParams) -> Result<()> {
    params.validate()?;
    let mut market = ctx.accounts.market.load_mut()?;
    require!(
        params.interval_s == market.interval_s,
        TradingError::IntervalLengthFixed
    );
    market.set_params(&params);
    program_common::emit_event!(MarketParamsUpdated { params });
    Ok(())
}

/// While paused, no order is placed and no interval cleared; owners can still cancel open
/// orders, anyone can settle cleared ones, and owners withdraw what is theirs.
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

/// The authority takes accrued fees from the quote vault and rounding dust from the GRID
/// vault.
#[derive(Accounts)]
pub struct WithdrawFees<'info> {
    #[account(
        mut,
        seeds = [seeds::MARKET],
        bump = market.load()?.bump,
        has_one = authority @ TradingError::Unauthorized,
        has_one = quote_vault @ TradingError::WrongMint,
        has_one = base_vault @ TradingError::WrongMint,
    )]
    pub market: AccountLoader<'info, Market>,
    pub authority: Signer<'info>,
    #[account(mut)]
    pub quote_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub base_vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs the transfers.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    #[account(mut, token::mint = quote_vault.mint)]
    pub quote_destination: Account<'info, TokenAccount>,
    #[account(mut, token::mint = base_vault.mint)]
    pub base_destination: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn withdraw_fees_handler(ctx: Context<WithdrawFees>, quote: u64, base: u64) -> Result<()> {
    let a = &ctx.accounts;
    let bump = {
        let mut market = a.market.load_mut()?;
        market.fees = market
            .fees
            .checked_sub(quote)
            .ok_or(TradingError::InsufficientFees)?;
        market.dust_wh = market
            .dust_wh
            .checked_sub(base)
            .ok_or(TradingError::InsufficientFees)?;
        market.vault_authority_bump
    };
    pay_out(
        &a.token_program,
        &a.quote_vault.to_account_info(),
        &a.quote_destination.to_account_info(),
        &a.vault_authority,
        bump,
        quote,
    )?;
    pay_out(
        &a.token_program,
        &a.base_vault.to_account_info(),
        &a.base_destination.to_account_info(),
        &a.vault_authority,
        bump,
        base,
    )?;
    program_common::emit_event!(FeesWithdrawn { quote, base });
    Ok(())
}
