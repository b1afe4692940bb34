use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};
use program_common::pda::{create_pda_account, init_zero_copy};
use program_common::zero_copy;
use registry::Meter;

use crate::errors::TradingError;
use crate::events::OrderPlaced;
use crate::instructions::vault::{pay_in, pay_in_by_allowance, pay_out};
use crate::state::{
    seeds, Balance, IntervalBook, Market, Order, OrderDelegate, Price, Side, Wh, MAX_QUANTITY_WH,
};

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

/// Every rule an order must meet, whoever signs it (`owner`: the meter's owner, whose order
/// it is). Returns the meter.
#[allow(clippy::too_many_arguments)]
fn check_order(
    market: &AccountLoader<Market>,
    book: &AccountInfo,
    meter: &AccountInfo,
    opposite: &AccountInfo,
    vault: &Account<TokenAccount>,
    owner_tokens: &Account<TokenAccount>,
    owner: &Pubkey,
    args: &PlaceOrderArgs,
) -> Result<Meter> {
    let market = market.load()?;
    let now = Clock::get()?.unix_timestamp;
    require!(!market.is_paused(now), TradingError::Paused);
    require!(!book.data_is_empty(), TradingError::BookNotOpen);
    // In place: a book is larger than the SBF stack. Its gate was fixed when it opened.
    let (open, ladder) =
        zero_copy::update::<IntervalBook, _>(book, |b| (b.is_open(now), b.ladder()))?;
    require!(open, TradingError::GateClosed);
    market.check_horizon(args.interval, now)?;
    ladder.tick_of(args.limit_price)?;
    require!(
        (market.min_quantity_wh..=MAX_QUANTITY_WH).contains(&args.quantity_wh),
        TradingError::InvalidQuantity
    );
    let meter = Meter::load_checked(meter)?;
    require!(meter.lfdi == args.lfdi, TradingError::NotMeterOwner);
    require_keys_eq!(meter.owner, *owner, TradingError::NotMeterOwner);
    require!(meter.is_active(), TradingError::MeterNotActive);
    let bound = match args.side {
        Side::Buy => capacity_wh(meter.capacity.max_import_w, market.interval_s),
        Side::Sell => capacity_wh(meter.capacity.max_export_w(), market.interval_s),
    };
    require!(args.quantity_wh <= bound, TradingError::OverCapacity);
    require!(opposite.data_is_empty(), TradingError::BuildingOnBothSides);
    let expected = match args.side {
        Side::Buy => market.quote_vault,
        Side::Sell => market.base_vault,
    };
    require_keys_eq!(vault.key(), expected, TradingError::WrongMint);
    require_keys_eq!(owner_tokens.mint, vault.mint, TradingError::WrongMint);
    Ok(meter)
}

impl PlaceOrder<'_> {
    pub fn validate(&self, args: &PlaceOrderArgs) -> Result<()> {
        check_order(
            &self.market,
            &self.book,
            &self.meter,
            &self.opposite,
            &self.vault,
            &self.owner_tokens,
            &self.owner.key(),
            args,
        )
        .map(|_| ())
    }
}

