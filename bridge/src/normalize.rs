//! From IEEE 2030.5 MirrorMeterReadings to the oracle's integers: cumulative Wh, import or
//! export, Unix seconds, quality flags. A reading that cannot be converted exactly is refused,
//! never guessed.
use sep2::{parse_hex_u16, MirrorMeterReading, Reading, ReadingType, XmlError};

/// uom 72: watt-hours.
pub const UOM_WH: u8 = 72;
/// flowDirection 1: forward, delivered to the customer (the building imports).
pub const FLOW_FORWARD: u8 = 1;
/// flowDirection 19: reverse, received from the customer (the building exports).
pub const FLOW_REVERSE: u8 = 19;
/// accumulationBehaviour 3 (cumulative) and 9 (summation): a register that only grows.
pub const ACCUMULATION_CUMULATIVE: u8 = 3;
pub const ACCUMULATION_SUMMATION: u8 = 9;
/// kind 12: energy.
pub const KIND_ENERGY: u8 = 12;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Flow {
    Import,
    Export,
}

/// One register reading in the oracle's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisterReading {
    pub flow: Flow,
    /// The reading's time, Unix seconds: the end of its timePeriod (the register's value
    /// when the period closed), or of its MirrorReadingSet's period, or the
    /// MirrorMeterReading's lastUpdateTime.
    pub timestamp: u32,
    /// Start of the reading's period (= `timestamp` for an instant). A client may post the
    /// running period (start = now, duration = postRate): its start must not be in the
    /// future, its end may be (the attestor signs it once the time has come).
    #[serde(default)]
    pub start: u32,
    /// Cumulative register value, Wh.
    pub wh: u64,
    /// IEEE 2030.5 QualityFlags (bits 0-7; higher bits are refused).
    pub quality: u8,
}

/// What a MirrorMeterReading measures, as far as the bridge is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measures {
    /// A cumulative energy register in Wh, import or export, whole (no phase): a candidate
    /// for the meter's attested pair. `i8`: its powerOfTenMultiplier.
    Register(Flow, i8),
    /// Anything else the standard allows (power, reactive power, voltage, frequency, power
    /// factor, current, per-phase or delta energy...): stored, never attested.
    Other,
}

/// Classifies a ReadingType; refuses only what is malformed (a powerOfTenMultiplier
/// outside -9..9, which no reading could be scaled by).
pub fn classify(rt: &ReadingType) -> Result<Measures, XmlError> {
    let power = rt.power_of_ten_multiplier.unwrap_or(0);
    if !(-9..=9).contains(&power) {
        return Err(XmlError::values(format!(
            "powerOfTenMultiplier {power} is outside -9..9"
        )));
    }
    let whole = rt.phase.unwrap_or(0) == 0;
    let energy = rt.kind.is_none_or(|k| k == KIND_ENERGY);
    let register = matches!(
        rt.accumulation_behaviour,
        Some(ACCUMULATION_CUMULATIVE | ACCUMULATION_SUMMATION)
    );
    let flow = match rt.flow_direction {
        Some(FLOW_FORWARD) => Some(Flow::Import),
        Some(FLOW_REVERSE) => Some(Flow::Export),
        _ => None,
    };
    Ok(match (rt.uom, flow) {
        (Some(UOM_WH), Some(flow)) if whole && energy && register => {
            Measures::Register(flow, power)
        }
        _ => Measures::Other,
    })
}

/// One reading of any kind, as posted (value x 10^power in the ReadingType's unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Measurement {
    pub start: u32,
    /// The reading's time (see [`RegisterReading::timestamp`]).
    pub end: u32,
    pub value: i64,
    pub power: i8,
    pub quality: u8,
    pub tou_tier: Option<u8>,
}

/// The readings of a MirrorMeterReading of any kind, checked for well-formedness only
/// (value, times, qualityFlags).
pub fn measurements(
    mmr: &MirrorMeterReading,
    rt: &ReadingType,
) -> Result<Vec<Measurement>, XmlError> {
    let power = rt.power_of_ten_multiplier.unwrap_or(0);
    let mut out = Vec::new();
    let mut push = |reading: &Reading, fallback: Option<(i64, Option<i64>)>| {
        let value = reading
            .value
            .ok_or_else(|| XmlError::values("Reading has no value"))?;
        let (start, end) = period(reading, fallback)?;
        out.push(Measurement {
            start,
            end,
            value,
            power,
            quality: quality(reading)?,
            tou_tier: reading.tou_tier,
        });
        Ok::<(), XmlError>(())
    };
    for set in &mmr.reading_sets {
        let end = set
            .time_period
            .start
            .checked_add(i64::from(set.time_period.duration));
        for reading in &set.readings {
            push(reading, Some((set.time_period.start, end)))?;
        }
    }
    if let Some(reading) = &mmr.reading {
        push(reading, mmr.last_update_time.map(|t| (t, Some(t))))?;
    }
    Ok(out)
}

