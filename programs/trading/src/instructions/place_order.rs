use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};
use program_common::pda::{create_pda_account, init_zero_copy};
use program_common::zero_copy;
use registry::Meter;

use crate::errors::TradingError;
use crate::events::OrderPlaced;
use crate::instructions::vault::{pay_in, pay_out};
use crate::state::{seeds, Balance, IntervalBook, Market, Order, Price, Side, Wh, MAX_QUANTITY_WH};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct PlaceOrderArgs {
    /// An interval whose book is open and whose gate has not closed.
    pub interval: u64,
    /// The building trading: its meter's LFDI (the signer must own the meter).
    pub lfdi: [u8; 20],
    pub side: Side,
    pub quantity_wh: u64,
    /// Quote base units per kWh, a step of the interval's ladder.
    pub limit_price: u64,
}

/// A building's owner places its order for one side of an interval, or replaces the one it
/// has there (the old escrow is returned, the new one locked: one transfer of the
/// difference). The order is its own account at `[ORDER, interval, lfdi, side]`, its rent
/// paid by the owner; the interval's ladder gains its quantity at its price step.
///
/// Trading rights belong to meters: the signer must be the meter's current owner and the
/// meter Active. At most one buy and one sell per building per interval, each at most what
/// the meter's registered capacity allows over the interval (generation plus battery
/// discharge for a sell, import for a buy), and never both sides for one building. The same
/// owner cannot buy and sell in one interval (through any of their buildings): their
/// balance account counts the sides they hold per interval. An order the meter's previous
/// owner placed is theirs: the new owner evicts it (`evict_order`) before placing.
#[derive(Accounts)]
#[instruction(args: PlaceOrderArgs)]
pub struct PlaceOrder<'info> {
    #[account(seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: the interval's book PDA: an `IntervalBook` (owner and discriminator checked
    /// when read), or empty if nobody opened it (`BookNotOpen`).
    #[account(mut, seeds = [seeds::BOOK, args.interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
    /// CHECK: the building's registry `Meter`, read with `Meter::load_checked` (owner and
    /// discriminator; the LFDI inside must be `args.lfdi`).
    pub meter: UncheckedAccount<'info>,
    /// CHECK: the order PDA; created by the handler, or the building's order to replace
    /// (owner and discriminator checked when read).
    #[account(
        mut,
        seeds = [seeds::ORDER, args.interval.to_le_bytes().as_ref(), args.lfdi.as_ref(), &[args.side.code()]],
        bump,
    )]
    pub order: UncheckedAccount<'info>,
    /// CHECK: the building's order PDA on the other side of the interval, which must not
    /// exist (a building never buys and sells in one interval: `BuildingOnBothSides`).
    #[account(
        seeds = [seeds::ORDER, args.interval.to_le_bytes().as_ref(), args.lfdi.as_ref(), &[args.side.other().code()]],
        bump,
    )]
    pub opposite: UncheckedAccount<'info>,
    /// CHECK: the owner's balance PDA; created by the handler at their first order.
    #[account(mut, seeds = [seeds::BALANCE, owner.key().as_ref()], bump)]
    pub balance: UncheckedAccount<'info>,
    #[account(mut)]
    pub owner: Signer<'info>,
    /// GRID for a sell, quote tokens for a buy.
    #[account(mut, token::authority = owner)]
    pub owner_tokens: Account<'info, TokenAccount>,
    /// The market's base vault for a sell, its quote vault for a buy.
    #[account(mut)]
    pub vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs a replaced order's refund.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

/// What a meter of `power_w` can deliver or draw in `interval_s`, Wh.
fn capacity_wh(power_w: u64, interval_s: u32) -> u64 {
    // power_w <= 1e9 (registry) and interval_s <= 86,400: the product fits u64.
    power_w.saturating_mul(u64::from(interval_s)) / 3_600
}

impl PlaceOrder<'_> {
    pub fn validate(&self, args: &PlaceOrderArgs) -> Result<()> {
        let market = self.market.load()?;
        let now = Clock::get()?.unix_timestamp;
        require!(!market.is_paused(now), TradingError::Paused);
        require!(!self.book.data_is_empty(), TradingError::BookNotOpen);
        // In place: a book is larger than the SBF stack. Its gate was fixed when it opened.
        let (open, ladder) =
            zero_copy::update::<IntervalBook, _>(&self.book, |b| (b.is_open(now), b.ladder()))?;
        require!(open, TradingError::GateClosed);
        market.check_horizon(args.interval, now)?;
        ladder.tick_of(args.limit_price)?;
        require!(
            (market.min_quantity_wh..=MAX_QUANTITY_WH).contains(&args.quantity_wh),
            TradingError::InvalidQuantity
        );
        let meter = Meter::load_checked(&self.meter)?;
        require!(meter.lfdi == args.lfdi, TradingError::NotMeterOwner);
        require_keys_eq!(meter.owner, self.owner.key(), TradingError::NotMeterOwner);
        require!(meter.is_active(), TradingError::MeterNotActive);
        let bound = match args.side {
            Side::Buy => capacity_wh(meter.capacity.max_import_w, market.interval_s),
            Side::Sell => capacity_wh(meter.capacity.max_export_w(), market.interval_s),
        };
        require!(args.quantity_wh <= bound, TradingError::OverCapacity);
        require!(
            self.opposite.data_is_empty(),
            TradingError::BuildingOnBothSides
        );
        let vault = match args.side {
            Side::Buy => market.quote_vault,
            Side::Sell => market.base_vault,
        };
        require_keys_eq!(self.vault.key(), vault, TradingError::WrongMint);
        require_keys_eq!(
            self.owner_tokens.mint,
            self.vault.mint,
            TradingError::WrongMint
        );
        Ok(())
    }
}

