use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::errors::TradingError;
use crate::events::Withdrawn;
use crate::instructions::vault::pay_out;
use crate::state::{seeds, Market};

/// An owner takes (part of) their seat's claimable GRID and quote tokens to their own token
/// accounts, whatever intervals they come from. Allowed while the market is paused.
#[derive(Accounts)]
pub struct Withdraw<'info> {
    #[account(
        mut,
        seeds = [seeds::MARKET],
        bump = market.load()?.bump,
        has_one = base_vault @ TradingError::WrongMint,
        has_one = quote_vault @ TradingError::WrongMint,
    )]
    pub market: AccountLoader<'info, Market>,
    pub owner: Signer<'info>,
    #[account(mut, token::mint = base_vault.mint)]
    pub owner_base: Account<'info, TokenAccount>,
    #[account(mut, token::mint = quote_vault.mint)]
    pub owner_quote: Account<'info, TokenAccount>,
    #[account(mut)]
    pub base_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub quote_vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs the transfers.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
}

pub fn handler(ctx: Context<Withdraw>, seat: u16, base: u64, quote: u64) -> Result<()> {
    let a = &ctx.accounts;
    let owner = a.owner.key();
    let bump = {
        let mut market = a.market.load_mut()?;
        let bump = market.vault_authority_bump;
        let s = market.seat_of(seat, &owner)?;
        s.base = s
            .base
            .checked_sub(base)
            .ok_or(TradingError::InsufficientBalance)?;
        s.quote = s
            .quote
            .checked_sub(quote)
            .ok_or(TradingError::InsufficientBalance)?;
        bump
    };
    let authority = a.vault_authority.to_account_info();
    pay_out(
        &a.token_program,
        &a.base_vault.to_account_info(),
        &a.owner_base.to_account_info(),
        &authority,
        bump,
        base,
    )?;
    pay_out(
        &a.token_program,
        &a.quote_vault.to_account_info(),
        &a.owner_quote.to_account_info(),
        &authority,
        bump,
        quote,
    )?;
    program_common::emit_event!(Withdrawn {
        owner,
        seat,
        base,
        quote
    });
    Ok(())
}
