use anchor_lang::prelude::*;
use program_common::pda::{create_pda_account, init_zero_copy};

use crate::errors::TradingError;
use crate::events::IntervalOpened;
use crate::state::{seeds, IntervalBook, Market, BOOK_OPEN};

/// Opens an interval's book (its price ladder, gate and fee, fixed from the market's
/// parameters now: later changes apply to books opened afterwards), so that buildings can
/// place orders in it. Anyone may (the keeper does, ahead of time); the payer
/// gets the rent back once the interval is cleared and every order settled (`close_book`).
#[derive(Accounts)]
#[instruction(interval: u64)]
pub struct OpenInterval<'info> {
    #[account(seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: the interval's book PDA, created by the handler.
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

impl OpenInterval<'_> {
    pub fn validate(&self, interval: u64) -> Result<()> {
        let market = self.market.load()?;
        let now = Clock::get()?.unix_timestamp;
        require!(self.book.data_is_empty(), TradingError::BookAlreadyOpen);
        // Not one that was already cleared (it would be cleared again), nor beyond the
        // horizon (books for far intervals would hold rent for nothing).
        require!(interval >= market.next_clear, TradingError::AlreadyCleared);
        market.check_open(interval, now)
    }
}

pub fn handler(ctx: Context<OpenInterval>, interval: u64) -> Result<()> {
    let a = &ctx.accounts;
    let (ladder, gate, fee_bps) = {
        let market = a.market.load()?;
        (market.ladder(), market.gate(interval)?, market.fee_bps)
    };
    create_pda_account(
        &a.payer.to_account_info(),
        &a.book.to_account_info(),
        &a.system_program.to_account_info(),
        IntervalBook::SPACE,
        &crate::ID,
        &[seeds::BOOK, &interval.to_le_bytes(), &[ctx.bumps.book]],
    )?;
    // In place: a book (its ladder) is far larger than the 4 KiB SBF stack.
    let (market, payer, bump) = (a.market.key(), a.payer.key(), ctx.bumps.book);
    init_zero_copy::<IntervalBook>(&a.book, |book| {
        book.market = market;
        book.payer = payer;
        book.interval = interval;
        book.min_price = ladder.min_price;
        book.price_tick = ladder.price_tick;
        book.ticks = ladder.ticks;
        book.gate = gate;
        book.fee_bps = fee_bps;
        book.status = BOOK_OPEN;
        book.bump = bump;
    })?;
    program_common::emit_event!(IntervalOpened { interval, payer });
    Ok(())
}
