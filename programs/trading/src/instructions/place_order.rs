use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};
use program_common::pda::{create_pda_account, init_zero_copy};
use program_common::zero_copy;

use crate::errors::TradingError;
use crate::events::OrderPlaced;
use crate::state::{
    buy_escrow, seeds, IntervalBook, Market, Order, Side, BOOK_OPEN, MAX_QUANTITY_WH, ORDER_OPEN,
    SIDE_BUY, SIDE_SELL,
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct PlaceOrderArgs {
    /// The open interval or the next one.
    pub interval: u64,
    pub side: Side,
    pub quantity_wh: u64,
    /// Quote base units per kWh, on the tick and within the bounds.
    pub limit_price: u64,
    /// The owner's seat (see `claim_seat`).
    pub seat: u16,
}

/// Places an order in an interval's book, locking its escrow in a vault: a sell locks its
/// GRID, a buy its quantity times its limit price in quote tokens (rounded up). The first
/// order of an interval pays for its book (refunded by `close_book` after clearing).
#[derive(Accounts)]
#[instruction(args: PlaceOrderArgs)]
pub struct PlaceOrder<'info> {
    #[account(seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: the interval's book PDA; created by the handler if it does not exist yet,
    /// otherwise read as a zero-copy `IntervalBook` (owner and discriminator checked).
    #[account(mut, seeds = [seeds::BOOK, args.interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
    #[account(mut)]
    pub owner: Signer<'info>,
    /// GRID for a sell, quote tokens for a buy.
    #[account(mut, token::authority = owner)]
    pub owner_tokens: Account<'info, TokenAccount>,
    /// The market's base vault for a sell, its quote vault for a buy.
    #[account(mut)]
    pub vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

impl PlaceOrder<'_> {
    pub fn validate(&self, args: &PlaceOrderArgs) -> Result<()> {
        let market = self.market.load()?;
        require!(
            !market.is_paused(Clock::get()?.unix_timestamp),
            TradingError::Paused
        );
        let open = market.interval_at(Clock::get()?.unix_timestamp);
        require!(
            args.interval == open || Some(args.interval) == open.checked_add(1),
            TradingError::IntervalNotOpen
        );
        market.params().check_price(args.limit_price)?;
        require!(
            (market.min_quantity_wh..=MAX_QUANTITY_WH).contains(&args.quantity_wh),
            TradingError::InvalidQuantity
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
        market.check_seat(args.seat, &self.owner.key())?;
        Ok(())
    }
}

pub fn handler(ctx: Context<PlaceOrder>, args: PlaceOrderArgs) -> Result<()> {
    let a = &ctx.accounts;
    let max_orders = a.market.load()?.max_orders;
    let book_info = a.book.to_account_info();
    if book_info.data_is_empty() {
        create_pda_account(
            &a.owner.to_account_info(),
            &book_info,
            &a.system_program.to_account_info(),
            IntervalBook::SPACE,
            &crate::ID,
            &[seeds::BOOK, &args.interval.to_le_bytes(), &[ctx.bumps.book]],
        )?;
        // In place: a book is larger than the 4 KiB SBF stack.
        let (market, payer, bump) = (a.market.key(), a.owner.key(), ctx.bumps.book);
        init_zero_copy::<IntervalBook>(&book_info, |book| {
            book.market = market;
            book.payer = payer;
            book.interval = args.interval;
            book.status = BOOK_OPEN;
            book.bump = bump;
        })?;
    }
    let escrow = match args.side {
        Side::Buy => buy_escrow(args.quantity_wh, args.limit_price)?,
        Side::Sell => args.quantity_wh,
    };
    let order = Order {
        seat: args.seat,
        side: match args.side {
            Side::Buy => SIDE_BUY,
            Side::Sell => SIDE_SELL,
        },
        status: ORDER_OPEN,
        _reserved: [0; 4],
        quantity_wh: args.quantity_wh,
        limit_price: args.limit_price,
        filled_wh: 0,
        escrow,
    };
    let index = zero_copy::update::<IntervalBook, _>(&book_info, |book| {
        require!(!book.is_cleared(), TradingError::AlreadyCleared);
        book.push(order, max_orders)
    })??;
    token::transfer(
        CpiContext::new(
            a.token_program.key(),
            Transfer {
                from: a.owner_tokens.to_account_info(),
                to: a.vault.to_account_info(),
                authority: a.owner.to_account_info(),
            },
        ),
        escrow,
    )?;
    program_common::emit_event!(OrderPlaced {
        interval: args.interval,
        order: index,
        owner: a.owner.key(),
        side: args.side,
        quantity_wh: args.quantity_wh,
        limit_price: args.limit_price,
        escrow,
    });
    Ok(())
}