pub fn handler(ctx: Context<PlaceOrder>, args: PlaceOrderArgs) -> Result<()> {
    let a = &ctx.accounts;
    let owner = a.owner.key();
    let buy = args.side.is_buy();
    let (tick, escrow) = {
        let ladder = zero_copy::update::<IntervalBook, _>(&a.book, |b| b.ladder())?;
        let tick = ladder.tick_of(args.limit_price)?;
        let escrow = match args.side {
            Side::Buy => Price(args.limit_price).value_up(Wh(args.quantity_wh))?.0,
            Side::Sell => args.quantity_wh,
        };
        (tick, escrow)
    };

    // The owner's balance: created at their first order.
    let balance_info = a.balance.to_account_info();
    if balance_info.data_is_empty() {
        let bump = ctx.bumps.balance;
        create_pda_account(
            &a.owner.to_account_info(),
            &balance_info,
            &a.system_program.to_account_info(),
            Balance::SPACE,
            &crate::ID,
            &[seeds::BALANCE, owner.as_ref(), &[bump]],
        )?;
        init_zero_copy::<Balance>(&balance_info, |b| {
            b.owner = owner;
            b.bump = bump;
        })?;
    }

    // The order: new, or the building's earlier one on this side, replaced.
    let order_info = a.order.to_account_info();
    let previous = if order_info.data_is_empty() {
        None
    } else {
        Some(zero_copy::read::<Order>(&order_info)?)
    };
    if let Some(old) = &previous {
        require_keys_eq!(old.owner, owner, TradingError::OrderOfPreviousOwner);
    }
    zero_copy::update::<Balance, _>(&balance_info, |b| -> Result<()> {
        require_keys_eq!(b.owner, owner, TradingError::WrongBalance);
        let sides = b.sides_mut(args.interval);
        let (same, other) = if buy {
            (&mut sides.buys, sides.sells)
        } else {
            (&mut sides.sells, sides.buys)
        };
        require!(other == 0, TradingError::SelfTrade);
        if previous.is_none() {
            *same = same.checked_add(1).ok_or(TradingError::Overflow)?;
        }
        Ok(())
    })??;
    zero_copy::update::<IntervalBook, _>(&a.book, |book| -> Result<()> {
        match &previous {
            Some(old) => book.remove(buy, old.tick, old.quantity())?,
            None => {
                book.open_orders = book
                    .open_orders
                    .checked_add(1)
                    .ok_or(TradingError::Overflow)?;
                let count = if buy {
                    &mut book.buy_orders
                } else {
                    &mut book.sell_orders
                };
                *count = count.checked_add(1).ok_or(TradingError::Overflow)?;
            }
        }
        book.add(buy, tick, Wh(args.quantity_wh))
    })??;
    let bump = ctx.bumps.order;
    if previous.is_none() {
        create_pda_account(
            &a.owner.to_account_info(),
            &order_info,
            &a.system_program.to_account_info(),
            Order::SPACE,
            &crate::ID,
            &[
                seeds::ORDER,
                &args.interval.to_le_bytes(),
                &args.lfdi,
                &[args.side.code()],
                &[bump],
            ],
        )?;
    }
    let order = Order {
        owner,
        lfdi: args.lfdi,
        side: args.side.code(),
        bump,
        tick,
        interval: args.interval,
        quantity_wh: args.quantity_wh,
        escrow,
    };
    program_common::pda::write_zero_copy(&order_info, &order)?;

    // Escrow: lock the difference with the replaced order's (or return it).
    let held = previous.map_or(0, |o| o.escrow);
    if escrow >= held {
        pay_in(
            &a.token_program,
            &a.owner_tokens.to_account_info(),
            &a.vault.to_account_info(),
            &a.owner.to_account_info(),
            escrow - held,
        )?;
    } else {
        pay_out(
            &a.token_program,
            &a.vault.to_account_info(),
            &a.owner_tokens.to_account_info(),
            &a.vault_authority,
            a.market.load()?.vault_authority_bump,
            held - escrow,
        )?;
    }
    program_common::emit_event!(OrderPlaced {
        interval: args.interval,
        lfdi: args.lfdi,
        owner,
        side: args.side,
        quantity_wh: args.quantity_wh,
        limit_price: args.limit_price,
        escrow,
        replaced: previous.is_some(),
    });
    Ok(())
}
