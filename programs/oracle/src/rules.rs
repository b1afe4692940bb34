//! The reading rules: whether a meter's new reading is accepted, and how much energy it
//! verifies. Pure functions, shared by the program and the bridge (which applies them before
//! it signs, so that it attests only what the chain accepts).
//!
//! A reading is accepted when
//! - the meter is Active, and the reading was taken in its current active period (at or
//!   after registration, or after its last reactivation), no earlier than `max_age_s`
//!   before the cluster clock and no later than `max_future_skew_s` after it;
//! - it is the first of the active period (a *baseline*: it sets the registers and verifies
//!   nothing), or it is at least `min_interval_s` after the last accepted reading, with
//!   registers that did not go down, and with deltas the meter could physically deliver in
//!   the elapsed time: import at most `max_import_w`, export at most `generation_w +
//!   max_discharge_w`, each x elapsed x (1 + tolerance).
//!
//! The bound is power x time, so N readings over a span T verify at most what one reading
//! over T would: the allowances add up to exactly the allowance of the whole span, whatever
//! the cadence (no per-reading battery allowance).
use registry::MeterCapacity;

use crate::attestation::Reading;
use crate::errors::OracleError;
use crate::state::ReadingLimits;

/// What the registry says about a meter, as the rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterFacts {
    pub capacity: MeterCapacity,
    /// When the meter's current Active period began (registration or reactivation);
    /// `None` if it is not Active.
    pub active_since: Option<i64>,
}

impl MeterFacts {
    pub fn of(meter: &registry::Meter) -> MeterFacts {
        MeterFacts {
            capacity: meter.capacity,
            active_since: meter.active_since(),
        }
    }
}

/// The last accepted reading of a meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastReading {
    pub timestamp: i64,
    pub import_wh: u64,
    pub export_wh: u64,
}

/// What an accepted reading does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First reading of an active period: it sets the registers and verifies no energy.
    Baseline,
    /// Adds these amounts to the meter's verified import and export.
    Delta { import_wh: u64, export_wh: u64 },
}

/// Judges `reading` against the meter's last accepted reading (`None` before the first).
pub fn assess(
    last: Option<&LastReading>,
    reading: &Reading,
    meter: &MeterFacts,
    limits: &ReadingLimits,
    now: i64,
) -> Result<Verdict, OracleError> {
    let active_since = meter.active_since.ok_or(OracleError::MeterNotActive)?;
    let ts = i64::from(reading.timestamp);
    let latest_allowed = now
        .checked_add(i64::from(limits.max_future_skew_s))
        .ok_or(OracleError::Overflow)?;
    if ts > latest_allowed {
        return Err(OracleError::TimestampInFuture);
    }
    if ts < active_since {
        return Err(OracleError::TimestampBeforeActivation);
    }
    let oldest_allowed = now
        .checked_sub(i64::from(limits.max_age_s))
        .ok_or(OracleError::Overflow)?;
    if ts < oldest_allowed {
        return Err(OracleError::ReadingTooOld);
    }
    let last = match last {
        // A reading before the current active period began (or none at all): whatever the
        // meter measured while suspended is not verified, and no allowance accrued.
        Some(last) if last.timestamp >= active_since => last,
        _ => return Ok(Verdict::Baseline),
    };
    if ts <= last.timestamp {
        return Err(OracleError::TimestampNotIncreasing);
    }
    // ts > last.timestamp, so elapsed is positive.
    let elapsed = u64::try_from(ts - last.timestamp).map_err(|_| OracleError::Overflow)?;
    if elapsed < u64::from(limits.min_interval_s) {
        return Err(OracleError::IntervalTooShort);
    }
    let import_wh = reading
        .import_wh
        .checked_sub(last.import_wh)
        .ok_or(OracleError::CounterDecreased)?;
    let export_wh = reading
        .export_wh
        .checked_sub(last.export_wh)
        .ok_or(OracleError::CounterDecreased)?;
    let capacity = &meter.capacity;
    if !within_bound(
        import_wh,
        capacity.max_import_w,
        elapsed,
        limits.tolerance_bps,
    )? {
        return Err(OracleError::ImplausibleImport);
    }
    if !within_bound(
        export_wh,
        capacity.max_export_w(),
        elapsed,
        limits.tolerance_bps,
    )? {
        return Err(OracleError::ImplausibleExport);
    }
    Ok(Verdict::Delta {
        import_wh,
        export_wh,
    })
}

