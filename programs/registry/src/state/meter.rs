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

/// What a meter can physically do; the oracle bounds reading deltas by it: import by
/// `max_import_w`, export by `generation_w + max_discharge_w`, each times the elapsed time,
/// however often readings arrive.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub struct MeterCapacity {
    /// Peak generation in watts.
    pub generation_w: u64,
    /// Battery capacity in watt-hours: the oracle bounds what export beyond generation it
    /// credits by what a battery this size could hold (`oracle::rules`).
    pub storage_wh: u64,
    /// Peak draw from the campus grid in watts.
    pub max_import_w: u64,
    /// Peak battery discharge power in watts (capacity x C-rate); 0 without a battery.
    pub max_discharge_w: u64,
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
                && in_range(self.max_discharge_w)
                && (self.generation_w > 0 || self.max_import_w > 0)
                && (self.storage_wh > 0 || self.max_discharge_w == 0),
            RegistryError::InvalidCapacity
        );
        Ok(())
    }

    /// Most power the meter can deliver to the grid: panels plus battery discharge.
    pub fn max_export_w(&self) -> u64 {
        // Both are at most MAX_VALUE (1e9), so the sum cannot overflow.
        self.generation_w + self.max_discharge_w
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
    /// Unix time of the last status change (registration counts as one). For an Active
    /// meter this is when its current active period began: the oracle verifies nothing
    /// measured before it.
    pub status_changed_at: i64,
    /// Unix time of the last capacity change (registration counts as one). The oracle's
    /// energy balance is bounded by the capacity, so a change starts a new baseline: the
    /// new capacity never applies to energy measured before it.
    pub capacity_changed_at: i64,
    pub bump: u8,
}

impl Meter {
    pub const SPACE: usize = 8 + Meter::INIT_SPACE;

    pub fn is_active(&self) -> bool {
        self.status == MeterStatus::Active
    }

    /// Reads a meter from an account another program was given, checking that the registry
    /// owns it and that it is a `Meter`.
    ///
    /// That is enough to know it is the meter of the LFDI inside, at its PDA, without
    /// deriving the address (which costs about 1,500 compute units): only the registry can
    /// write data into an account it owns (the runtime lets others assign an account to it
    /// only while its data is all zeros), and the registry writes a `Meter` only in
    /// `register_meter`, at `[METER, lfdi]` with that `lfdi`, or over an existing `Meter`.
    /// A caller that needs a particular meter compares `lfdi` (or uses `load_for`).
    pub fn load_checked(info: &AccountInfo) -> Result<Meter> {
        require_keys_eq!(
            *info.owner,
            crate::ID,
            ErrorCode::AccountOwnedByWrongProgram
        );
        let data = info.try_borrow_data()?;
        Meter::try_deserialize(&mut &data[..])
    }

    /// `load_checked`, and the meter must be the one of `lfdi`.
    pub fn load_for(info: &AccountInfo, lfdi: &[u8; 20]) -> Result<Meter> {
        let meter = Self::load_checked(info)?;
        require!(meter.lfdi == *lfdi, ErrorCode::ConstraintSeeds);
        Ok(meter)
    }

    /// Since when the oracle may verify this meter's readings under its current status and
    /// capacity: the later of the start of its Active period and its last capacity change.
    /// `None` unless the meter is Active.
    pub fn active_since(&self) -> Option<i64> {
        self.is_active()
            .then_some(self.status_changed_at.max(self.capacity_changed_at))
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
