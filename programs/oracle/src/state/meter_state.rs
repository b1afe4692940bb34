use anchor_lang::prelude::*;
use registry::MeterCapacity;

use crate::attestation::Reading;
use crate::errors::OracleError;
use crate::state::{seeds, ReadingLimits};

/// What the oracle has verified about one meter, at `[METER_STATE, lfdi]`. The energy-token
/// and trading programs trust these numbers (read them with `MeterState::load_checked`).
#[account]
#[derive(InitSpace, Debug)]
pub struct MeterState {
    pub lfdi: [u8; 20],
    pub meter_index: u16,
    /// Number of readings applied.
    pub reading_count: u64,
    /// Timestamp of the last reading, Unix seconds (0 before the first).
    pub last_timestamp: i64,
    /// Cumulative counters at the last reading, Wh.
    pub import_wh: u64,
    pub export_wh: u64,
    /// Counters at the first reading: energy before it was never verified by the oracle.
    pub baseline_import_wh: u64,
    pub baseline_export_wh: u64,
    pub last_quality: u8,
    /// Sequence number of the batch that carried the last reading.
    pub last_sequence: u64,
    pub bump: u8,
}

impl MeterState {
    pub const SPACE: usize = 8 + MeterState::INIT_SPACE;

    /// Exported energy verified since the meter's first reading, Wh.
    pub fn verified_export_wh(&self) -> Result<u64> {
        self.export_wh
            .checked_sub(self.baseline_export_wh)
            .ok_or_else(|| error!(OracleError::Overflow))
    }

    /// Imported energy verified since the meter's first reading, Wh.
    pub fn verified_import_wh(&self) -> Result<u64> {
        self.import_wh
            .checked_sub(self.baseline_import_wh)
            .ok_or_else(|| error!(OracleError::Overflow))
    }

    /// Reads a meter state for `lfdi` from an account another program was given, checking
    /// that the oracle owns it, that it is a `MeterState`, and that it sits at the PDA for
    /// `lfdi`: what a consuming program must check before trusting the numbers.
    pub fn load_checked(info: &AccountInfo, lfdi: &[u8; 20]) -> Result<MeterState> {
        require_keys_eq!(
            *info.owner,
            crate::ID,
            ErrorCode::AccountOwnedByWrongProgram
        );
        let data = info.try_borrow_data()?;
        let state = MeterState::try_deserialize(&mut &data[..])?;
        require!(state.lfdi == *lfdi, ErrorCode::ConstraintSeeds);
        let expected =
            Pubkey::create_program_address(&[seeds::METER_STATE, lfdi, &[state.bump]], &crate::ID)
                .map_err(|_| error!(ErrorCode::ConstraintSeeds))?;
        require_keys_eq!(*info.key, expected, ErrorCode::ConstraintSeeds);
        Ok(state)
    }

    /// Checks `reading` against this meter's history, its capacity and the limits.
    pub fn check(
        &self,
        reading: &Reading,
        capacity: &MeterCapacity,
        limits: &ReadingLimits,
        now: i64,
    ) -> Result<()> {
        let ts = i64::from(reading.timestamp);
        let latest_allowed = now
            .checked_add(i64::from(limits.max_future_skew_s))
            .ok_or(OracleError::Overflow)?;
        require!(ts <= latest_allowed, OracleError::TimestampInFuture);
        if self.reading_count == 0 {
            // The first reading sets the baseline; there is nothing to compare it with.
            return Ok(());
        }
        require!(
            ts > self.last_timestamp,
            OracleError::TimestampNotIncreasing
        );
        // ts > last_timestamp >= 0, so elapsed is positive and fits u64.
        let elapsed = u64::try_from(ts - self.last_timestamp).map_err(|_| OracleError::Overflow)?;
        require!(
            elapsed >= u64::from(limits.min_interval_s),
            OracleError::IntervalTooShort
        );
        let imported = reading
            .import_wh
            .checked_sub(self.import_wh)
            .ok_or(OracleError::CounterDecreased)?;
        let exported = reading
            .export_wh
            .checked_sub(self.export_wh)
            .ok_or(OracleError::CounterDecreased)?;
        require!(
            within_bound(
                imported,
                capacity.max_import_w,
                elapsed,
                0,
                limits.tolerance_bps
            )?,
            OracleError::ImplausibleImport
        );
        // A battery may empty itself into the grid on top of what the panels make.
        require!(
            within_bound(
                exported,
                capacity.generation_w,
                elapsed,
                capacity.storage_wh,
                limits.tolerance_bps
            )?,
            OracleError::ImplausibleExport
        );
        Ok(())
    }

    /// Records an accepted reading.
    pub fn apply(&mut self, reading: &Reading, sequence: u64) -> Result<()> {
        if self.reading_count == 0 {
            self.baseline_import_wh = reading.import_wh;
            self.baseline_export_wh = reading.export_wh;
        }
        self.reading_count = self
            .reading_count
            .checked_add(1)
            .ok_or(OracleError::Overflow)?;
        self.last_timestamp = i64::from(reading.timestamp);
        self.import_wh = reading.import_wh;
        self.export_wh = reading.export_wh;
        self.last_quality = reading.quality;
        self.last_sequence = sequence;
        Ok(())
    }
}

