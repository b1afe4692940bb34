use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};
use program_common::zero_copy;

use crate::errors::TradingError;
use crate::events::OrderCancelled;
use crate::instructions::vault::{close_account, pay_out};
use crate::state::{seeds, Balance, Escrow, IntervalBook, Market, Order, Side};

/// The owner cancels their order before its interval's gate closes: the ladder loses its
/// quantity, the escrow goes back to the owner's token account and the order's rent to the
/// owner. Allowed while the market is paused; refused once the gate has closed, so nobody
/// can change an interval's outcome after its orders are final (not even in the
/// transaction that clears it).
#[derive(Accounts)]
#[instruction(interval: u64, lfdi: [u8; 20], side: Side)]
pub struct CancelOrder<'info> {
    #[account(seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: the interval's book PDA (owner and discriminator checked when updated; it
    /// exists whenever the order does).
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
    /// CHECK: the order PDA (owner and discriminator checked when read).
    #[account(
        mut,
        seeds = [seeds::ORDER, interval.to_le_bytes().as_ref(), lfdi.as_ref(), &[side.code()]],
        bump,
    )]
    pub order: UncheckedAccount<'info>,
    /// CHECK: the owner's balance PDA (owner and discriminator checked when updated; it
    /// exists whenever the owner has an order).
    #[account(mut, seeds = [seeds::BALANCE, owner.key().as_ref()], bump)]
    pub balance: UncheckedAccount<'info>,
    #[account(mut)]
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

pub fn handler(ctx: Context<CancelOrder>, interval: u64, lfdi: [u8; 20], side: Side) -> Result<()> {
    let a = &ctx.accounts;
    let market = a.market.load()?;
    require!(!a.order.data_is_empty(), TradingError::UnknownOrder);
    // The book exists while its orders do; its gate was fixed when it opened.
    let now = Clock::get()?.unix_timestamp;
    let open = zero_copy::update::<IntervalBook, _>(&a.book, |b| b.is_open(now))?;
    require!(open, TradingError::GateClosed);
    let order = zero_copy::read::<Order>(&a.order)?;
    require_keys_eq!(order.owner, a.owner.key(), TradingError::NotOrderOwner);
    let buy = side.is_buy();
    let vault = match order.escrow()? {
        Escrow::Quote(_) => market.quote_vault,
        Escrow::Base(_) => market.base_vault,
    };
    require_keys_eq!(a.vault.key(), vault, TradingError::WrongMint);
    zero_copy::update::<IntervalBook, _>(&a.book, |book| -> Result<()> {
        book.take_out(buy, order.tick, order.quantity())
    })??;
    zero_copy::update::<Balance, _>(&a.balance, |balance| -> Result<()> {
        let sides = balance.sides_mut(interval);
        let count = if buy {
            &mut sides.buys
        } else {
            &mut sides.sells
        };
        *count = count.checked_sub(1).ok_or(TradingError::Overflow)?;
        Ok(())
    })??;
    pay_out(
        &a.token_program,
        &a.vault.to_account_info(),
        &a.owner_tokens.to_account_info(),
        &a.vault_authority,
        market.vault_authority_bump,
        order.escrow,
    )?;
    drop(market);
    close_account(&a.order, &a.owner.to_account_info())?;
    program_common::emit_event!(OrderCancelled {
        interval,
        lfdi,
        owner: order.owner,
        side,
        refunded: order.escrow,
    });
    Ok(())
}
