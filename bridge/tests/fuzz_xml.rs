//! Property-based fuzzing of everything that reads a meter's body: no input panics the bridge,
//! and whatever is refused is refused with a 400-class reason.
mod common;

use bridge::normalize::register_readings;
use proptest::prelude::*;
use sep2::{MirrorMeterReading, MirrorMeterReadingList, MirrorUsagePoint};

/// Every parser the request path uses, on one body.
fn parse_everything(body: &str) {
    let _ = sep2::root_element(body);
    if let Ok((_, mup)) = sep2::parse::<MirrorUsagePoint>(body, &["MirrorUsagePoint"]) {
        let _ = sep2::parse_hex(&mup.device_lfdi, 20);
        let _ = sep2::parse_hex(&mup.mrid, 16);
        let _ = sep2::parse_hex_u16(&mup.role_flags);
        for mmr in &mup.mirror_meter_readings {
            let _ = register_readings(mmr, None);
        }
    }
    if let Ok((_, list)) = sep2::parse::<MirrorMeterReadingList>(body, &["MirrorMeterReadingList"])
    {
        for mmr in &list.readings {
            let _ = register_readings(mmr, None);
        }
    }
    if let Ok((_, mmr)) = sep2::parse::<MirrorMeterReading>(body, &["MirrorMeterReading"]) {
        let _ = register_readings(&mmr, None);
    }
}

fn valid_documents() -> Vec<String> {
    let t = 1_790_000_000;
    vec![
        common::mup_xml(
            &"AB".repeat(20),
            "0A01",
            "03",
            vec![
                common::mmr("0B01", 1, 1_000, t, true),
                common::mmr("0B02", 19, 5, t, true),
            ],
        ),
        common::mmr_list_xml(vec![common::mmr("0B01", 1, 1_000, t, true)]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(body in "\\PC{0,400}") {
        parse_everything(&body);
    }

    #[test]
    fn xml_like_text_never_panics(body in "(<[A-Za-z:]{1,12}( [a-z:]{1,6}=\"[^\"<]{0,12}\")*/?>|</[A-Za-z]{1,12}>|[0-9A-Fa-f -]{0,12}|&[a-z#0-9]{0,5};?){0,40}") {
        parse_everything(&body);
    }

    #[test]
    fn mutated_valid_documents_never_panic(doc in 0usize..2, cuts in proptest::collection::vec((0usize..4_000, any::<u8>()), 1..8)) {
        let mut bytes = valid_documents()[doc].clone().into_bytes();
        for (at, byte) in cuts {
            if bytes.is_empty() { break; }
            let at = at % bytes.len();
            match byte % 3 {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        parse_everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_number_in_a_reading_is_converted_exactly_or_refused(value in any::<i64>(), power in any::<i8>(), start in any::<i64>(), duration in any::<u32>()) {
        let mut mmr = common::mmr("0B01", 1, value, 0, true);
        mmr.reading.as_mut().unwrap().time_period = Some(sep2::DateTimeInterval { duration, start });
        mmr.reading_type.as_mut().unwrap().power_of_ten_multiplier = Some(power);
        if let Ok(readings) = register_readings(&mmr, None) {
            let r = readings[0];
            prop_assert!((-9..=9).contains(&power) && value >= 0);
            let exact = i128::from(value) * 10i128.pow(u32::from(power.max(0).unsigned_abs())) / 10i128.pow(u32::from(power.min(0).unsigned_abs()));
            prop_assert_eq!(i128::from(r.wh), exact);
        }
    }
}
