//! The IEEE 2030.5 Time resource: the campus time zone and its daylight-saving rules (from the
//! IANA database bundled with jiff, so that a host without /usr/share/zoneinfo answers the
//! same), and a quality that says whether the host clock is synchronised.
use anyhow::{anyhow, Result};
use jiff::tz::TimeZone;
use jiff::Timestamp;

pub use sep2::{LocalTime, QUALITY_SYNCHRONISED, QUALITY_UNCOORDINATED};

/// The campus's local time rules.
#[derive(Clone, Debug)]
pub struct CampusClock {
    zone: TimeZone,
}

impl CampusClock {
    /// `name`: an IANA time zone, e.g. "Asia/Bangkok", "Europe/Berlin", "UTC".
    pub fn new(name: &str) -> Result<CampusClock> {
        let zone = TimeZone::get(name).map_err(|e| anyhow!("time zone {name:?}: {e}"))?;
        Ok(CampusClock { zone })
    }

    pub fn at(&self, now: i64, quality: u8) -> LocalTime {
        let Ok(ts) = Timestamp::from_second(now) else {
            return LocalTime {
                current_time: now,
                tz_offset: 0,
                dst_offset: 0,
                dst_start_time: 0,
                dst_end_time: 0,
                local_time: now,
                quality,
            };
        };
        let info = self.zone.to_offset_info(ts);
        let current = info.offset().seconds();
        // The DST period of the year around `now`: the first transition into DST from one
        // year back, and the transition out of it after that.
        let from = Timestamp::from_second(now - 366 * 86_400).unwrap_or(ts);
        let mut start = None;
        let mut end = None;
        let mut standard = (!info.dst().is_dst()).then_some(current);
        for t in self.zone.following(from).take(8) {
            if t.timestamp().as_second() > now + 366 * 86_400 {
                break;
            }
            if t.dst().is_dst() {
                if end.is_none() || t.timestamp().as_second() <= now {
                    start = Some((t.timestamp().as_second(), t.offset().seconds()));
                    end = None;
                }
            } else {
                standard.get_or_insert(t.offset().seconds());
                if start.is_some() && end.is_none() {
                    end = Some(t.timestamp().as_second());
                    if end > Some(now) {
                        break;
                    }
                }
            }
        }
        let standard = standard.unwrap_or(current);
        let (dst_start_time, dst_end_time, dst_offset) = match (start, end) {
            (Some((s, dst)), Some(e)) => (s, e, dst - standard),
            _ => (0, 0, 0),
        };
        LocalTime {
            current_time: now,
            tz_offset: standard,
            dst_offset,
            dst_start_time,
            dst_end_time,
            local_time: now + i64::from(current),
            quality,
        }
    }
}

/// Whether the kernel says the host clock is synchronised (NTP, PTP: `adjtimex`).
pub fn host_clock_synchronised() -> bool {
    // SAFETY: adjtimex with modes = 0 only reads the kernel's clock state into the struct.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    state >= 0 && state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_without_dst() {
        let clock = CampusClock::new("Asia/Bangkok").unwrap();
        let t = clock.at(1_790_000_000, 4);
        assert_eq!((t.tz_offset, t.dst_offset), (7 * 3600, 0));
        assert_eq!((t.dst_start_time, t.dst_end_time), (0, 0));
        assert_eq!(t.local_time, 1_790_000_000 + 7 * 3600);
    }

    #[test]
    fn a_zone_with_dst_in_summer_and_in_winter() {
        let clock = CampusClock::new("Europe/Berlin").unwrap();
        // 2026-07-01 12:00 UTC: CEST. DST 2026 runs from 29 March 01:00 UTC to 25 October
        // 01:00 UTC.
        let summer = clock.at(1_782_907_200, 4);
        assert_eq!((summer.tz_offset, summer.dst_offset), (3600, 3600));
        assert_eq!(summer.dst_start_time, 1_774_746_000);
        assert_eq!(summer.dst_end_time, 1_792_890_000);
        assert_eq!(summer.local_time, 1_782_907_200 + 7200);
        // 2026-11-23 12:00 UTC: CET; the year's period is the one just ended.
        let winter = clock.at(1_795_435_200, 4);
        assert_eq!((winter.tz_offset, winter.dst_offset), (3600, 3600));
        assert_eq!(winter.local_time, 1_795_435_200 + 3600);
        assert_eq!(
            (winter.dst_start_time, winter.dst_end_time),
            (1_774_746_000, 1_792_890_000)
        );
    }

    #[test]
    fn an_unknown_zone_is_refused() {
        assert!(CampusClock::new("Mars/Olympus_Mons").is_err());
    }
}