/// Whether `energy_wh <= (power_w * elapsed_s / 3600 + stored_wh) * (1 + tolerance)`, in
/// exact integer arithmetic (both sides scaled by 3600 * 10000). The physical plausibility
/// rule; the bridge applies the same one before it accepts a reading.
pub fn within_bound(
    energy_wh: u64,
    power_w: u64,
    elapsed_s: u64,
    stored_wh: u64,
    tolerance_bps: u16,
) -> Result<bool> {
    let overflow = || error!(OracleError::Overflow);
    let lhs = u128::from(energy_wh)
        .checked_mul(3600 * 10_000)
        .ok_or_else(overflow)?;
    let physical = u128::from(power_w)
        .checked_mul(u128::from(elapsed_s))
        .and_then(|p| p.checked_add(u128::from(stored_wh).checked_mul(3600)?))
        .ok_or_else(overflow)?;
    let rhs = physical
        .checked_mul(10_000 + u128::from(tolerance_bps))
        .ok_or_else(overflow)?;
    Ok(lhs <= rhs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ReadingLimits = ReadingLimits {
        max_future_skew_s: 60,
        min_interval_s: 60,
        tolerance_bps: 1_000,
    };
    const CAPACITY: MeterCapacity = MeterCapacity {
        generation_w: 50_000,
        storage_wh: 30_000,
        max_import_w: 80_000,
    };
    const T0: i64 = 1_790_000_000;

    fn state() -> MeterState {
        MeterState {
            lfdi: [1; 20],
            meter_index: 0,
            reading_count: 1,
            last_timestamp: T0,
            import_wh: 10_000,
            export_wh: 20_000,
            baseline_import_wh: 10_000,
            baseline_export_wh: 20_000,
            last_quality: 0,
            last_sequence: 1,
            bump: 255,
        }
    }

    fn reading(dt: i64, import_wh: u64, export_wh: u64) -> Reading {
        Reading {
            meter_index: 0,
            timestamp: (T0 + dt) as u32,
            import_wh,
            export_wh,
            quality: 0,
        }
    }

    fn code(r: Result<()>) -> u32 {
        match r {
            Err(anchor_lang::error::Error::AnchorError(e)) => e.error_code_number,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn check(r: &Reading, now: i64) -> Result<()> {
        state().check(r, &CAPACITY, &LIMITS, now)
    }

    #[test]
    fn accepts_plausible_reading() {
        // 15 minutes: up to 20 kWh import, 12.5 kWh + 30 kWh battery export, +10 %.
        assert!(check(&reading(900, 10_000 + 20_000, 20_000 + 42_500), T0 + 900).is_ok());
    }

    #[test]
    fn bounds_are_exact_at_the_tolerance() {
        // 80 kW * 900 s = 20 kWh; +10 % = 22 kWh exactly.
        assert!(check(&reading(900, 10_000 + 22_000, 20_000), T0 + 900).is_ok());
        assert_eq!(
            code(check(&reading(900, 10_000 + 22_001, 20_000), T0 + 900)),
            u32::from(OracleError::ImplausibleImport)
        );
        // (12.5 kWh + 30 kWh) * 1.1 = 46.75 kWh.
        assert!(check(&reading(900, 10_000, 20_000 + 46_750), T0 + 900).is_ok());
        assert_eq!(
            code(check(&reading(900, 10_000, 20_000 + 46_751), T0 + 900)),
            u32::from(OracleError::ImplausibleExport)
        );
    }

    #[test]
    fn rejects_time_going_back_or_too_fast() {
        assert_eq!(
            code(check(&reading(0, 10_000, 20_000), T0 + 900)),
            u32::from(OracleError::TimestampNotIncreasing)
        );
        assert_eq!(
            code(check(&reading(59, 10_000, 20_000), T0 + 900)),
            u32::from(OracleError::IntervalTooShort)
        );
        assert_eq!(
            code(check(&reading(961, 10_000, 20_000), T0 + 900)),
            u32::from(OracleError::TimestampInFuture)
        );
        assert!(check(&reading(960, 10_000, 20_000), T0 + 900).is_ok());
    }

    #[test]
    fn rejects_decreasing_counters() {
        for r in [reading(900, 9_999, 20_000), reading(900, 10_000, 19_999)] {
            assert_eq!(
                code(check(&r, T0 + 900)),
                u32::from(OracleError::CounterDecreased)
            );
        }
    }

    #[test]
    fn first_reading_sets_the_baseline() {
        let mut s = state();
        s.reading_count = 0;
        let r = reading(0, 5_000_000, 7_000_000);
        assert!(s.check(&r, &CAPACITY, &LIMITS, T0).is_ok());
        s.apply(&r, 3).unwrap();
        assert_eq!(s.baseline_export_wh, 7_000_000);
        assert_eq!(s.verified_export_wh().unwrap(), 0);
        let next = reading(900, 5_000_000, 7_001_000);
        s.check(&next, &CAPACITY, &LIMITS, T0 + 900).unwrap();
        s.apply(&next, 4).unwrap();
        assert_eq!(s.verified_export_wh().unwrap(), 1_000);
        assert_eq!(s.reading_count, 2);
        assert_eq!(s.last_sequence, 4);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let huge = MeterCapacity {
            generation_w: MeterCapacity::MAX_VALUE,
            storage_wh: MeterCapacity::MAX_VALUE,
            max_import_w: MeterCapacity::MAX_VALUE,
        };
        let r = Reading {
            meter_index: 0,
            timestamp: u32::MAX,
            import_wh: u64::MAX,
            export_wh: u64::MAX,
            quality: 0,
        };
        let s = state();
        let result = s.check(&r, &huge, &LIMITS, i64::from(u32::MAX));
        assert_eq!(code(result), u32::from(OracleError::ImplausibleImport));
    }
}
