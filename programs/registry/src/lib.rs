//! Registry: the campus and its meters.
//!
//! A meter's identity is the LFDI of its IEEE 2030.5 device certificate (20 bytes); its
//! account is a PDA seeded by that LFDI, so one LFDI can be registered only once. Every
//! privileged instruction is signed by the campus authority: a bootstrap key at first, the
//! governance program's authority for the registry after a two-step hand-over
//! (`propose_authority`, then `accept_authority` signed by the new authority).
use anchor_lang::prelude::*;
#[cfg(feature = "sbf-upstream")]
use solana_compiler_builtins as _;

pub mod errors;
pub mod events;
pub mod identity;
pub mod instructions;
pub mod state;

pub use errors::RegistryError;
pub use instructions::*;
pub use state::*;

declare_id!("CdzpTgxzogHAaGzUjvzoqS99BVbXFz4oPg69uPv9oGDj");

#[program]
pub mod registry {
    use super::*;

    pub fn initialize_campus(ctx: Context<InitializeCampus>, name: String) -> Result<()> {
        instructions::initialize_campus::handler(ctx, name)
    }

    #[access_control(ctx.accounts.validate(&args))]
    pub fn register_meter(ctx: Context<RegisterMeter>, args: RegisterMeterArgs) -> Result<()> {
        instructions::register_meter::handler(ctx, args)
    }

    #[access_control(ctx.accounts.validate(status))]
    pub fn set_meter_status(ctx: Context<SetMeterStatus>, status: MeterStatus) -> Result<()> {
        instructions::set_meter_status::handler(ctx, status)
    }

    #[access_control(ctx.accounts.validate(&capacity))]
    pub fn update_meter_capacity(
        ctx: Context<UpdateMeterCapacity>,
        capacity: MeterCapacity,
    ) -> Result<()> {
        instructions::update_meter_capacity::handler(ctx, capacity)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn transfer_meter_ownership(ctx: Context<TransferMeterOwnership>) -> Result<()> {
        instructions::transfer_meter_ownership::handler(ctx)
    }

    #[access_control(ctx.accounts.validate(&new_authority))]
    pub fn propose_authority(ctx: Context<ProposeAuthority>, new_authority: Pubkey) -> Result<()> {
        instructions::transfer_authority::propose_handler(ctx, new_authority)
    }

    #[access_control(ctx.accounts.validate())]
    pub fn accept_authority(ctx: Context<AcceptAuthority>) -> Result<()> {
        instructions::transfer_authority::accept_handler(ctx)
    }

    pub fn set_paused(ctx: Context<SetPaused>, paused_until: i64) -> Result<()> {
        instructions::set_paused::handler(ctx, paused_until)
    }
}