fn period(reading: &Reading, fallback: Option<(i64, Option<i64>)>) -> Result<(u32, u32), XmlError> {
    let (start, end) = match &reading.time_period {
        Some(p) => (p.start, p.start.checked_add(i64::from(p.duration))),
        None => fallback.ok_or_else(|| {
            XmlError::values("Reading has no timePeriod and its set has none either")
        })?,
    };
    let end = end.ok_or_else(|| XmlError::values("timePeriod end overflows"))?;
    Ok((to_timestamp(start)?, to_timestamp(end)?))
}

fn quality(reading: &Reading) -> Result<u8, XmlError> {
    match &reading.quality_flags {
        None => Ok(0),
        Some(text) => {
            let flags = parse_hex_u16(text).ok_or_else(|| {
                XmlError::values(format!("qualityFlags {text:?} is not HexBinary16"))
            })?;
            u8::try_from(flags).map_err(|_| {
                XmlError::values(format!("qualityFlags {flags:#06x} has undefined bits"))
            })
        }
    }
}

/// Checks a ReadingType describes a cumulative energy register in Wh, import or export.
pub fn check_reading_type(rt: &ReadingType) -> Result<(Flow, i8), XmlError> {
    match rt.uom {
        Some(UOM_WH) => {}
        Some(other) => return Err(XmlError::values(format!("uom {other} is not 72 (Wh)"))),
        None => return Err(XmlError::values("ReadingType has no uom")),
    }
    let flow = match rt.flow_direction {
        Some(FLOW_FORWARD) => Flow::Import,
        Some(FLOW_REVERSE) => Flow::Export,
        other => {
            return Err(XmlError::values(format!(
                "flowDirection {other:?} is neither 1 (forward) nor 19 (reverse)"
            )))
        }
    };
    match rt.accumulation_behaviour {
        Some(ACCUMULATION_CUMULATIVE | ACCUMULATION_SUMMATION) => {}
        other => {
            return Err(XmlError::values(format!(
                "accumulationBehaviour {other:?} is not cumulative (3) or summation (9)"
            )))
        }
    }
    if let Some(kind) = rt.kind {
        if kind != KIND_ENERGY {
            return Err(XmlError::values(format!("kind {kind} is not 12 (energy)")));
        }
    }
    let power = rt.power_of_ten_multiplier.unwrap_or(0);
    if !(-9..=9).contains(&power) {
        return Err(XmlError::values(format!(
            "powerOfTenMultiplier {power} is outside -9..9"
        )));
    }
    Ok((flow, power))
}

/// value x 10^power in whole Wh, if exact, non-negative and within u64.
pub fn to_wh(value: i64, power: i8) -> Result<u64, XmlError> {
    if value < 0 {
        return Err(XmlError::values(format!(
            "register value {value} is negative"
        )));
    }
    let value = value as u128;
    let scale = 10u128.pow(u32::from(power.unsigned_abs()));
    let wh = if power >= 0 {
        value.checked_mul(scale)
    } else if value.is_multiple_of(scale) {
        Some(value / scale)
    } else {
        return Err(XmlError::values(format!(
            "{value} x 10^{power} Wh is not a whole number of Wh"
        )));
    };
    wh.and_then(|w| u64::try_from(w).ok())
        .ok_or_else(|| XmlError::values("register value overflows"))
}

fn to_timestamp(t: i64) -> Result<u32, XmlError> {
    u32::try_from(t)
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| XmlError::values(format!("time {t} is outside 1970..2106")))
}

/// `fallback`: the (start, end) of the enclosing MirrorReadingSet, or the
/// MirrorMeterReading's lastUpdateTime twice.
fn one(
    reading: &Reading,
    flow: Flow,
    power: i8,
    fallback: Option<(i64, Option<i64>)>,
) -> Result<RegisterReading, XmlError> {
    let value = reading
        .value
        .ok_or_else(|| XmlError::values("Reading has no value"))?;
    let (start, timestamp) = period(reading, fallback)?;
    Ok(RegisterReading {
        flow,
        timestamp,
        start,
        wh: to_wh(value, power)?,
        quality: quality(reading)?,
    })
}