/// Whether `energy_wh <= power_w * elapsed_s / 3600 * (1 + tolerance)`, in exact integer
/// arithmetic (both sides scaled by 3600 * 10000), so that bounds add up exactly.
pub fn within_bound(
    energy_wh: u64,
    power_w: u64,
    elapsed_s: u64,
    tolerance_bps: u16,
) -> Result<bool, OracleError> {
    let lhs = u128::from(energy_wh)
        .checked_mul(3600 * 10_000)
        .ok_or(OracleError::Overflow)?;
    let rhs = u128::from(power_w)
        .checked_mul(u128::from(elapsed_s))
        .and_then(|p| p.checked_mul(10_000 + u128::from(tolerance_bps)))
        .ok_or(OracleError::Overflow)?;
    Ok(lhs <= rhs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ReadingLimits = ReadingLimits {
        max_future_skew_s: 60,
        min_interval_s: 60,
        max_age_s: 86_400,
        tolerance_bps: 1_000,
    };
    const CAPACITY: MeterCapacity = MeterCapacity {
        generation_w: 50_000,
        storage_wh: 30_000,
        max_import_w: 80_000,
        max_discharge_w: 15_000,
    };
    const T0: i64 = 1_790_000_000;
    const ACTIVE: MeterFacts = MeterFacts {
        capacity: CAPACITY,
        active_since: Some(T0 - 3_600),
    };
    const LAST: LastReading = LastReading {
        timestamp: T0,
        import_wh: 10_000,
        export_wh: 20_000,
    };

    fn reading(dt: i64, import_wh: u64, export_wh: u64) -> Reading {
        Reading {
            timestamp: (T0 + dt) as u32,
            import_wh,
            export_wh,
            quality: 0,
        }
    }

    fn judge(r: &Reading, now: i64) -> Result<Verdict, OracleError> {
        assess(Some(&LAST), r, &ACTIVE, &LIMITS, now)
    }

    #[test]
    fn accepts_a_plausible_reading_and_reports_the_deltas() {
        assert_eq!(
            judge(&reading(900, 12_000, 25_000), T0 + 900),
            Ok(Verdict::Delta {
                import_wh: 2_000,
                export_wh: 5_000
            })
        );
    }

    #[test]
    fn bounds_are_exact_at_the_tolerance() {
        // 80 kW x 900 s = 20 kWh; +10 % = 22 kWh exactly.
        assert!(judge(&reading(900, 10_000 + 22_000, 20_000), T0 + 900).is_ok());
        assert_eq!(
            judge(&reading(900, 10_000 + 22_001, 20_000), T0 + 900),
            Err(OracleError::ImplausibleImport)
        );
        // (50 kW panels + 15 kW battery) x 900 s = 16.25 kWh; +10 % = 17.875 kWh.
        assert!(judge(&reading(900, 10_000, 20_000 + 17_875), T0 + 900).is_ok());
        assert_eq!(
            judge(&reading(900, 10_000, 20_000 + 17_876), T0 + 900),
            Err(OracleError::ImplausibleExport)
        );
    }

    #[test]
    fn the_battery_gives_no_allowance_per_reading() {
        // Before: each reading allowed the whole 30 kWh battery again. Now 2 minutes allow
        // (65 kW x 120 s) x 1.1 = 2,383.3 Wh, however full the battery is.
        assert!(judge(&reading(120, 10_000, 20_000 + 2_383), T0 + 120).is_ok());
        assert_eq!(
            judge(&reading(120, 10_000, 20_000 + 2_384), T0 + 120),
            Err(OracleError::ImplausibleExport)
        );
        assert_eq!(
            judge(&reading(120, 10_000, 20_000 + 30_000), T0 + 120),
            Err(OracleError::ImplausibleExport)
        );
    }

    #[test]
    fn time_must_advance_by_the_interval_and_not_lead_the_clock() {
        assert_eq!(
            judge(&reading(0, 10_000, 20_000), T0 + 900),
            Err(OracleError::TimestampNotIncreasing)
        );
        assert_eq!(
            judge(&reading(59, 10_000, 20_000), T0 + 900),
            Err(OracleError::IntervalTooShort)
        );
        assert_eq!(
            judge(&reading(961, 10_000, 20_000), T0 + 900),
            Err(OracleError::TimestampInFuture)
        );
        assert!(judge(&reading(960, 10_000, 20_000), T0 + 900).is_ok());
    }

    #[test]
    fn counters_must_not_decrease() {
        for r in [reading(900, 9_999, 20_000), reading(900, 10_000, 19_999)] {
            assert_eq!(judge(&r, T0 + 900), Err(OracleError::CounterDecreased));
        }
    }

    #[test]
    fn readings_before_the_active_period_or_too_old_are_refused() {
        let since = T0 - 3_600;
        // The first reading of a meter registered at `since`: a 1970 time is refused.
        let first = |ts: i64| Reading {
            timestamp: ts as u32,
            import_wh: 1,
            export_wh: 1,
            quality: 0,
        };
        assert_eq!(
            assess(None, &first(1), &ACTIVE, &LIMITS, T0),
            Err(OracleError::TimestampBeforeActivation)
        );
        assert_eq!(
            assess(None, &first(since - 1), &ACTIVE, &LIMITS, T0),
            Err(OracleError::TimestampBeforeActivation)
        );
        assert_eq!(
            assess(None, &first(since), &ACTIVE, &LIMITS, T0),
            Ok(Verdict::Baseline)
        );
        // Older than max_age before the clock.
        let late = T0 + 200_000;
        assert_eq!(
            assess(None, &first(late - 86_401), &ACTIVE, &LIMITS, late),
            Err(OracleError::ReadingTooOld)
        );
        assert_eq!(
            assess(None, &first(late - 86_400), &ACTIVE, &LIMITS, late),
            Ok(Verdict::Baseline)
        );
    }

    #[test]
    fn a_suspended_meter_is_refused_and_a_reactivated_one_starts_a_new_baseline() {
        let suspended = MeterFacts {
            active_since: None,
            ..ACTIVE
        };
        assert_eq!(
            assess(
                Some(&LAST),
                &reading(900, 10_000, 20_000),
                &suspended,
                &LIMITS,
                T0 + 900
            ),
            Err(OracleError::MeterNotActive)
        );
        // Reactivated a day later: the counters grew by far more than a day's capacity
        // would allow from LAST, but nothing of it is verified: a new baseline.
        let reactivated = MeterFacts {
            active_since: Some(T0 + 86_400),
            ..ACTIVE
        };
        let after = reading(86_400 + 60, 10_000_000, 90_000_000);
        assert_eq!(
            assess(Some(&LAST), &after, &reactivated, &LIMITS, T0 + 86_400 + 60),
            Ok(Verdict::Baseline)
        );
        // A reading stamped during the suspension is refused.
        let during = reading(3_600, 10_000, 20_000);
        assert_eq!(
            assess(
                Some(&LAST),
                &during,
                &reactivated,
                &LIMITS,
                T0 + 86_400 + 60
            ),
            Err(OracleError::TimestampBeforeActivation)
        );
    }

    #[test]
    fn huge_values_do_not_overflow_the_bound() {
        assert_eq!(
            within_bound(u64::MAX, u64::MAX, u64::MAX, u16::MAX),
            Err(OracleError::Overflow)
        );
        assert_eq!(
            within_bound(u64::MAX, 1_000_000_000, u64::from(u32::MAX), 10_000),
            Ok(false)
        );
    }
}
