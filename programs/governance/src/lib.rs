//! Governance: a proof-of-authority council that owns every privileged action on campus.
//!
//! Members propose instructions (program, accounts, data); once `threshold` current members
//! approve and the timelock has passed, anyone can execute the instruction, which runs by CPI
//! signed by the governance authority for that program, the PDA `["authority", program id]`.
//! Each GridTokenX program accepts only its own such PDA as its authority, so a signature
//! given to one program is worth nothing to another. Changes to the council itself go
//! through proposals too. Any member can veto an approved proposal during its timelock. Any
//! single guardian can pause a GridTokenX program at once; unpausing needs a proposal.
use anchor_lang::prelude::*;
#[cfg(feature = "sbf-upstream")]
use solana_compiler_builtins as _;

pub mod errors;
pub mod events;
pub mod instructions;
pub mod state;

pub use errors::GovernanceError;
pub use instructions::*;
pub use state::*;

declare_id!("EsRSaJAs12jFCHiwPFFsFjzmtT4ydKKMRLknN7Zj2AmH");

#[program]
pub mod governance {
    use super::*;

    pub fn initialize_council(
        ctx: Context<InitializeCouncil>,
        config: CouncilConfig,
    ) -> Result<()> {
        instructions::initialize_council::handler(ctx, config)
    }

    #[access_control(ctx.accounts.validate(&instruction))]
    pub fn propose(ctx: Context<Propose>, instruction: ProposedInstruction) -> Result<()> {
        instructions::propose::handler(ctx, instruction)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn approve(ctx: Context<Vote>) -> Result<()> {
        instructions::vote::approve_handler(ctx)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn reject(ctx: Context<Vote>) -> Result<()> {
        instructions::vote::reject_handler(ctx)
    }

    #[access_control(ctx.accounts.validate(ctx.remaining_accounts))]
    pub fn execute<'info>(ctx: Context<'info, Execute<'info>>) -> Result<()> {
        instructions::execute::handler(ctx)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn cancel(ctx: Context<Cancel>) -> Result<()> {
        instructions::cancel::handler(ctx)
    }

    pub fn update_council(ctx: Context<UpdateCouncil>, config: CouncilConfig) -> Result<()> {
        instructions::update_council::handler(ctx, config)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn guardian_pause(ctx: Context<GuardianPause>) -> Result<()> {
        instructions::guardian_pause::handler(ctx)
    }
}
