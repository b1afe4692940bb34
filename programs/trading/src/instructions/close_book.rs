use anchor_lang::prelude::*;

use crate::errors::TradingError;
use crate::state::{seeds, IntervalBook};

/// Closes a cleared book and returns its rent to whoever paid for it. Anyone may: every
/// order in it is settled into the seats, so nothing is lost with it.
#[derive(Accounts)]
#[instruction(interval: u64)]
pub struct CloseBook<'info> {
    #[account(
        mut,
        seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()],
        bump = book.load()?.bump,
        has_one = payer @ TradingError::WrongBook,
        close = payer,
    )]
    pub book: AccountLoader<'info, IntervalBook>,
    /// CHECK: receives the rent; must be the book's payer (has_one).
    #[account(mut)]
    pub payer: UncheckedAccount<'info>,
}

impl CloseBook<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(self.book.load()?.is_cleared(), TradingError::NotCleared);
        Ok(())
    }
}
