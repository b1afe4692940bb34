//! Oracle: attested, batched meter readings with replay protection.
//!
//! A bridge (attestor) signs each batch of readings; the keeper submits the batch inside an
//! Ed25519 program instruction, followed by `submit_readings`, which reads that instruction
//! through the instructions sysvar and applies exactly the bytes that were verified. The
//! keeper pays fees but can neither forge nor alter readings.
use anchor_lang::prelude::*;
#[cfg(feature = "sbf-upstream")]
use solana_compiler_builtins as _;

pub mod attestation;
pub mod errors;
pub mod events;
pub mod instructions;
pub mod rules;
pub mod state;

pub use errors::OracleError;
pub use instructions::*;
pub use state::*;

declare_id!("EsBoZvjvba2DKd6uoiKssseWpPYKkabLNfaeLBBPSP6i");

#[program]
pub mod oracle {
    use super::*;

    pub fn initialize_oracle(
        ctx: Context<InitializeOracle>,
        args: InitializeOracleArgs,
    ) -> Result<()> {
        instructions::initialize_oracle::handler(ctx, args)
    }

    pub fn set_attestors(
        ctx: Context<ConfigAdmin>,
        attestors: Vec<Pubkey>,
        quorum: u8,
    ) -> Result<()> {
        instructions::config_admin::set_attestors_handler(ctx, attestors, quorum)
    }

    pub fn set_limits(ctx: Context<ConfigAdmin>, limits: ReadingLimits) -> Result<()> {
        instructions::config_admin::set_limits_handler(ctx, limits)
    }

    pub fn set_paused(ctx: Context<ConfigAdmin>, paused_until: i64) -> Result<()> {
        instructions::config_admin::set_paused_handler(ctx, paused_until)
    }

    pub fn skip_batches(ctx: Context<ConfigAdmin>, through: u64) -> Result<()> {
        instructions::config_admin::skip_batches_handler(ctx, through)
    }

    pub fn propose_authority(ctx: Context<ConfigAdmin>, new_authority: Pubkey) -> Result<()> {
        instructions::config_admin::propose_authority_handler(ctx, new_authority)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn accept_authority(ctx: Context<AcceptAuthority>) -> Result<()> {
        instructions::config_admin::accept_authority_handler(ctx)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn init_meter_state(ctx: Context<InitMeterState>) -> Result<()> {
        instructions::init_meter_state::handler(ctx)
    }

    pub fn read_meter_state(ctx: Context<ReadMeterState>) -> Result<VerifiedEnergy> {
        instructions::read_meter_state::handler(ctx)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn submit_readings<'info>(
        ctx: Context<'info, SubmitReadings<'info>>,
        ed25519_instruction_index: u8,
    ) -> Result<()> {
        instructions::submit_readings::handler(ctx, ed25519_instruction_index)
    }
}
