use anchor_lang::prelude::*;
use program_common::zero_copy;
use registry::Meter;

use crate::errors::TradingError;
use crate::events::OrderEvicted;
use crate::instructions::vault::close_account;
use crate::state::{seeds, Balance, Escrow, IntervalBook, Order, QuoteUnits, Side, Wh};

/// Trading rights move with the meter: its current owner evicts an order the previous owner
/// placed for the building, before the interval's gate (after it, the order is final and
/// settles to the previous owner). The order leaves the ladder; its escrow is credited to the
/// previous owner's balance (it stays in the vault, claimable by them) and its rent goes to
/// that balance account too. The new owner may then place their own.
#[derive(Accounts)]
#[instruction(interval: u64, lfdi: [u8; 20], side: Side)]
pub struct EvictOrder<'info> {
    /// CHECK: the interval's book PDA (owner and discriminator checked when updated; it
    /// exists whenever the order does).
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
    /// CHECK: the building's registry `Meter`, read with `Meter::load_for(lfdi)`.
    pub meter: UncheckedAccount<'info>,
    /// CHECK: the order PDA (owner and discriminator checked when read).
    #[account(
        mut,
        seeds = [seeds::ORDER, interval.to_le_bytes().as_ref(), lfdi.as_ref(), &[side.code()]],
        bump,
    )]
    pub order: UncheckedAccount<'info>,
    /// CHECK: the order owner's `Balance` (owner, discriminator and its `owner` field
    /// checked when updated: a `Balance` is only ever written at its owner's PDA).
    #[account(mut)]
    pub previous_owner_balance: UncheckedAccount<'info>,
    /// The meter's owner now.
    pub owner: Signer<'info>,
}

pub fn handler(ctx: Context<EvictOrder>, interval: u64, lfdi: [u8; 20], side: Side) -> Result<()> {
    let a = &ctx.accounts;
    let meter = Meter::load_for(&a.meter, &lfdi)?;
    require_keys_eq!(meter.owner, a.owner.key(), TradingError::NotMeterOwner);
    require!(!a.order.data_is_empty(), TradingError::UnknownOrder);
    let order = zero_copy::read::<Order>(&a.order)?;
    require!(order.owner != meter.owner, TradingError::NotEvictable);
    let now = Clock::get()?.unix_timestamp;
    let buy = side.is_buy();
    zero_copy::update::<IntervalBook, _>(&a.book, |book| -> Result<()> {
        require!(book.is_open(now), TradingError::GateClosed);
        book.take_out(buy, order.tick, order.quantity())
    })??;
    let (base, quote) = match order.escrow()? {
        Escrow::Quote(q) => (Wh(0), q),
        Escrow::Base(b) => (b, QuoteUnits(0)),
    };
    zero_copy::update::<Balance, _>(&a.previous_owner_balance, |b| -> Result<()> {
        require_keys_eq!(b.owner, order.owner, TradingError::WrongBalance);
        let sides = b.sides_mut(interval);
        let count = if buy {
            &mut sides.buys
        } else {
            &mut sides.sells
        };
        *count = count.checked_sub(1).ok_or(TradingError::Overflow)?;
        b.credit(base, quote)
    })??;
    close_account(&a.order, &a.previous_owner_balance)?;
    program_common::emit_event!(OrderEvicted {
        interval,
        lfdi,
        owner: order.owner,
        by: meter.owner,
        side,
        credited: order.escrow,
    });
    Ok(())
}
