//! Property tests of the reading rules (`oracle::rules`), the code the program runs for every
//! reading: whatever cadence, order, gaps, sizes and suspensions a meter or an attestor
//! chooses, the energy verified never exceeds what the meter's capacity allows over the
//! time it was active, and N readings never verify more than one reading over the same span.
use oracle::attestation::Reading;
use oracle::rules::{assess, within_bound, Battery, LastReading, MeterFacts, Verdict};
use oracle::ReadingLimits;
use proptest::prelude::*;
use registry::MeterCapacity;

const T0: i64 = 1_790_000_000;

fn capacity() -> MeterCapacity {
    MeterCapacity {
        generation_w: 50_000,
        storage_wh: 30_000,
        max_import_w: 80_000,
        max_discharge_w: 15_000,
    }
}

fn limits(min_interval_s: u32, tolerance_bps: u16) -> ReadingLimits {
    ReadingLimits {
        max_future_skew_s: 60,
        min_interval_s,
        max_age_s: 86_400,
        tolerance_bps,
    }
}

/// One step an adversary takes: wait, then post a reading (time offset from the clock,
/// register increments, possibly going backwards), or have the meter suspended/reactivated.
#[derive(Clone, Debug)]
enum Step {
    Reading {
        wait_s: u32,
        /// Reading time relative to the clock after waiting (may lead or lag it).
        offset_s: i32,
        import_inc: i64,
        export_inc: i64,
    },
    Suspend {
        wait_s: u32,
    },
    Reactivate {
        wait_s: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u32..4_000, -200i32..100, -1_000i64..200_000, -1_000i64..200_000).prop_map(
            |(wait_s, offset_s, import_inc, export_inc)| Step::Reading {
                wait_s,
                offset_s,
                import_inc,
                export_inc,
            }
        ),
        1 => (0u32..20_000).prop_map(|wait_s| Step::Suspend { wait_s }),
        1 => (0u32..20_000).prop_map(|wait_s| Step::Reactivate { wait_s }),
    ]
}

