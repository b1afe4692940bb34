//! The reading rules: whether a meter's new reading is accepted, and how much energy it
//! verifies. Pure functions, shared by the program and the bridge (which applies them before
//! it signs, so that it attests only what the chain accepts).
//!
//! A reading is accepted when
//! - the meter is Active, and the reading was taken in its current active period (at or
//!   after registration, its last reactivation or its last capacity change: the registry's
//!   `Meter::active_since`; a capacity change starts a new period so that a new capacity
//!   never applies to energy measured before it), no earlier than `max_age_s`
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
//!
//! **Energy balance (the battery).** Beyond generation, export can only come from the
//! battery or from what was imported. The rules keep, per meter, an upper bound on what its
//! battery could hold (`stored_bound_wh`): at a baseline it is the battery's capacity
//! (`storage_wh`: whatever happened before is unknown); in a window of `elapsed` seconds with
//! deltas `import` and `export`, the export must satisfy
//! `export <= stored_bound + generation_w x elapsed x (1 + tolerance) + import`, and the
//! bound becomes `min(storage_wh, stored_bound + generation allowance + import - export)`.
//! So over any sequence, verified export <= generation capacity x active time x (1 +
//! tolerance) + storage per active period + verified import, whatever the cadence.
//!
//! The storage term is credited once per period, not once ever, on purpose: what the battery
//! held when a period began is unknown (it may have charged from the panels or the grid while
//! the meter was suspended, or before a new battery was declared), so a baseline assumes it
//! full, as a real battery may be. Starting periods is the campus authority's act
//! (reactivation, capacity change), not the meter's, so a meter cannot mint storage credit
//! by itself; and the whole battery credited per period is physically deliverable.
//!
//! **Renewable energy (RECs).** Of what the battery could hold, the rules keep an upper bound
//! on the grid energy (`stored_grid_wh`: imported, possibly stored, not yet exported; the
//! whole capacity at a baseline). A window's export is counted as grid energy first, as far
//! as that bound and the window's import allow; only the rest is renewable
//! (`renewable_wh`), which RECs certify. Counting grid first never certifies grid energy:
//! over any sequence, the renewable export credited plus the renewable energy the battery
//! could still hold stays within the generation allowance. GRID, the energy itself, is
//! minted for all verified export, grid energy delivered back included.
use registry::MeterCapacity;

use crate::attestation::Reading;
use crate::errors::OracleError;
use crate::state::ReadingLimits;

/// What the registry says about a meter, as the rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterFacts {
    pub capacity: MeterCapacity,
    /// When the meter's current Active period began (registration, reactivation or capacity
    /// change: `Meter::active_since`); `None` if it is not Active.
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

/// What the rules know of a meter's battery after its last accepted reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Battery {
    /// Upper bound on the energy the battery could hold, Wh.
    pub stored_bound_wh: u64,
    /// Upper bound on the grid energy among it, Wh (at most `stored_bound_wh`).
    pub stored_grid_wh: u64,
}

impl Battery {
    /// What a baseline assumes: full, of grid energy.
    pub fn full(capacity: &MeterCapacity) -> Battery {
        Battery {
            stored_bound_wh: capacity.storage_wh,
            stored_grid_wh: capacity.storage_wh,
        }
    }
}

/// The last accepted reading of a meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastReading {
    pub timestamp: i64,
    pub import_wh: u64,
    pub export_wh: u64,
    pub battery: Battery,
}

/// What an accepted reading does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First reading of an active period: it sets the registers and verifies no energy; the
    /// battery is assumed full of grid energy.
    Baseline { battery: Battery },
    /// Adds these amounts to the meter's verified import and export (`renewable_wh` of the
    /// export is renewable), and leaves the battery at `battery`.
    Delta {
        import_wh: u64,
        export_wh: u64,
        renewable_wh: u64,
        battery: Battery,
    },
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
        _ => {
            return Ok(Verdict::Baseline {
                battery: Battery::full(&meter.capacity),
            })
        }
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
    let (renewable_wh, battery) = balance(
        &last.battery,
        import_wh,
        export_wh,
        allowance_wh(capacity.generation_w, elapsed, limits.tolerance_bps)?,
        capacity.storage_wh,
    )?;
    Ok(Verdict::Delta {
        import_wh,
        export_wh,
        renewable_wh,
        battery,
    })
}

