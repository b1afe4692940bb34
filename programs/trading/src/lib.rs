//! Trading: the campus energy market, a uniform-price double auction per interval.
//!
//! Buildings place buy and sell orders of GRID against the campus quote token for an
//! interval (15 minutes by default), with their escrow locked in the market's vaults. Once
//! the interval ends, anyone clears it: the program computes the clearing price and every
//! fill on chain (`state::auction`) and credits the buildings' seats in the market account,
//! from which owners withdraw whenever they like (or a keeper sweeps balances to their
//! accounts). The keeper only cranks; it cannot choose who trades at what price.
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

    pub fn withdraw_fees(ctx: Context<WithdrawFees>, amount: u64) -> Result<()> {
        instructions::admin::withdraw_fees_handler(ctx, amount)
    }

    pub fn claim_seat(ctx: Context<ClaimSeat>) -> Result<()> {
        instructions::claim_seat::handler(ctx)
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn place_order(ctx: Context<PlaceOrder>, args: PlaceOrderArgs) -> Result<()> {
        instructions::place_order::handler(ctx, args)
    }

    pub fn cancel_order(ctx: Context<CancelOrder>, interval: u64, order: u16) -> Result<()> {
        instructions::cancel_order::handler(ctx, interval, order)
    }

    #[access_control(ctx.accounts.validate(interval))]
    pub fn clear_interval(ctx: Context<ClearInterval>, interval: u64) -> Result<()> {
        instructions::clear_interval::handler(ctx, interval)
    }

    pub fn withdraw(ctx: Context<Withdraw>, seat: u16, base: u64, quote: u64) -> Result<()> {
        instructions::withdraw::handler(ctx, seat, base, quote)
    }

    pub fn sweep<'info>(ctx: Context<'info, Sweep<'info>>, seats: Vec<u16>) -> Result<()> {
        instructions::sweep::handler(ctx, seats)
    }

    /// Closing happens in the accounts (`close = payer`) once `validate` holds.
    #[access_control(ctx.accounts.validate())]
    pub fn close_book(ctx: Context<CloseBook>, interval: u64) -> Result<()> {
        let _ = (ctx, interval);
        Ok(())
    }
}
