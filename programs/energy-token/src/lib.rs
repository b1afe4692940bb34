//! Energy token: GRID, the energy token (1 GRID = 1 kWh), minted exactly once from the
//! export the oracle verified and burnt against verified import; and Renewable Energy
//! Certificates (1 REC = 1 MWh of verified export), issued once per MWh and retired with a
//! permanent record.
//!
//! Both mints are classic SPL Token mints whose only authority is this program's
//! `[MINT_AUTHORITY]` PDA, without a freeze authority (see README "Energy token" for why
//! SPL Token rather than Token-2022). Each meter has a `MeterLedger` recording what was
//! drawn against its verified energy, so no sequence of calls mints a Wh twice.
// `usize::is_multiple_of` is newer than the rustc in Solana's platform-tools.
#![allow(clippy::manual_is_multiple_of)]
use anchor_lang::prelude::*;
#[cfg(feature = "sbf-upstream")]
use solana_compiler_builtins as _;

pub mod errors;
pub mod events;
pub mod instructions;
pub mod state;

pub use errors::TokenError;
pub use instructions::*;
pub use state::*;

declare_id!("DcA7Dee2nRt5WQ4Y7k92SCiDtRnQyYZCTAVPrLjpccG2");

#[program]
pub mod energy_token {
    use super::*;

    pub fn initialize_energy_token(ctx: Context<InitializeEnergyToken>) -> Result<()> {
        instructions::initialize::handler(ctx)
    }

    pub fn set_paused(ctx: Context<TokenAdmin>, paused_until: i64) -> Result<()> {
        instructions::admin::set_paused_handler(ctx, paused_until)
    }

    pub fn propose_authority(ctx: Context<TokenAdmin>, new_authority: Pubkey) -> Result<()> {
        instructions::admin::propose_authority_handler(ctx, new_authority)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn accept_authority(ctx: Context<AcceptTokenAuthority>) -> Result<()> {
        instructions::admin::accept_authority_handler(ctx)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn init_ledger(ctx: Context<InitLedger>) -> Result<()> {
        instructions::init_ledger::handler(ctx)
    }

    #[access_control(ctx.accounts.validate(ctx.remaining_accounts))]
    pub fn mint_generation<'info>(ctx: Context<'info, MintGeneration<'info>>) -> Result<()> {
        instructions::mint_generation::handler(ctx)
    }

    #[access_control(ctx.accounts.validate(ctx.remaining_accounts))]
    pub fn issue_rec<'info>(ctx: Context<'info, IssueRec<'info>>) -> Result<()> {
        instructions::issue_rec::handler(ctx)
    }

    #[access_control(ctx.accounts.validate(amount))]
    pub fn redeem_for_consumption(ctx: Context<RedeemForConsumption>, amount: u64) -> Result<()> {
        instructions::redeem_for_consumption::handler(ctx, amount)
    }

    pub fn read_retirement(ctx: Context<ReadRetirement>) -> Result<RetirementReport> {
        instructions::read_retirement::handler(ctx)
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn retire_rec(ctx: Context<RetireRec>, args: RetireRecArgs) -> Result<()> {
        instructions::retire_rec::handler(ctx, args)
    }
}