/// A meter's state as the program keeps it, driven by `assess` exactly as the program does.
#[derive(Default)]
struct Meter {
    last: Option<LastReading>,
    verified_import: u64,
    verified_export: u64,
    verified_renewable: u64,
    /// Active periods begun (each starts with a full battery, of grid energy).
    baselines: u64,
    /// Seconds between the first and last accepted reading of each active period, summed:
    /// the only time for which energy can have been verified.
    active_span_s: u64,
    period_start: Option<i64>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn verified_energy_never_exceeds_capacity_over_active_time(
        steps in proptest::collection::vec(step(), 1..60),
        min_interval_s in 1u32..900,
        tolerance_bps in 0u16..=10_000,
    ) {
        let limits = limits(min_interval_s, tolerance_bps);
        let mut now = T0;
        let mut active_since = Some(T0);
        let mut import_register: i64 = 1_000_000;
        let mut export_register: i64 = 2_000_000;
        let mut meter = Meter::default();
        for step in steps {
            match step {
                Step::Suspend { wait_s } => {
                    now += i64::from(wait_s);
                    active_since = None;
                }
                Step::Reactivate { wait_s } => {
                    now += i64::from(wait_s);
                    if active_since.is_none() {
                        active_since = Some(now);
                    }
                }
                Step::Reading { wait_s, offset_s, import_inc, export_inc } => {
                    now += i64::from(wait_s);
                    import_register = (import_register + import_inc).max(0);
                    export_register = (export_register + export_inc).max(0);
                    let reading = Reading {
                        timestamp: (now + i64::from(offset_s)) as u32,
                        import_wh: import_register as u64,
                        export_wh: export_register as u64,
                        quality: 0,
                    };
                    let facts = MeterFacts { capacity: capacity(), active_since };
                    let battery = match assess(meter.last.as_ref(), &reading, &facts, &limits, now) {
                        Ok(Verdict::Baseline { battery }) => {
                            meter.period_start = Some(i64::from(reading.timestamp));
                            meter.baselines += 1;
                            battery
                        }
                        Ok(Verdict::Delta { import_wh, export_wh, renewable_wh, battery }) => {
                            let last = meter.last.expect("a delta follows a reading");
                            meter.verified_import += import_wh;
                            meter.verified_export += export_wh;
                            meter.verified_renewable += renewable_wh;
                            prop_assert!(renewable_wh <= export_wh);
                            prop_assert!(battery.stored_grid_wh <= battery.stored_bound_wh);
                            prop_assert!(battery.stored_bound_wh <= capacity().storage_wh);
                            meter.active_span_s += (i64::from(reading.timestamp) - last.timestamp) as u64;
                            battery
                        }
                        Err(_) => continue,
                    };
                    meter.last = Some(LastReading {
                        timestamp: i64::from(reading.timestamp),
                        import_wh: reading.import_wh,
                        export_wh: reading.export_wh,
                        battery,
                    });
                }
            }
        }
        let c = capacity();
        prop_assert!(within_bound(meter.verified_export, c.max_export_w(), meter.active_span_s, tolerance_bps).unwrap(),
            "export {} Wh over {} s", meter.verified_export, meter.active_span_s);
        prop_assert!(within_bound(meter.verified_import, c.max_import_w, meter.active_span_s, tolerance_bps).unwrap(),
            "import {} Wh over {} s", meter.verified_import, meter.active_span_s);
        // The energy balance: export beyond generation capacity over the active time came
        // from a battery no larger than its capacity per active period, or from import.
        let beyond_generation = meter
            .verified_export
            .saturating_sub(c.storage_wh * meter.baselines)
            .saturating_sub(meter.verified_import);
        prop_assert!(within_bound(beyond_generation, c.generation_w, meter.active_span_s, tolerance_bps).unwrap(),
            "export {} Wh, import {} Wh, {} baselines over {} s",
            meter.verified_export, meter.verified_import, meter.baselines, meter.active_span_s);
        // RECs: renewable export never exceeds what the panels could generate.
        prop_assert!(within_bound(meter.verified_renewable, c.generation_w, meter.active_span_s, tolerance_bps).unwrap(),
            "renewable {} Wh over {} s", meter.verified_renewable, meter.active_span_s);
    }