/// The energy balance of one window: export beyond `generation_wh` (the generation
/// allowance) and `import_wh` must have been in the battery (`before`); returns the
/// renewable part of the export (grid energy counted first) and the battery after, its bound
/// at most `storage_wh`.
pub fn balance(
    before: &Battery,
    import_wh: u64,
    export_wh: u64,
    generation_wh: u64,
    storage_wh: u64,
) -> Result<(u64, Battery), OracleError> {
    // The battery never holds more than it can: a bound carried from before a capacity cut
    // is cut too (the registry also starts a new period then, so this is belt and braces).
    let stored_before = before.stored_bound_wh.min(storage_wh);
    let available = u128::from(stored_before) + u128::from(generation_wh) + u128::from(import_wh);
    let export = u128::from(export_wh);
    if export > available {
        return Err(OracleError::ExportBeyondStorage);
    }
    let stored_bound = (available - export).min(u128::from(storage_wh));
    // Grid energy that could leave in this window: what the battery may hold of it, and
    // what was imported meanwhile; the export takes it first.
    let grid_available =
        u128::from(before.stored_grid_wh.min(stored_before)) + u128::from(import_wh);
    let grid_out = export.min(grid_available);
    let stored_grid = (grid_available - grid_out).min(stored_bound);
    // Each is at most `storage_wh` or `export_wh`: they fit a u64.
    let narrow = |v: u128| u64::try_from(v).map_err(|_| OracleError::Overflow);
    Ok((
        narrow(export - grid_out)?,
        Battery {
            stored_bound_wh: narrow(stored_bound)?,
            stored_grid_wh: narrow(stored_grid)?,
        },
    ))
}

/// What `power_w` delivers in `elapsed_s` with the tolerance, in whole Wh rounded down:
/// `power_w x elapsed_s x (1 + tolerance) / 3600`.
pub fn allowance_wh(power_w: u64, elapsed_s: u64, tolerance_bps: u16) -> Result<u64, OracleError> {
    let factor = 10_000 + u64::from(tolerance_bps);
    // In u64 for any realistic meter (a u128 division costs hundreds of compute units on
    // SBF, and this runs for every reading); the exact u128 path otherwise.
    if let Some(scaled) = power_w
        .checked_mul(elapsed_s)
        .and_then(|p| p.checked_mul(factor))
    {
        return Ok(scaled / (3600 * 10_000));
    }
    let scaled = u128::from(power_w)
        .checked_mul(u128::from(elapsed_s))
        .and_then(|p| p.checked_mul(u128::from(factor)))
        .ok_or(OracleError::Overflow)?;
    u64::try_from(scaled / (3600 * 10_000)).map_err(|_| OracleError::Overflow)
}