/// The register readings of one MirrorMeterReading. `known_type` is the ReadingType stored
/// for this MirrorMeterReading's mRID, used when the post does not repeat it.
pub fn register_readings(
    mmr: &MirrorMeterReading,
    known_type: Option<&ReadingType>,
) -> Result<Vec<RegisterReading>, XmlError> {
    let rt = mmr.reading_type.as_ref().or(known_type).ok_or_else(|| {
        XmlError::values(format!(
            "MirrorMeterReading {} has no ReadingType",
            mmr.mrid
        ))
    })?;
    let (flow, power) = check_reading_type(rt)?;
    let mut out = Vec::new();
    for set in &mmr.reading_sets {
        let set_end = set
            .time_period
            .start
            .checked_add(i64::from(set.time_period.duration));
        for reading in &set.readings {
            out.push(one(
                reading,
                flow,
                power,
                Some((set.time_period.start, set_end)),
            )?);
        }
    }
    if let Some(reading) = &mmr.reading {
        let at = mmr.last_update_time.map(|t| (t, Some(t)));
        out.push(one(reading, flow, power, at)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sep2::{DateTimeInterval, MirrorReadingSet};

    fn rt(flow: u8, power: i8) -> ReadingType {
        ReadingType {
            accumulation_behaviour: Some(9),
            commodity: Some(1),
            flow_direction: Some(flow),
            kind: Some(12),
            power_of_ten_multiplier: Some(power),
            uom: Some(72),
            ..ReadingType::default()
        }
    }

    fn reading(value: i64, start: i64, quality: Option<&str>) -> Reading {
        Reading {
            value: Some(value),
            time_period: Some(DateTimeInterval {
                duration: 60,
                start,
            }),
            quality_flags: quality.map(str::to_string),
            ..Reading::default()
        }
    }

    #[test]
    fn spec_example_value_and_multiplier() {
        // uom 72, powerOfTenMultiplier 3, value 125 -> 125 x 10^3 Wh.
        assert_eq!(to_wh(125, 3).unwrap(), 125_000);
        assert_eq!(to_wh(125_000, -3).unwrap(), 125);
        assert!(to_wh(125_001, -3).is_err());
        assert!(to_wh(-1, 0).is_err());
        assert!(to_wh(i64::MAX, 9).is_err());
    }

    #[test]
    fn import_and_export_registers() {
        let mut mmr = MirrorMeterReading {
            mrid: "01".into(),
            reading: Some(reading(5, 1_790_000_000, Some("01"))),
            reading_type: Some(rt(1, 3)),
            ..Default::default()
        };
        let r = register_readings(&mmr, None).unwrap();
        assert_eq!(
            r,
            vec![RegisterReading {
                flow: Flow::Import,
                timestamp: 1_790_000_060,
                start: 1_790_000_000,
                wh: 5_000,
                quality: 1
            }]
        );
        mmr.reading_type = Some(rt(19, 0));
        assert_eq!(register_readings(&mmr, None).unwrap()[0].flow, Flow::Export);
    }

    #[test]
    fn reading_sets_use_their_period_when_readings_have_none() {
        let mmr = MirrorMeterReading {
            mrid: "02".into(),
            reading_sets: vec![MirrorReadingSet {
                mrid: "03".into(),
                time_period: DateTimeInterval {
                    duration: 300,
                    start: 1_790_000_000,
                },
                readings: vec![Reading {
                    value: Some(7),
                    ..Reading::default()
                }],
            }],
            ..Default::default()
        };
        let r = register_readings(&mmr, Some(&rt(19, 0))).unwrap();
        assert_eq!(r[0].timestamp, 1_790_000_300);
        assert_eq!(r[0].wh, 7);
    }

    #[test]
    fn wrong_units_and_types_are_refused() {
        let cases = [
            ReadingType {
                uom: Some(38),
                ..rt(1, 0)
            },
            ReadingType {
                flow_direction: Some(0),
                ..rt(1, 0)
            },
            ReadingType {
                accumulation_behaviour: Some(4),
                ..rt(1, 0)
            },
            ReadingType {
                kind: Some(37),
                ..rt(1, 0)
            },
            ReadingType {
                power_of_ten_multiplier: Some(10),
                ..rt(1, 0)
            },
            ReadingType {
                uom: None,
                ..rt(1, 0)
            },
        ];
        for case in cases {
            let mmr = MirrorMeterReading {
                mrid: "01".into(),
                reading: Some(reading(1, 1_790_000_000, None)),
                reading_type: Some(case.clone()),
                ..Default::default()
            };
            let err = register_readings(&mmr, None).unwrap_err();
            assert_eq!(err.reason, sep2::ReasonCode::Values, "{case:?}");
        }
    }

    #[test]
    fn missing_type_time_or_value_and_bad_flags_are_refused() {
        let no_type = MirrorMeterReading {
            mrid: "01".into(),
            reading: Some(reading(1, 1_790_000_000, None)),
            ..Default::default()
        };
        assert!(register_readings(&no_type, None).is_err());
        let no_time = MirrorMeterReading {
            mrid: "01".into(),
            reading: Some(Reading {
                value: Some(1),
                ..Reading::default()
            }),
            reading_type: Some(rt(1, 0)),
            ..Default::default()
        };
        assert!(register_readings(&no_time, None).is_err());
        let no_value = MirrorMeterReading {
            mrid: "01".into(),
            reading: Some(Reading {
                value: None,
                ..reading(1, 1_790_000_000, None)
            }),
            reading_type: Some(rt(1, 0)),
            ..Default::default()
        };
        assert!(register_readings(&no_value, None).is_err());
        let high_flags = MirrorMeterReading {
            mrid: "01".into(),
            reading: Some(reading(1, 1_790_000_000, Some("0100"))),
            reading_type: Some(rt(1, 0)),
            ..Default::default()
        };
        assert!(register_readings(&high_flags, None).is_err());
        let year_2200 = MirrorMeterReading {
            mrid: "01".into(),
            reading: Some(reading(1, 7_258_118_400, None)),
            reading_type: Some(rt(1, 0)),
            ..Default::default()
        };
        assert!(register_readings(&year_2200, None).is_err());
    }
}
