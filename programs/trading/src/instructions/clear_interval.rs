use anchor_lang::prelude::*;
use program_common::zero_copy;

use crate::errors::TradingError;
use crate::events::IntervalCleared;
use crate::state::auction;
use crate::state::{seeds, IntervalBook, Market};

/// Clears the market's next interval once its gate has closed: anyone may (the keeper
/// cranks it). Computes the clearing price, volume and the marginal side's rationing over
/// the interval's ladder (`state::auction`), at a cost set by the ladder, not by the number
/// of orders; the orders are then settled one by one (`settle_orders`). Intervals clear in
/// order, k before k + 1, so the previous price a tie is broken on is always the preceding
/// interval's, whoever cranks and whenever. An interval nobody opened a book for has no
/// orders: passing its (empty) book address just moves on.
#[derive(Accounts)]
#[instruction(interval: u64)]
pub struct ClearInterval<'info> {
    #[account(mut, seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: the interval's book PDA: an `IntervalBook` (owner and discriminator checked
    /// when read), or empty if nobody opened it.
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
}

impl ClearInterval<'_> {
    pub fn validate(&self, interval: u64) -> Result<()> {
        let market = self.market.load()?;
        let now = Clock::get()?.unix_timestamp;
        require!(!market.is_paused(now), TradingError::Paused);
        require!(interval >= market.next_clear, TradingError::AlreadyCleared);
        require!(interval == market.next_clear, TradingError::ClearOutOfOrder);
        // An opened book's gate was fixed when it opened; an interval without a book has
        // the market's.
        let gate = if self.book.data_is_empty() {
            market.gate(interval)?
        } else {
            zero_copy::update::<IntervalBook, _>(&self.book, |b| b.gate)?
        };
        require!(now >= gate, TradingError::GateNotClosed);
        Ok(())
    }
}

pub fn handler(ctx: Context<ClearInterval>, interval: u64) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    market.next_clear = interval.checked_add(1).ok_or(TradingError::Overflow)?;
    let book_info = ctx.accounts.book.to_account_info();
    if book_info.data_is_empty() {
        program_common::emit_event!(IntervalCleared {
            interval,
            price: 0,
            volume_wh: 0,
            buy_orders: 0,
            sell_orders: 0,
            buy_volume_offered: 0,
            sell_volume_offered: 0,
        });
        return Ok(());
    }
    let previous_price = market.last_price;
    let (event, clearing) = zero_copy::update::<IntervalBook, _>(&book_info, |book| {
        require!(!book.is_cleared(), TradingError::AlreadyCleared);
        let ticks = usize::from(book.ticks);
        let ladder = book.ladder();
        let clearing = auction::clear(
            &book.demand[..ticks],
            &book.supply[..ticks],
            |t| ladder.price(t),
            previous_price,
        );
        book.record_clearing(clearing.as_ref());
        let offered = |steps: &[u64]| steps.iter().map(|q| u128::from(*q)).sum::<u128>();
        let event = IntervalCleared {
            interval,
            price: clearing.map_or(0, |c| c.price.0),
            volume_wh: clearing.map_or(0, |c| c.volume.0),
            buy_orders: book.buy_orders,
            sell_orders: book.sell_orders,
            buy_volume_offered: u64::try_from(offered(&book.demand[..ticks]))
                .map_err(|_| TradingError::Overflow)?,
            sell_volume_offered: u64::try_from(offered(&book.supply[..ticks]))
                .map_err(|_| TradingError::Overflow)?,
        };
        Ok((event, clearing))
    })??;
    if let Some(c) = clearing {
        market.last_price = c.price.0;
        market.last_price_interval = interval;
    }
    program_common::emit_event!(event);
    Ok(())
}
