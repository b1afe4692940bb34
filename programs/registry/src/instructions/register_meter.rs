use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::MeterRegistered;
// `LFDI_LEN` is used by the IDL derive of `RegisterMeterArgs` (it expands the `Lfdi` alias).
#[allow(unused_imports)]
use crate::identity::{sfdi_from_lfdi, Lfdi, LFDI_LEN};
use crate::state::{seeds, BuildingKind, Campus, Meter, MeterCapacity, MeterStatus};
use program_common::pda::{create_pda_account, write_account};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct RegisterMeterArgs {
    pub lfdi: Lfdi,
    /// Must equal the SFDI derived from `lfdi`; catches a mistyped identity.
    pub sfdi: u64,
    pub building_kind: BuildingKind,
    pub capacity: MeterCapacity,
}

/// Binds a meter's LFDI to its owner's wallet. The campus authority registers; the owner
/// signs too, consenting to the binding, and pays for the account.
#[derive(Accounts)]
#[instruction(args: RegisterMeterArgs)]
pub struct RegisterMeter<'info> {
    #[account(
        mut,
        seeds = [seeds::CAMPUS],
        bump = campus.bump,
        has_one = authority @ RegistryError::Unauthorized,
    )]
    pub campus: Account<'info, Campus>,
    pub authority: Signer<'info>,
    #[account(mut)]
    pub owner: Signer<'info>,
    /// CHECK: the meter's PDA, created by the handler (see `pda`); `validate` refuses an
    /// address that already holds a meter.
    #[account(mut, seeds = [seeds::METER, args.lfdi.as_ref()], bump)]
    pub meter: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

impl RegisterMeter<'_> {
    pub fn validate(&self, args: &RegisterMeterArgs) -> Result<()> {
        require!(
            !self.campus.is_paused(Clock::get()?.unix_timestamp),
            RegistryError::Paused
        );
        require!(
            self.meter.data_is_empty(),
            RegistryError::MeterAlreadyRegistered
        );
        require!(args.lfdi != [0u8; 20], RegistryError::InvalidLfdi);
        require!(
            args.sfdi == sfdi_from_lfdi(&args.lfdi),
            RegistryError::SfdiMismatch
        );
        args.capacity.validate()
    }
}

pub fn handler(ctx: Context<RegisterMeter>, args: RegisterMeterArgs) -> Result<()> {
    let a = &ctx.accounts;
    let bump = ctx.bumps.meter;
    create_pda_account(
        &a.owner.to_account_info(),
        &a.meter.to_account_info(),
        &a.system_program.to_account_info(),
        Meter::SPACE,
        &crate::ID,
        &[seeds::METER, args.lfdi.as_ref(), &[bump]],
    )?;
    let index = ctx.accounts.campus.next_meter_index()?;
    let now = Clock::get()?.unix_timestamp;
    let meter = Meter {
        lfdi: args.lfdi,
        sfdi: args.sfdi,
        owner: ctx.accounts.owner.key(),
        building_kind: args.building_kind,
        capacity: args.capacity,
        status: MeterStatus::Active,
        index,
        registered_at: now,
        status_changed_at: now,
        capacity_changed_at: now,
        bump,
    };
    write_account(&ctx.accounts.meter, &meter)?;
    program_common::emit_event!(MeterRegistered {
        meter: ctx.accounts.meter.key(),
        lfdi: meter.lfdi,
        sfdi: meter.sfdi,
        owner: meter.owner,
        index,
        building_kind: meter.building_kind,
        capacity: meter.capacity,
    });
    Ok(())
}
