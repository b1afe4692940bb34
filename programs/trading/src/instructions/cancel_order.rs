use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::errors::TradingError;
use crate::events::OrderCancelled;
use crate::instructions::vault::pay_out;
use crate::state::{seeds, IntervalBook, Market, ORDER_CANCELLED, SIDE_BUY};

/// The owner cancels an open order of an interval not yet cleared, and gets its escrow back
/// at once. Allowed while the market is paused.
#[derive(Accounts)]
#[instruction(interval: u64)]
pub struct CancelOrder<'info> {
    #[account(seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump = book.load()?.bump)]
    pub book: AccountLoader<'info, IntervalBook>,
    pub owner: Signer<'info>,
    #[account(mut, token::authority = owner)]
    pub owner_tokens: Account<'info, TokenAccount>,
    #[account(mut)]
    pub vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs the refund.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
}

pub fn handler(ctx: Context<CancelOrder>, interval: u64, order: u16) -> Result<()> {
    let a = &ctx.accounts;
    let market = a.market.load()?;
    let refund = {
        let mut book = a.book.load_mut()?;
        require!(!book.is_cleared(), TradingError::AlreadyCleared);
        require!(order < book.order_count, TradingError::UnknownOrder);
        let o = &mut book.orders[usize::from(order)];
        require!(
            market.seats[usize::from(o.seat)].owner == a.owner.key(),
            TradingError::NotOrderOwner
        );
        require!(o.is_open(), TradingError::OrderNotOpen);
        let vault = if o.side == SIDE_BUY {
            market.quote_vault
        } else {
            market.base_vault
        };
        require_keys_eq!(a.vault.key(), vault, TradingError::WrongMint);
        require_keys_eq!(a.owner_tokens.mint, a.vault.mint, TradingError::WrongMint);
        o.status = ORDER_CANCELLED;
        o.escrow
    };
    let bump = market.vault_authority_bump;
    drop(market);
    pay_out(
        &a.token_program,
        &a.vault.to_account_info(),
        &a.owner_tokens.to_account_info(),
        &a.vault_authority,
        bump,
        refund,
    )?;
    program_common::emit_event!(OrderCancelled {
        interval,
        order,
        owner: a.owner.key(),
        refunded: refund,
    });
    Ok(())
}