/// Whether `energy_wh <= power_w * elapsed_s / 3600 * (1 + tolerance)`, in exact integer
/// arithmetic (both sides scaled by 3600 * 10000), so that bounds add up exactly.
pub fn within_bound(
    energy_wh: u64,
    power_w: u64,
    elapsed_s: u64,
    tolerance_bps: u16,
) -> Result<bool, OracleError> {
    let factor = 10_000 + u64::from(tolerance_bps);
    // In u64 when both sides fit (u128 arithmetic is slow on SBF), exactly as in u128.
    if let (Some(lhs), Some(rhs)) = (
        energy_wh.checked_mul(3600 * 10_000),
        power_w
            .checked_mul(elapsed_s)
            .and_then(|p| p.checked_mul(factor)),
    ) {
        return Ok(lhs <= rhs);
    }
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
    /// The battery as a baseline leaves it: full, of grid energy.
    const FULL: Battery = Battery {
        stored_bound_wh: 30_000,
        stored_grid_wh: 30_000,
    };
    const LAST: LastReading = LastReading {
        timestamp: T0,
        import_wh: 10_000,
        export_wh: 20_000,
        battery: FULL,
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
        // 900 s of 50 kW panels with 10 %: 13,750 Wh of generation allowance. The export
        // (5,000 Wh) is counted as grid energy first (30,000 in the battery, 2,000 imported):
        // none of it is renewable, and the battery keeps 30,000 - 3,000 of grid energy.
        assert_eq!(
            judge(&reading(900, 12_000, 25_000), T0 + 900),
            Ok(Verdict::Delta {
                import_wh: 2_000,
                export_wh: 5_000,
                renewable_wh: 0,
                battery: Battery {
                    stored_bound_wh: 30_000,
                    stored_grid_wh: 27_000,
                },
            })
        );
    }

    /// The attack of issue 25: every 15 minutes for 12 hours, no import, export at full
    /// generation plus battery discharge power (65 kW x 900 s = 16,250 Wh). Panels at full
    /// power for 12 hours and a full battery give at most 600,000 + 30,000 Wh (693,000 with
    /// the 10 % tolerance); the power bound alone let 780,000 through.
    #[test]
    fn export_beyond_generation_is_credited_only_from_what_the_battery_could_hold() {
        let mut last = LAST;
        let mut verified = 0u64;
        let mut skipped = Vec::new();
        for window in 1..=48i64 {
            let now = T0 + window * 900;
            let r = reading(window * 900, 10_000, 20_000 + 16_250 * window as u64);
            match judge_from(&last, &r, now) {
                Ok(Verdict::Delta {
                    export_wh, battery, ..
                }) => {
                    verified += export_wh;
                    last = LastReading {
                        timestamp: now,
                        import_wh: r.import_wh,
                        export_wh: r.export_wh,
                        battery,
                    };
                }
                Err(reason) => skipped.push((window, reason)),
                Ok(Verdict::Baseline { .. }) => unreachable!("not a first reading"),
            }
        }
        // Each window draws 16,250 - 13,750 = 2,500 Wh from the battery: 12 windows empty
        // 30,000 Wh; then nothing more is credited (the exports skip, never halt).
        assert_eq!(verified, 12 * 16_250);
        assert_eq!(skipped.len(), 36);
        assert!(skipped
            .iter()
            .all(|(_, r)| *r == OracleError::ExportBeyondStorage));
        // Exactly the balance's bound over the accepted span (12 windows): the panels'
        // allowance plus the full battery, nothing more.
        assert_eq!(
            verified,
            allowance_wh(CAPACITY.generation_w, 12 * 900, LIMITS.tolerance_bps).unwrap()
                + CAPACITY.storage_wh
        );
    }

    /// An honest building charges its battery from the campus grid at night and discharges
    /// it at noon: the noon export is verified (GRID is minted for delivered energy) but the
    /// part that was grid energy is not renewable (no REC).
    #[test]
    fn grid_energy_cycled_through_the_battery_is_not_renewable() {
        // After a first day the battery holds no grid energy: renewable only.
        let empty = LastReading {
            battery: Battery {
                stored_bound_wh: 0,
                stored_grid_wh: 0,
            },
            ..LAST
        };
        // Night, 4 hours: 20 kWh imported into the battery, nothing exported.
        let night = reading(4 * 3_600, 30_000, 20_000);
        let Ok(Verdict::Delta {
            renewable_wh: 0,
            battery: after_night,
            ..
        }) = judge_from(&empty, &night, T0 + 4 * 3_600)
        else {
            panic!("the night charge is a valid reading");
        };
        assert_eq!(
            after_night,
            Battery {
                stored_bound_wh: 30_000,
                stored_grid_wh: 20_000
            }
        );
        // Noon, one hour later: 30 kWh exported, 10 of them from the panels, 20 from the
        // battery: all verified, 10 renewable.
        let night_reading = LastReading {
            timestamp: T0 + 4 * 3_600,
            import_wh: 30_000,
            export_wh: 20_000,
            battery: after_night,
        };
        let noon = reading(5 * 3_600, 30_000, 50_000);
        assert_eq!(
            judge_from(&night_reading, &noon, T0 + 5 * 3_600),
            Ok(Verdict::Delta {
                import_wh: 0,
                export_wh: 30_000,
                renewable_wh: 10_000,
                battery: Battery {
                    stored_bound_wh: 30_000,
                    stored_grid_wh: 0
                },
            })
        );
    }

    /// A battery bound carried from before a storage cut never exceeds the new storage.
    #[test]
    fn a_bound_from_a_bigger_battery_is_cut_to_the_storage() {
        let before = Battery {
            stored_bound_wh: 30_000,
            stored_grid_wh: 30_000,
        };
        // 10 kWh battery now: 10 kWh of it and 5 kWh of generation may leave, not 35.
        assert_eq!(
            balance(&before, 0, 15_001, 5_000, 10_000),
            Err(OracleError::ExportBeyondStorage)
        );
        assert_eq!(
            balance(&before, 0, 15_000, 5_000, 10_000),
            Ok((
                5_000,
                Battery {
                    stored_bound_wh: 0,
                    stored_grid_wh: 0
                }
            ))
        );
    }

    fn judge_from(last: &LastReading, r: &Reading, now: i64) -> Result<Verdict, OracleError> {
        assess(Some(last), r, &ACTIVE, &LIMITS, now)
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
            Ok(Verdict::Baseline { battery: FULL })
        );
        // Older than max_age before the clock.
        let late = T0 + 200_000;
        assert_eq!(
            assess(None, &first(late - 86_401), &ACTIVE, &LIMITS, late),
            Err(OracleError::ReadingTooOld)
        );
        assert_eq!(
            assess(None, &first(late - 86_400), &ACTIVE, &LIMITS, late),
            Ok(Verdict::Baseline { battery: FULL })
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
            Ok(Verdict::Baseline { battery: FULL })
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
    fn the_generation_allowance_is_exact_in_both_paths() {
        // 50 kW x 900 s x 1.1 = 13,750 Wh.
        assert_eq!(allowance_wh(50_000, 900, 1_000), Ok(13_750));
        // Rounded down: 1 W for 1 s is 0 Wh.
        assert_eq!(allowance_wh(1, 1, 0), Ok(0));
        // Beyond u64 in the product, exact through u128.
        let big = allowance_wh(u64::MAX / 2, 3_600, 0).unwrap();
        assert_eq!(big, u64::MAX / 2);
        assert_eq!(
            allowance_wh(u64::MAX, u64::MAX, u16::MAX),
            Err(OracleError::Overflow)
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
