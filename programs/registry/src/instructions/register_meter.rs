use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::MeterRegistered;
use crate::identity::{sfdi_from_lfdi, Lfdi};
use crate::state::{seeds, BuildingKind, Campus, Meter, MeterCapacity, MeterStatus};

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
    // init_if_needed so that a second registration of one LFDI fails with
    // MeterAlreadyRegistered rather than the System program's generic "already in use".
    #[account(
        init_if_needed,
        payer = owner,
        space = Meter::SPACE,
        seeds = [seeds::METER, args.lfdi.as_ref()],
        bump,
    )]
    pub meter: Account<'info, Meter>,
    pub system_program: Program<'info, System>,
}

impl RegisterMeter<'_> {
    pub fn validate(&self, args: &RegisterMeterArgs) -> Result<()> {
        require!(!self.campus.paused, RegistryError::Paused);
        require!(!self.meter.is_registered(), RegistryError::MeterAlreadyRegistered);
        require!(args.lfdi != [0u8; 20], RegistryError::InvalidLfdi);
        require!(args.sfdi == sfdi_from_lfdi(&args.lfdi), RegistryError::SfdiMismatch);
        args.capacity.validate()
    }
}

pub fn handler(ctx: Context<RegisterMeter>, args: RegisterMeterArgs) -> Result<()> {
    let index = ctx.accounts.campus.next_meter_index()?;
    let meter = &mut ctx.accounts.meter;
    meter.lfdi = args.lfdi;
    meter.sfdi = args.sfdi;
    meter.owner = ctx.accounts.owner.key();
    meter.building_kind = args.building_kind;
    meter.capacity = args.capacity;
    meter.status = MeterStatus::Active;
    meter.index = index;
    meter.registered_at = Clock::get()?.unix_timestamp;
    meter.bump = ctx.bumps.meter;
    emit!(MeterRegistered {
        meter: meter.key(),
        lfdi: meter.lfdi,
        sfdi: meter.sfdi,
        owner: meter.owner,
        index,
        building_kind: meter.building_kind,
        capacity: meter.capacity,
    });
    Ok(())
}
