use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};
use program_common::zero_copy;

use crate::errors::TradingError;
use crate::events::OrderCancelled;
use crate::instructions::vault::{close_account, pay_out};
use crate::state::{seeds, Balance, Escrow, IntervalBook, Market, Order, OrderDelegate, Side};

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

/// A building's order delegate cancels the building's order for its owner, before the
/// gate: as `cancel_order`, the escrow back to the owner's token account; the order's rent
/// goes to the owner's balance account (withdrawn with it), whoever paid it.
#[derive(Accounts)]
#[instruction(interval: u64, lfdi: [u8; 20], side: Side)]
pub struct CancelDelegatedOrder<'info> {
    #[account(seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: as in `CancelOrder`.
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
    /// CHECK: as in `CancelOrder`.
    #[account(
        mut,
        seeds = [seeds::ORDER, interval.to_le_bytes().as_ref(), lfdi.as_ref(), &[side.code()]],
        bump,
    )]
    pub order: UncheckedAccount<'info>,
    /// CHECK: the order's owner (checked against the order); not a signer.
    pub owner: UncheckedAccount<'info>,
    /// CHECK: the owner's balance PDA (owner and discriminator checked when updated).
    #[account(mut, seeds = [seeds::BALANCE, owner.key().as_ref()], bump)]
    pub balance: UncheckedAccount<'info>,
    #[account(seeds = [seeds::ORDER_DELEGATE, lfdi.as_ref()], bump = delegation.load()?.bump)]
    pub delegation: AccountLoader<'info, OrderDelegate>,
    pub delegate: Signer<'info>,
    #[account(mut, token::authority = owner)]
    pub owner_tokens: Account<'info, TokenAccount>,
    #[account(mut)]
    pub vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs the refund.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
}

/// The accounts a cancellation uses, whoever signs it.
struct Cancellation<'a, 'info> {
    market: &'a AccountLoader<'info, Market>,
    book: &'a AccountInfo<'info>,
    order: &'a AccountInfo<'info>,
    balance: &'a AccountInfo<'info>,
    /// The order's owner (checked against the order).
    owner: Pubkey,
    /// Who signed: the owner or the building's delegate.
    by: Pubkey,
    /// Where the order's rent goes.
    rent_to: &'a AccountInfo<'info>,
    owner_tokens: &'a AccountInfo<'info>,
    vault: &'a Account<'info, TokenAccount>,
    vault_authority: &'a AccountInfo<'info>,
    token_program: &'a Program<'info, Token>,
}

pub fn handler(ctx: Context<CancelOrder>, interval: u64, lfdi: [u8; 20], side: Side) -> Result<()> {
    let a = &ctx.accounts;
    let owner = a.owner.to_account_info();
    cancel(
        Cancellation {
            market: &a.market,
            book: &a.book,
            order: &a.order,
            balance: &a.balance,
            owner: a.owner.key(),
            by: a.owner.key(),
            rent_to: &owner,
            owner_tokens: &a.owner_tokens.to_account_info(),
            vault: &a.vault,
            vault_authority: &a.vault_authority,
            token_program: &a.token_program,
        },
        interval,
        lfdi,
        side,
    )
}

pub fn delegated_handler(
    ctx: Context<CancelDelegatedOrder>,
    interval: u64,
    lfdi: [u8; 20],
    side: Side,
) -> Result<()> {
    let a = &ctx.accounts;
    // The delegation must be the one the order's owner gave (a delegation lapses when the
    // meter changes hands; the order stays its placer's).
    a.delegation
        .load()?
        .allows(&a.delegate.key(), &a.owner.key())?;
    cancel(
        Cancellation {
            market: &a.market,
            book: &a.book,
            order: &a.order,
            balance: &a.balance,
            owner: a.owner.key(),
            by: a.delegate.key(),
            rent_to: &a.balance,
            owner_tokens: &a.owner_tokens.to_account_info(),
            vault: &a.vault,
            vault_authority: &a.vault_authority,
            token_program: &a.token_program,
        },
        interval,
        lfdi,
        side,
    )
}

fn cancel(c: Cancellation, interval: u64, lfdi: [u8; 20], side: Side) -> Result<()> {
    let market = c.market.load()?;
    require!(!c.order.data_is_empty(), TradingError::UnknownOrder);
    // The book exists while its orders do; its gate was fixed when it opened.
    let now = Clock::get()?.unix_timestamp;
    let open = zero_copy::update::<IntervalBook, _>(c.book, |b| b.is_open(now))?;
    require!(open, TradingError::GateClosed);
    let order = zero_copy::read::<Order>(c.order)?;
    require_keys_eq!(order.owner, c.owner, TradingError::NotOrderOwner);
    let buy = side.is_buy();
    let vault = match order.escrow()? {
        Escrow::Quote(_) => market.quote_vault,
        Escrow::Base(_) => market.base_vault,
    };
    require_keys_eq!(c.vault.key(), vault, TradingError::WrongMint);
    zero_copy::update::<IntervalBook, _>(c.book, |book| -> Result<()> {
        book.take_out(buy, order.tick, order.quantity())
    })??;
    zero_copy::update::<Balance, _>(c.balance, |balance| -> Result<()> {
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
        c.token_program,
        &c.vault.to_account_info(),
        c.owner_tokens,
        c.vault_authority,
        market.vault_authority_bump,
        order.escrow,
    )?;
    drop(market);
    close_account(c.order, c.rent_to)?;
    program_common::emit_event!(OrderCancelled {
        interval,
        lfdi,
        owner: order.owner,
        by: c.by,
        side,
        refunded: order.escrow,
    });
    Ok(())
}