/// A building's order delegate places (or replaces) the building's order for its owner:
/// the rules of `place_order`, with the owner's tokens locked through the allowance they
/// approved for the vault authority, the rent paid from the delegation's rent float (the
/// owner's), and the order the owner's in every respect (escrow, fills, refunds,
/// settlement).
#[derive(Accounts)]
#[instruction(args: PlaceOrderArgs)]
pub struct PlaceDelegatedOrder<'info> {
    #[account(seeds = [seeds::MARKET], bump = market.load()?.bump)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: as in `PlaceOrder`.
    #[account(mut, seeds = [seeds::BOOK, args.interval.to_le_bytes().as_ref()], bump)]
    pub book: UncheckedAccount<'info>,
    /// CHECK: as in `PlaceOrder`.
    pub meter: UncheckedAccount<'info>,
    /// CHECK: as in `PlaceOrder`.
    #[account(
        mut,
        seeds = [seeds::ORDER, args.interval.to_le_bytes().as_ref(), args.lfdi.as_ref(), &[args.side.code()]],
        bump,
    )]
    pub order: UncheckedAccount<'info>,
    /// CHECK: as in `PlaceOrder`.
    #[account(
        seeds = [seeds::ORDER, args.interval.to_le_bytes().as_ref(), args.lfdi.as_ref(), &[args.side.other().code()]],
        bump,
    )]
    pub opposite: UncheckedAccount<'info>,
    /// CHECK: the meter's owner (checked against the meter), whose order it is; not a signer.
    pub owner: UncheckedAccount<'info>,
    /// CHECK: the owner's balance PDA; created by the handler at their first order.
    #[account(mut, seeds = [seeds::BALANCE, owner.key().as_ref()], bump)]
    pub balance: UncheckedAccount<'info>,
    /// Its rent float pays the rent of the order (and of the owner's balance account, at
    /// their first order), which like any order's goes to the owner's balance when it settles.
    #[account(mut, seeds = [seeds::ORDER_DELEGATE, args.lfdi.as_ref()], bump = delegation.load()?.bump)]
    pub delegation: AccountLoader<'info, OrderDelegate>,
    pub delegate: Signer<'info>,
    #[account(mut, token::authority = owner)]
    pub owner_tokens: Account<'info, TokenAccount>,
    #[account(mut)]
    pub vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; the owner's SPL delegate for the escrow, and signs a
    /// replaced order's refund.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

impl PlaceDelegatedOrder<'_> {
    pub fn validate(&self, args: &PlaceOrderArgs) -> Result<()> {
        check_order(
            &self.market,
            &self.book,
            &self.meter,
            &self.opposite,
            &self.vault,
            &self.owner_tokens,
            &self.owner.key(),
            args,
        )?;
        self.delegation
            .load()?
            .allows(&self.delegate.key(), &self.owner.key())
    }
}

/// How an order's escrow and rent are paid: by its owner, who signs; or (a delegate's
/// order) the escrow drawn by the vault authority within the owner's allowance and the rent
/// from the delegation's float.
enum Funding<'a, 'info> {
    Owner(&'a AccountInfo<'info>),
    Allowance { delegation: &'a AccountInfo<'info> },
}

/// The accounts an order is written with, whoever placed it.
struct Placement<'a, 'info> {
    market: &'a AccountLoader<'info, Market>,
    book: &'a AccountInfo<'info>,
    order: &'a AccountInfo<'info>,
    order_bump: u8,
    balance: &'a AccountInfo<'info>,
    balance_bump: u8,
    /// The meter's owner: the order is theirs.
    owner: Pubkey,
    /// Who signed: the owner or their delegate.
    by: Pubkey,
    funding: Funding<'a, 'info>,
    owner_tokens: &'a Account<'info, TokenAccount>,
    vault: &'a AccountInfo<'info>,
    vault_authority: &'a AccountInfo<'info>,
    token_program: &'a Program<'info, Token>,
    system_program: &'a AccountInfo<'info>,
}

pub fn handler(ctx: Context<PlaceOrder>, args: PlaceOrderArgs) -> Result<()> {
    let a = &ctx.accounts;
    let owner = a.owner.to_account_info();
    place(
        Placement {
            market: &a.market,
            book: &a.book,
            order: &a.order,
            order_bump: ctx.bumps.order,
            balance: &a.balance,
            balance_bump: ctx.bumps.balance,
            owner: a.owner.key(),
            by: a.owner.key(),
            funding: Funding::Owner(&owner),
            owner_tokens: &a.owner_tokens,
            vault: &a.vault.to_account_info(),
            vault_authority: &a.vault_authority,
            token_program: &a.token_program,
            system_program: &a.system_program.to_account_info(),
        },
        &args,
    )
}

pub fn delegated_handler(ctx: Context<PlaceDelegatedOrder>, args: PlaceOrderArgs) -> Result<()> {
    let a = &ctx.accounts;
    place(
        Placement {
            market: &a.market,
            book: &a.book,
            order: &a.order,
            order_bump: ctx.bumps.order,
            balance: &a.balance,
            balance_bump: ctx.bumps.balance,
            owner: a.owner.key(),
            by: a.delegate.key(),
            funding: Funding::Allowance {
                delegation: &a.delegation.to_account_info(),
            },
            owner_tokens: &a.owner_tokens,
            vault: &a.vault.to_account_info(),
            vault_authority: &a.vault_authority,
            token_program: &a.token_program,
            system_program: &a.system_program.to_account_info(),
        },
        &args,
    )
}

