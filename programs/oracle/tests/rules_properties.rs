//! Property tests of the reading rules (`oracle::rules`), the code the program runs for every
//! reading: whatever cadence, order, gaps, sizes and suspensions a meter or an attestor
//! chooses, the energy verified never exceeds what the meter's capacity allows over the
//! time it was active, and N readings never verify more than one reading over the same span.
use oracle::attestation::Reading;
use oracle::rules::{assess, within_bound, LastReading, MeterFacts, Verdict};
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
                    match assess(meter.last.as_ref(), &reading, &facts, &limits, now) {
                        Ok(Verdict::Baseline) => {
                            meter.period_start = Some(i64::from(reading.timestamp));
                        }
                        Ok(Verdict::Delta { import_wh, export_wh }) => {
                            let last = meter.last.expect("a delta follows a reading");
                            meter.verified_import += import_wh;
                            meter.verified_export += export_wh;
                            meter.active_span_s += (i64::from(reading.timestamp) - last.timestamp) as u64;
                        }
                        Err(_) => continue,
                    }
                    meter.last = Some(LastReading {
                        timestamp: i64::from(reading.timestamp),
                        import_wh: reading.import_wh,
                        export_wh: reading.export_wh,
                    });
                }
            }
        }
        let c = capacity();
        prop_assert!(within_bound(meter.verified_export, c.max_export_w(), meter.active_span_s, tolerance_bps).unwrap(),
            "export {} Wh over {} s", meter.verified_export, meter.active_span_s);
        prop_assert!(within_bound(meter.verified_import, c.max_import_w, meter.active_span_s, tolerance_bps).unwrap(),
            "import {} Wh over {} s", meter.verified_import, meter.active_span_s);
    }

    /// Splitting a span into N readings never verifies more than one reading over it: if
    /// every piece is accepted, so is their sum in one reading.
    #[test]
    fn n_readings_verify_no_more_than_one(
        pieces in proptest::collection::vec((60u32..3_600, 0u64..100_000), 1..40),
    ) {
        let limits = limits(60, 1_000);
        let facts = MeterFacts { capacity: capacity(), active_since: Some(T0) };
        let baseline = LastReading { timestamp: T0, import_wh: 0, export_wh: 0 };
        let mut last = baseline;
        let mut now = T0;
        let mut verified = 0u64;
        for (dt, export) in &pieces {
            now += i64::from(*dt);
            let reading = Reading { timestamp: now as u32, import_wh: 0, export_wh: last.export_wh + export, quality: 0 };
            if let Ok(Verdict::Delta { export_wh, .. }) = assess(Some(&last), &reading, &facts, &limits, now) {
                verified += export_wh;
                last = LastReading { timestamp: now, import_wh: 0, export_wh: reading.export_wh };
            }
        }
        // The same energy as one reading over the whole span from the baseline.
        let one = Reading { timestamp: last.timestamp as u32, import_wh: 0, export_wh: verified, quality: 0 };
        if last.timestamp > T0 {
            prop_assert_eq!(
                assess(Some(&baseline), &one, &facts, &limits, last.timestamp),
                Ok(Verdict::Delta { import_wh: 0, export_wh: verified })
            );
        } else {
            prop_assert_eq!(verified, 0);
        }
    }
}