    /// Whatever a building does with its battery (charge from the grid, hold, discharge at
    /// any time), the renewable export credited never includes grid energy: over any
    /// sequence of honest flows, it is at most what the panels really exported.
    #[test]
    fn grid_energy_is_never_credited_as_renewable(
        windows in proptest::collection::vec((0u64..10_000, 0u64..20_000, 0u64..15_000, any::<bool>(), any::<bool>()), 1..80),
    ) {
        // A physical building: each 15 minutes it generates `solar` (within capacity),
        // imports `import`, and either charges or discharges its battery; it exports what
        // it does not use. The test knows each Wh's origin; the rules see only registers.
        let c = capacity();
        let limits = limits(60, 1_000);
        let facts = MeterFacts { capacity: c, active_since: Some(T0) };
        let mut now = T0;
        let mut last = LastReading {
            timestamp: T0,
            import_wh: 0,
            export_wh: 0,
            battery: Battery::full(&c),
        };
        // The battery's real content by origin (it starts full of grid energy, as the rules
        // assume).
        let (mut grid_stored, mut solar_stored) = (c.storage_wh, 0u64);
        let (mut imported, mut exported) = (0u64, 0u64);
        let (mut solar_exported, mut credited) = (0u64, 0u64);
        for (solar, import, load, discharge, solar_first) in windows {
            now += 900;
            let solar = solar.min(12_500);
            // Import serves the load first; the rest charges the battery (up to capacity).
            let room = c.storage_wh - grid_stored - solar_stored;
            let import_to_battery = import.saturating_sub(load).min(room);
            let import = load.min(import) + import_to_battery;
            grid_stored += import_to_battery;
            let load_left = load.saturating_sub(import);
            // Solar serves the remaining load; then, discharging, the battery empties into
            // the export beside the solar surplus, its grid energy first or its solar energy
            // first (the building's choice; the rules cannot tell); charging, the surplus
            // fills the battery and the rest is exported.
            let solar_to_load = solar.min(load_left);
            let mut solar_out = solar - solar_to_load;
            let mut grid_out = 0;
            if discharge {
                const DISCHARGE_WH: u64 = 3_750;
                let from_solar = if solar_first {
                    let from_solar = solar_stored.min(DISCHARGE_WH);
                    grid_out = grid_stored.min(DISCHARGE_WH - from_solar);
                    from_solar
                } else {
                    grid_out = grid_stored.min(DISCHARGE_WH);
                    solar_stored.min(DISCHARGE_WH - grid_out)
                };
                grid_stored -= grid_out;
                solar_stored -= from_solar;
                solar_out += from_solar;
            } else {
                let charge = solar_out.min(c.storage_wh - grid_stored - solar_stored);
                solar_stored += charge;
                solar_out -= charge;
            }
            imported += import;
            exported += solar_out + grid_out;
            solar_exported += solar_out;
            let reading = Reading { timestamp: now as u32, import_wh: imported, export_wh: exported, quality: 0 };
            match assess(Some(&last), &reading, &facts, &limits, now) {
                Ok(Verdict::Delta { renewable_wh, battery, .. }) => {
                    credited += renewable_wh;
                    last = LastReading { timestamp: now, import_wh: imported, export_wh: exported, battery };
                }
                other => prop_assert!(false, "an honest building's reading was refused: {:?}", other),
            }
            prop_assert!(credited <= solar_exported, "{} Wh credited, {} Wh of solar exported", credited, solar_exported);
        }
    }

    /// Splitting a span into N readings never verifies more than one reading over it: if
    /// every piece is accepted, so is their sum in one reading.
    #[test]
    fn n_readings_verify_no_more_than_one(
        pieces in proptest::collection::vec((60u32..3_600, 0u64..100_000), 1..40),
    ) {
        let limits = limits(60, 1_000);
        let facts = MeterFacts { capacity: capacity(), active_since: Some(T0) };
        let baseline = LastReading { timestamp: T0, import_wh: 0, export_wh: 0, battery: Battery::full(&facts.capacity) };
        let mut last = baseline;
        let mut now = T0;
        let mut verified = 0u64;
        let mut renewable = 0u64;
        for (dt, export) in &pieces {
            now += i64::from(*dt);
            let reading = Reading { timestamp: now as u32, import_wh: 0, export_wh: last.export_wh + export, quality: 0 };
            if let Ok(Verdict::Delta { export_wh, renewable_wh, battery, .. }) = assess(Some(&last), &reading, &facts, &limits, now) {
                verified += export_wh;
                renewable += renewable_wh;
                last = LastReading { timestamp: now, import_wh: 0, export_wh: reading.export_wh, battery };
            }
        }
        // The same energy as one reading over the whole span from the baseline.
        let one = Reading { timestamp: last.timestamp as u32, import_wh: 0, export_wh: verified, quality: 0 };
        if last.timestamp > T0 {
            let judged = assess(Some(&baseline), &one, &facts, &limits, last.timestamp);
            let Ok(Verdict::Delta { import_wh: 0, export_wh, renewable_wh, .. }) = judged else {
                return Err(TestCaseError::fail(format!("one reading refused: {judged:?}")));
            };
            prop_assert_eq!(export_wh, verified);
            prop_assert!(renewable <= renewable_wh, "{} renewable in pieces, {} in one", renewable, renewable_wh);
        } else {
            prop_assert_eq!(verified, 0);
        }
    }
}
