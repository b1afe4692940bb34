use anchor_lang::prelude::*;

use crate::errors::TradingError;
use crate::events::IntervalClosed;
use crate::instructions::vault::close_account;
use crate::state::{seeds, IntervalBook, Market};

/// Closes a cleared interval whose every order is settled: its sellers' fees and the rounding
/// its marginal orders left (GRID delivered but not received, quote paid but not paid out)
/// go to the market's fees and dust, and the book's rent back to whoever opened it. Anyone
/// may.
#[derive(Accounts)]
#[instruction(interval: u64)]
pub struct CloseBook<'info> {
    #[account(mut, seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump = book.load()?.bump, has_one = payer @ TradingError::WrongBook)]
    pub book: AccountLoader<'info, IntervalBook>,
    /// CHECK: the book's payer (`has_one`), who gets the rent back.
    #[account(mut)]
    pub payer: UncheckedAccount<'info>,
}

impl CloseBook<'_> {
    pub fn validate(&self) -> Result<()> {
        let book = self.book.load()?;
        require!(book.is_cleared(), TradingError::NotCleared);
        require!(book.open_orders == 0, TradingError::OrdersOutstanding);
        Ok(())
    }
}

pub fn handler(ctx: Context<CloseBook>, interval: u64) -> Result<()> {
    let (dust_wh, quote_left, fees) = {
        let book = ctx.accounts.book.load()?;
        // Settlement keeps both at or above zero (`state::auction`); what is left of the
        // quote is the sellers' fees and the rounding.
        let dust = book
            .base_in
            .checked_sub(book.base_out)
            .ok_or(TradingError::Overflow)?;
        let left = book
            .quote_in
            .checked_sub(book.quote_out)
            .ok_or(TradingError::Overflow)?;
        (dust, left, book.fees)
    };
    let quote_surplus = quote_left.checked_sub(fees).ok_or(TradingError::Overflow)?;
    {
        let mut market = ctx.accounts.market.load_mut()?;
        market.dust_wh = market
            .dust_wh
            .checked_add(dust_wh)
            .ok_or(TradingError::Overflow)?;
        market.fees = market
            .fees
            .checked_add(quote_left)
            .ok_or(TradingError::Overflow)?;
    }
    close_account(
        &ctx.accounts.book.to_account_info(),
        &ctx.accounts.payer.to_account_info(),
    )?;
    program_common::emit_event!(IntervalClosed {
        interval,
        dust_wh,
        fees,
        quote_surplus,
    });
    Ok(())
}
