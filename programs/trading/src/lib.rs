//! Trading: the campus energy market, a uniform-price call auction per interval.
//!
//! Each interval (15 minutes by default) has a book: aggregate buy and sell Wh on a fixed
//! price ladder (`IntervalBook`). A building's owner places at most one buy and one sell per
//! interval, each its own account (`Order`) with its escrow locked in the market's vaults,
//! until the interval's gate closes. Then anyone clears it, in order: the price and the
//! marginal rationing come from the ladder (`state::auction`), at a cost independent of the
//! number of orders; every order is then settled on its own into its owner's claimable
//! balance (`Balance`), from which owners withdraw (or a keeper sweeps to their accounts).
//! The keeper only cranks; it cannot choose who trades at what price. An owner may let a
//! delegate key (their building's energy-management system, through the keeper) place and
//! cancel the building's orders for them, never withdraw (`OrderDelegate`).
// `usize::is_multiple_of` is newer than the rustc in Solana's platform-tools.
#![allow(clippy::manual_is_multiple_of)]
use anchor_lang::prelude::*;
#[cfg(feature = "sbf-upstream")]
use solana_compiler_builtins as _;

pub mod errors;
pub mod events;
pub mod instructions;
pub mod state;

pub use errors::TradingError;
pub use instructions::*;
pub use state::*;

declare_id!("2UJY8zoCp9YGMx2vkRm6CmPg5FidxPHU9CXKmqsi9NyF");

#[program]
pub mod trading {
    use super::*;

    pub fn initialize_market(
        ctx: Context<InitializeMarket>,
        params: MarketParams,
        start_time: i64,
    ) -> Result<()> {
        instructions::initialize_market::handler(ctx, params, start_time)
    }

    pub fn set_params(ctx: Context<MarketAdmin>, params: MarketParams) -> Result<()> {
        instructions::admin::set_params_handler(ctx, params)
    }

    pub fn set_paused(ctx: Context<MarketAdmin>, paused_until: i64) -> Result<()> {
        instructions::admin::set_paused_handler(ctx, paused_until)
    }

    pub fn propose_authority(ctx: Context<MarketAdmin>, new_authority: Pubkey) -> Result<()> {
        instructions::admin::propose_authority_handler(ctx, new_authority)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn accept_authority(ctx: Context<AcceptMarketAuthority>) -> Result<()> {
        instructions::admin::accept_authority_handler(ctx)
    }

    pub fn withdraw_fees(ctx: Context<WithdrawFees>, quote: u64, base: u64) -> Result<()> {
        instructions::admin::withdraw_fees_handler(ctx, quote, base)
    }

    #[access_control(ctx.accounts.validate(interval))]
    pub fn open_interval(ctx: Context<OpenInterval>, interval: u64) -> Result<()> {
        instructions::open_interval::handler(ctx, interval)
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn place_order(ctx: Context<PlaceOrder>, args: PlaceOrderArgs) -> Result<()> {
        instructions::place_order::handler(ctx, args)
    }

    pub fn cancel_order(
        ctx: Context<CancelOrder>,
        interval: u64,
        lfdi: [u8; 20],
        side: Side,
    ) -> Result<()> {
        instructions::cancel_order::handler(ctx, interval, lfdi, side)
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn place_delegated_order(
        ctx: Context<PlaceDelegatedOrder>,
        args: PlaceOrderArgs,
    ) -> Result<()> {
        instructions::place_order::delegated_handler(ctx, args)
    }

    pub fn cancel_delegated_order(
        ctx: Context<CancelDelegatedOrder>,
        interval: u64,
        lfdi: [u8; 20],
        side: Side,
    ) -> Result<()> {
        instructions::cancel_order::delegated_handler(ctx, interval, lfdi, side)
    }

    #[access_control(ctx.accounts.validate(&lfdi, &delegate))]
    pub fn authorize_delegate(
        ctx: Context<AuthorizeDelegate>,
        lfdi: [u8; 20],
        delegate: Pubkey,
        rent_float: u64,
    ) -> Result<()> {
        instructions::authorize_delegate::handler(ctx, lfdi, delegate, rent_float)
    }

    #[access_control(ctx.accounts.validate(&lfdi))]
    pub fn revoke_delegate(ctx: Context<RevokeDelegate>, lfdi: [u8; 20]) -> Result<()> {
        instructions::revoke_delegate::handler(ctx, lfdi)
    }

    pub fn evict_order(
        ctx: Context<EvictOrder>,
        interval: u64,
        lfdi: [u8; 20],
        side: Side,
    ) -> Result<()> {
        instructions::evict_order::handler(ctx, interval, lfdi, side)
    }

    #[access_control(ctx.accounts.validate(interval))]
    pub fn clear_interval(ctx: Context<ClearInterval>, interval: u64) -> Result<()> {
        instructions::clear_interval::handler(ctx, interval)
    }

    #[access_control(ctx.accounts.validate(ctx.remaining_accounts))]
    pub fn settle_orders<'info>(
        ctx: Context<'info, SettleOrders<'info>>,
        interval: u64,
    ) -> Result<()> {
        instructions::settle_orders::handler(ctx, interval)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn close_book(ctx: Context<CloseBook>, interval: u64) -> Result<()> {
        instructions::close_book::handler(ctx, interval)
    }

    pub fn withdraw(ctx: Context<Withdraw>, base: u64, quote: u64) -> Result<()> {
        instructions::withdraw::withdraw_handler(ctx, base, quote)
    }

    pub fn sweep<'info>(ctx: Context<'info, Sweep<'info>>) -> Result<()> {
        instructions::withdraw::sweep_handler(ctx)
    }
}
