use anchor_lang::prelude::*;

use crate::attestation::Reading;
use crate::errors::OracleError;
use crate::rules::{Battery, LastReading, Verdict};

/// What the oracle has verified about one meter, at `[METER_STATE, lfdi]`. The energy-token
/// and trading programs trust these numbers (read them with `MeterState::load_checked`).
/// Zero-copy: a batch updates 25 of them in place.
#[account(zero_copy)]
#[derive(Debug, PartialEq, Eq)]
pub struct MeterState {
    pub lfdi: [u8; 20],
    pub bump: u8,
    /// QualityFlags of the last accepted reading.
    pub last_quality: u8,
    pub _reserved: [u8; 2],
    /// Readings accepted, baselines included.
    pub reading_count: u64,
    /// Baselines taken: the first reading, and the first after each reactivation.
    pub baselines: u64,
    /// Timestamp of the last accepted reading, Unix seconds (0 before the first).
    pub last_timestamp: i64,
    /// The meter's cumulative registers at the last accepted reading, Wh.
    pub import_wh: u64,
    pub export_wh: u64,
    /// Energy verified by the oracle: the sum of accepted deltas, Wh. Nothing before a
    /// baseline counts, so this is what may be minted (export) or redeemed against (import).
    pub verified_import_wh: u64,
    pub verified_export_wh: u64,
    /// Sequence number of the batch that carried the last accepted reading.
    pub last_sequence: u64,
    /// Of the verified export, what was renewable (not grid energy cycled through the
    /// battery; `rules`): what RECs may certify, Wh.
    pub verified_renewable_wh: u64,
    /// Upper bounds on what the battery could hold after the last accepted reading, and on
    /// the grid energy among it, Wh (`rules::Battery`).
    pub stored_bound_wh: u64,
    pub stored_grid_wh: u64,
}

impl MeterState {
    pub const SPACE: usize = 8 + std::mem::size_of::<MeterState>();

    pub fn new(lfdi: [u8; 20], bump: u8) -> MeterState {
        MeterState {
            lfdi,
            bump,
            ..MeterState::zeroed()
        }
    }

    fn zeroed() -> MeterState {
        bytemuck::Zeroable::zeroed()
    }

    /// The last accepted reading, if any.
    pub fn last(&self) -> Option<LastReading> {
        (self.reading_count > 0).then_some(LastReading {
            timestamp: self.last_timestamp,
            import_wh: self.import_wh,
            export_wh: self.export_wh,
            battery: Battery {
                stored_bound_wh: self.stored_bound_wh,
                stored_grid_wh: self.stored_grid_wh,
            },
        })
    }

    /// Records an accepted reading and what `rules::assess` said it verifies.
    pub fn apply(&mut self, reading: &Reading, verdict: Verdict, sequence: u64) -> Result<()> {
        let overflow = || error!(OracleError::Overflow);
        let battery = match verdict {
            Verdict::Baseline { battery } => {
                self.baselines = self.baselines.checked_add(1).ok_or_else(overflow)?;
                battery
            }
            Verdict::Delta {
                import_wh,
                export_wh,
                renewable_wh,
                battery,
            } => {
                self.verified_import_wh = self
                    .verified_import_wh
                    .checked_add(import_wh)
                    .ok_or_else(overflow)?;
                self.verified_export_wh = self
                    .verified_export_wh
                    .checked_add(export_wh)
                    .ok_or_else(overflow)?;
                self.verified_renewable_wh = self
                    .verified_renewable_wh
                    .checked_add(renewable_wh)
                    .ok_or_else(overflow)?;
                battery
            }
        };
        self.stored_bound_wh = battery.stored_bound_wh;
        self.stored_grid_wh = battery.stored_grid_wh;
        self.reading_count = self.reading_count.checked_add(1).ok_or_else(overflow)?;
        self.last_timestamp = i64::from(reading.timestamp);
        self.import_wh = reading.import_wh;
        self.export_wh = reading.export_wh;
        self.last_quality = reading.quality;
        self.last_sequence = sequence;
        Ok(())
    }

    /// Reads the meter state for `lfdi` from an account another program was given: the
    /// oracle must own it and it must be a `MeterState` of that LFDI.
    ///
    /// No address derivation is needed (it costs about 1,500 compute units): only the oracle
    /// can write data into an account it owns (the runtime lets others assign an account to
    /// it only while its data is all zeros), and the oracle writes a `MeterState` only in
    /// `init_meter_state`, at `[METER_STATE, lfdi]` with that `lfdi`, or over an existing one.
    pub fn load_checked(info: &AccountInfo, lfdi: &[u8; 20]) -> Result<MeterState> {
        let state = Self::load_any(info)?;
        require!(state.lfdi == *lfdi, ErrorCode::ConstraintSeeds);
        Ok(state)
    }

    /// `load_checked` without the LFDI comparison: whichever meter's state `info` holds.
    pub fn load_any(info: &AccountInfo) -> Result<MeterState> {
        program_common::zero_copy::read::<MeterState>(info)
    }
}
