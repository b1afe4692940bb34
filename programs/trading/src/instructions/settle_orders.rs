use anchor_lang::prelude::*;
use program_common::zero_copy;

use crate::errors::TradingError;
use crate::events::OrderSettled;
use crate::instructions::vault::close_account;
use crate::state::auction::{self, Clearing};
use crate::state::{seeds, Balance, IntervalBook, Order, QuoteUnits, Side, Wh};

/// Settles orders of a cleared interval, each on its own at the interval's clearing
/// (`state::auction`): credits what it received and its refund to its owner's balance,
/// takes the seller's fee, and closes the order (its rent goes to the balance account, the
/// owner withdraws it with the rest). Anyone may settle any orders (the keeper does, in
/// batches; an owner may settle their own): the result does not depend on who or in what
/// order. Remaining accounts, per order: the `Order` (writable) and its owner's `Balance`
/// (writable). An order already settled (its account closed) is passed over, so racing
/// settlements never fail a batch. Allowed while the market is paused.
///
/// Only the book, the orders and their owners' balances are written (the fees stay in the
/// book until it closes), so settlements of different intervals, and placements in open
/// ones, never wait for each other.
#[derive(Accounts)]
#[instruction(interval: u64)]
pub struct SettleOrders<'info> {
    #[account(mut, seeds = [seeds::BOOK, interval.to_le_bytes().as_ref()], bump = book.load()?.bump)]
    pub book: AccountLoader<'info, IntervalBook>,
}

impl SettleOrders<'_> {
    pub fn validate(&self, remaining: &[AccountInfo]) -> Result<()> {
        require!(self.book.load()?.is_cleared(), TradingError::NotCleared);
        require!(
            !remaining.is_empty() && remaining.len() % 2 == 0,
            TradingError::UnknownOrder
        );
        Ok(())
    }
}

/// One order's settlement: what goes to its owner's balance, and the flows it adds to the
/// interval's (GRID in from a sell / out to a buy, quote in from a buy / out to a sell, after
/// the fee) and the fee.
struct Settled {
    filled: Wh,
    quote: QuoteUnits,
    refund: u64,
    credit_base: Wh,
    credit_quote: QuoteUnits,
    flows: (Wh, Wh, QuoteUnits, QuoteUnits),
    fee: QuoteUnits,
}

fn settle(order: &Order, clearing: Option<&Clearing>, fee_bps: u16) -> Result<Settled> {
    let overflow = || error!(TradingError::Overflow);
    match order.side()? {
        Side::Buy => {
            let fill = auction::settle_buy(order.tick, order.quantity(), clearing)?;
            // The escrow covers the quantity at the limit, at or above the price.
            let refund = order.escrow.checked_sub(fill.paid.0).ok_or_else(overflow)?;
            Ok(Settled {
                filled: fill.received,
                quote: fill.paid,
                refund,
                credit_base: fill.received,
                credit_quote: QuoteUnits(refund),
                flows: (Wh(0), fill.received, fill.paid, QuoteUnits(0)),
                fee: QuoteUnits(0),
            })
        }
        Side::Sell => {
            let fill = auction::settle_sell(order.tick, order.quantity(), clearing)?;
            let fee = auction::fee(fill.proceeds, fee_bps);
            let net = fill.proceeds.0.checked_sub(fee.0).ok_or_else(overflow)?;
            let refund = order
                .escrow
                .checked_sub(fill.delivered.0)
                .ok_or_else(overflow)?;
            Ok(Settled {
                filled: fill.delivered,
                quote: QuoteUnits(net),
                refund,
                credit_base: Wh(refund),
                credit_quote: QuoteUnits(net),
                flows: (fill.delivered, Wh(0), QuoteUnits(0), QuoteUnits(net)),
                fee,
            })
        }
    }
}

pub fn handler<'info>(ctx: Context<'info, SettleOrders<'info>>, interval: u64) -> Result<()> {
    let mut book = ctx.accounts.book.load_mut()?;
    let clearing = book.clearing();
    for pair in ctx.remaining_accounts.chunks(2) {
        let [order_info, balance_info] = pair else {
            return err!(TradingError::UnknownOrder);
        };
        if order_info.data_is_empty() {
            continue;
        }
        // A trading-owned `Order` is written only at its PDA (see `place_order`): owner,
        // discriminator and interval say it is one of this book's.
        let order = zero_copy::read::<Order>(order_info)?;
        require!(order.interval == interval, TradingError::WrongBook);
        require!(order_info.is_writable, TradingError::UnknownOrder);
        let s = settle(&order, clearing.as_ref(), book.fee_bps)?;
        zero_copy::update::<Balance, _>(balance_info, |b| {
            require_keys_eq!(b.owner, order.owner, TradingError::WrongBalance);
            b.credit(s.credit_base, s.credit_quote)
        })??;
        let (base_in, base_out, quote_in, quote_out) = s.flows;
        book.record_settlement(base_in, base_out, quote_in, quote_out, s.fee)?;
        close_account(order_info, balance_info)?;
        program_common::emit_event!(OrderSettled {
            interval,
            lfdi: order.lfdi,
            owner: order.owner,
            side: order.side()?,
            filled_wh: s.filled.0,
            quote: s.quote.0,
            refund: s.refund,
        });
    }
    Ok(())
}
