use anchor_lang::prelude::*;

use crate::errors::TradingError;
use crate::events::IntervalCleared;
use crate::state::auction::{self, Bid, Outcome};
use crate::state::{
    seeds, IntervalBook, Market, BOOK_CLEARED, ORDER_SETTLED, SIDE_BUY, WH_PER_KWH,
};

/// Clears an interval once it has ended: anyone may (the keeper cranks it). Computes on chain
/// the uniform price and volume over the interval's open orders and every order's fill (see
/// `state::auction` for the rules), and settles them at once into the seats:
///
/// - a buy filled `f` at price `P` gets `f` Wh of GRID and its escrow back less
///   `ceil(f * P / 1000)` quote;
/// - a sell filled `f` gets `floor(f * P / 1000)` quote less the fee (`fee_bps` of it,
///   rounded up) and its unfilled GRID back;
/// - rounding and fees go to the market's fees.
///
/// So no buyer pays above its limit, no seller receives below its (before the fee), and the
/// vaults always hold exactly the seats' balances, the open escrow and the fees.
#[derive(Accounts)]
#[instruction(interval: u64)]
pub struct ClearInterval<'info> {
    #[account(mut, seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump = book.load()?.bump)]
    pub book: AccountLoader<'info, IntervalBook>,
}

impl ClearInterval<'_> {
    pub fn validate(&self, interval: u64) -> Result<()> {
        let market = self.market.load()?;
        require!(
            !market.is_paused(Clock::get()?.unix_timestamp),
            TradingError::Paused
        );
        require!(
            !self.book.load()?.is_cleared(),
            TradingError::AlreadyCleared
        );
        require!(
            Clock::get()?.unix_timestamp >= market.interval_end(interval)?,
            TradingError::IntervalNotEnded
        );
        Ok(())
    }
}

fn value(wh: u64, price: u64) -> u128 {
    u128::from(wh) * u128::from(price)
}

fn to_u64(v: u128) -> Result<u64> {
    u64::try_from(v).map_err(|_| error!(TradingError::Overflow))
}

pub fn handler(ctx: Context<ClearInterval>, interval: u64) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    let mut book = ctx.accounts.book.load_mut()?;
    let count = usize::from(book.order_count);

    // The open orders, in order-index order.
    let mut open: Vec<usize> = Vec::with_capacity(count);
    let mut bids: Vec<Bid> = Vec::with_capacity(count);
    for (i, o) in book.orders().iter().enumerate() {
        if o.is_open() {
            open.push(i);
            bids.push(Bid {
                buy: o.side == SIDE_BUY,
                price: o.limit_price,
                quantity: o.quantity_wh,
            });
        }
    }
    let (buy_offered, sell_offered) = auction::offered(&bids);
    let outcome = auction::clearing_price(&bids, market.last_price).unwrap_or(Outcome {
        price: 0,
        volume: 0,
    });
    let fills = if outcome.volume > 0 {
        auction::fills(&bids, outcome)
    } else {
        vec![0; bids.len()]
    };

    let price = outcome.price;
    let mut paid: u128 = 0;
    let mut received: u128 = 0;
    let mut fees: u128 = 0;
    let mut filled_orders: u16 = 0;
    for (&i, &fill) in open.iter().zip(&fills) {
        let o = &mut book.orders[i];
        o.filled_wh = fill;
        o.status = ORDER_SETTLED;
        if fill > 0 {
            filled_orders += 1;
        }
        if o.side == SIDE_BUY {
            let pay = value(fill, price).div_ceil(WH_PER_KWH);
            paid += pay;
            // pay <= escrow: fill <= quantity and price <= limit.
            let refund = u128::from(o.escrow)
                .checked_sub(pay)
                .ok_or(TradingError::Overflow)?;
            market.credit(o.seat, fill, to_u64(refund)?)?;
        } else {
            let gross = value(fill, price) / WH_PER_KWH;
            let fee = (gross * u128::from(market.fee_bps)).div_ceil(10_000);
            received += gross;
            fees += fee;
            let unfilled = o
                .quantity_wh
                .checked_sub(fill)
                .ok_or(TradingError::Overflow)?;
            market.credit(o.seat, unfilled, to_u64(gross - fee)?)?;
        }
    }
    // Buyers' ceilings cover at least the sellers' floors: the rounding stays in the market.
    let added = fees + paid.checked_sub(received).ok_or(TradingError::Overflow)?;
    market.fees = market
        .fees
        .checked_add(to_u64(added)?)
        .ok_or(TradingError::Overflow)?;
    if outcome.volume > 0 && interval >= market.last_price_interval {
        market.last_price = price;
        market.last_price_interval = interval;
    }
    book.clearing_price = price;
    book.volume_wh = outcome.volume;
    book.status = BOOK_CLEARED;
    let buy_orders = bids.iter().filter(|b| b.buy).count() as u16;
    program_common::emit_event!(IntervalCleared {
        interval,
        price,
        volume_wh: outcome.volume,
        buy_orders,
        sell_orders: bids.len() as u16 - buy_orders,
        filled_orders,
        buy_volume_offered: buy_offered,
        sell_volume_offered: sell_offered,
        fees: to_u64(added)?,
    });
    Ok(())
}