/// Creates the PDA `account` of `space` bytes: rent from the owner who signs, or from the
/// delegation's float (the account is allocated and assigned first, then given its rent:
/// lamports move between the program's accounts only outside a CPI).
fn create<'info>(
    p: &Placement<'_, 'info>,
    account: &AccountInfo<'info>,
    space: usize,
    signer_seeds: &[&[u8]],
) -> Result<()> {
    match p.funding {
        Funding::Owner(owner) => create_pda_account(
            owner,
            account,
            p.system_program,
            space,
            &crate::ID,
            signer_seeds,
        ),
        Funding::Allowance { delegation } => {
            use anchor_lang::solana_program::{program::invoke_signed, system_instruction};
            invoke_signed(
                &system_instruction::allocate(account.key, space as u64),
                &[account.clone(), p.system_program.clone()],
                &[signer_seeds],
            )?;
            invoke_signed(
                &system_instruction::assign(account.key, &crate::ID),
                &[account.clone(), p.system_program.clone()],
                &[signer_seeds],
            )?;
            OrderDelegate::fund_rent(delegation, account, space)
        }
    }
}

fn place(p: Placement, args: &PlaceOrderArgs) -> Result<()> {
    let owner = p.owner;
    let buy = args.side.is_buy();
    let (tick, escrow) = {
        let ladder = zero_copy::update::<IntervalBook, _>(p.book, |b| b.ladder())?;
        let tick = ladder.tick_of(args.limit_price)?;
        let escrow = match args.side {
            Side::Buy => Price(args.limit_price).value_up(Wh(args.quantity_wh))?.0,
            Side::Sell => args.quantity_wh,
        };
        (tick, escrow)
    };

    // The owner's balance: created at their first order.
    if p.balance.data_is_empty() {
        let bump = p.balance_bump;
        create(
            &p,
            p.balance,
            Balance::SPACE,
            &[seeds::BALANCE, owner.as_ref(), &[bump]],
        )?;
        init_zero_copy::<Balance>(p.balance, |b| {
            b.owner = owner;
            b.bump = bump;
        })?;
    }

    // The order: new, or the building's earlier one on this side, replaced.
    let previous = if p.order.data_is_empty() {
        None
    } else {
        Some(zero_copy::read::<Order>(p.order)?)
    };
    if let Some(old) = &previous {
        require_keys_eq!(old.owner, owner, TradingError::OrderOfPreviousOwner);
    }
    zero_copy::update::<Balance, _>(p.balance, |b| -> Result<()> {
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
    zero_copy::update::<IntervalBook, _>(p.book, |book| -> Result<()> {
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
    let bump = p.order_bump;
    if previous.is_none() {
        create(
            &p,
            p.order,
            Order::SPACE,
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
    program_common::pda::write_zero_copy(p.order, &order)?;

    // Escrow: lock the difference with the replaced order's (or return it).
    let held = previous.map_or(0, |o| o.escrow);
    let vault_authority_bump = p.market.load()?.vault_authority_bump;
    let owner_tokens = p.owner_tokens.to_account_info();
    if escrow >= held {
        let lock = escrow - held;
        match p.funding {
            Funding::Owner(signer) => {
                pay_in(p.token_program, &owner_tokens, p.vault, signer, lock)?
            }
            Funding::Allowance { .. } => {
                let approved = p.owner_tokens.delegate == Some(p.vault_authority.key()).into()
                    && p.owner_tokens.delegated_amount >= lock;
                require!(lock == 0 || approved, TradingError::AllowanceTooLow);
                pay_in_by_allowance(
                    p.token_program,
                    &owner_tokens,
                    p.vault,
                    p.vault_authority,
                    vault_authority_bump,
                    lock,
                )?
            }
        }
    } else {
        pay_out(
            p.token_program,
            p.vault,
            &owner_tokens,
            p.vault_authority,
            vault_authority_bump,
            held - escrow,
        )?;
    }
    program_common::emit_event!(OrderPlaced {
        interval: args.interval,
        lfdi: args.lfdi,
        owner,
        by: p.by,
        side: args.side,
        quantity_wh: args.quantity_wh,
        limit_price: args.limit_price,
        escrow,
        replaced: previous.is_some(),
    });
    Ok(())
}
