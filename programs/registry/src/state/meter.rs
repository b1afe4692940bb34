use anchor_lang::prelude::*;

use crate::errors::RegistryError;

/// What a building is used for; drives its consumption profile.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum BuildingKind {
    Academic,
    Residential,
    Administrative,
    Athletic,
    Research,
    Support,
}

/// Whether a meter's readings are accepted.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum MeterStatus {
    Active,
    Suspended,
    /// Terminal: a retired meter never changes again.
    Retired,
}

/// What a meter can physically do; the oracle bounds reading deltas by it.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub struct MeterCapacity {
    /// Peak generation in watts.
    pub generation_w: u64,
    /// Battery capacity in watt-hours.
    pub storage_wh: u64,
    /// Peak draw from the campus grid in watts.
    pub max_import_w: u64,
}

impl MeterCapacity {
    /// 1 GW (or 1 GWh): far above any building, low enough that capacity x seconds fits in u64.
    pub const MAX_VALUE: u64 = 1_000_000_000;

    pub fn validate(&self) -> Result<()> {
        let in_range = |v: u64| v <= Self::MAX_VALUE;
        require!(
            in_range(self.generation_w)
                && in_range(self.storage_wh)
                && in_range(self.max_import_w)
                && (self.generation_w > 0 || self.max_import_w > 0),
            RegistryError::InvalidCapacity
        );
        Ok(())
    }
}

/// A campus meter, at the PDA `[METER, lfdi]`.
#[account]
#[derive(InitSpace, Debug)]
pub struct Meter {
    pub lfdi: [u8; 20],
    pub sfdi: u64,
    /// The building manager's wallet: receives the meter's tokens and trades for it.
    pub owner: Pubkey,
    pub building_kind: BuildingKind,
    pub capacity: MeterCapacity,
    pub status: MeterStatus,
    /// Compact index, unique on the campus, that reading batches use instead of the LFDI.
    pub index: u16,
    /// Unix time of registration.
    pub registered_at: i64,
    pub bump: u8,
}

impl Meter {
    pub const SPACE: usize = 8 + Meter::INIT_SPACE;

    pub fn is_active(&self) -> bool {
        self.status == MeterStatus::Active
    }

    /// Reads a meter from an account another program was given, checking that the registry
    /// owns it, that it is a `Meter`, and that it sits at the PDA for its LFDI.
    pub fn load_checked(info: &AccountInfo) -> Result<Meter> {
        require_keys_eq!(
            *info.owner,
            crate::ID,
            ErrorCode::AccountOwnedByWrongProgram
        );
        let data = info.try_borrow_data()?;
        let meter = Meter::try_deserialize(&mut &data[..])?;
        let expected = Pubkey::create_program_address(
            &[crate::seeds::METER, &meter.lfdi, &[meter.bump]],
            &crate::ID,
        )
        .map_err(|_| error!(ErrorCode::ConstraintSeeds))?;
        require_keys_eq!(*info.key, expected, ErrorCode::ConstraintSeeds);
        Ok(meter)
    }

    /// A retired meter stays retired, and a change to the current status is refused.
    pub fn check_status_change(&self, to: MeterStatus) -> Result<()> {
        require!(
            self.status != MeterStatus::Retired,
            RegistryError::MeterRetired
        );
        require!(self.status != to, RegistryError::StatusUnchanged);
        Ok(())
    }

    /// A retired meter's configuration can no longer change.
    pub fn check_mutable(&self) -> Result<()> {
        require!(
            self.status != MeterStatus::Retired,
            RegistryError::MeterRetired
        );
        Ok(())
    }
}
