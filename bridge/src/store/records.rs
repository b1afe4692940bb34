//! The register-reading log's compact layout.
//!
//! A key is `time << 32 | register id` (u64) and a value 30 fixed bytes, where the JSON
//! record under a `(time, "LFDI/MMR-mRID")` key took about 300 bytes: the readings of one
//! second at 10,000 meters (posted in random register order) now fill about 140 pages of
//! the tree instead of 1,200, and a commit rewrites that many (docs/benchmarks.md). The
//! register's names live once in the `register_ids` / `register_names` tables.
use anyhow::{bail, Result};

use super::StoredReading;
use crate::normalize::{Flow, RegisterReading};

/// `[flow u8][start u32][wh u64][quality u8][mirror u64][received_at i64]`, little-endian.
pub(super) const READING_BYTES: usize = 30;

/// The export queue position of a reading received at `received_at` (Unix seconds) after
/// position `last`: the next one, but never below the arrival time in microseconds, so
/// that a store restored from a backup, or a new one, gives positions above any the lost
/// store gave (the history exporter's cursor is one of those), and a position is never used
/// twice for different readings.
pub(super) fn export_position(last: u64, received_at: i64) -> u64 {
    let floor = u64::try_from(received_at)
        .unwrap_or(0)
        .saturating_mul(1_000_000);
    last.saturating_add(1).max(floor)
}

/// An export queue entry: `[register u32][time u32][the reading's READING_BYTES]`.
pub(super) const EXPORT_BYTES: usize = 8 + READING_BYTES;

pub(super) fn encode_export(
    register: u32,
    timestamp: u32,
    reading: &[u8; READING_BYTES],
) -> [u8; EXPORT_BYTES] {
    let mut out = [0u8; EXPORT_BYTES];
    out[0..4].copy_from_slice(&register.to_le_bytes());
    out[4..8].copy_from_slice(&timestamp.to_le_bytes());
    out[8..].copy_from_slice(reading);
    out
}

/// The register, time and reading of an export queue entry.
pub(super) fn split_export(bytes: &[u8; EXPORT_BYTES]) -> (u32, u32, &[u8; READING_BYTES]) {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (
        u32_at(0),
        u32_at(4),
        bytes[8..].try_into().expect("READING_BYTES"),
    )
}

/// The key of register `register`'s reading at `timestamp`: time first.
pub(super) fn reading_key(timestamp: u32, register: u32) -> u64 {
    (u64::from(timestamp) << 32) | u64::from(register)
}

/// The time and register of a reading key.
pub(super) fn split_key(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

pub(super) fn encode_reading(r: &StoredReading) -> [u8; READING_BYTES] {
    let mut out = [0u8; READING_BYTES];
    out[0] = match r.reading.flow {
        Flow::Import => 0,
        Flow::Export => 1,
    };
    out[1..5].copy_from_slice(&r.reading.start.to_le_bytes());
    out[5..13].copy_from_slice(&r.reading.wh.to_le_bytes());
    out[13] = r.reading.quality;
    out[14..22].copy_from_slice(&r.mirror.to_le_bytes());
    out[22..30].copy_from_slice(&r.received_at.to_le_bytes());
    out
}

/// The Wh of an encoded reading (the retry check needs nothing else).
pub(super) fn reading_wh(bytes: &[u8; READING_BYTES]) -> u64 {
    u64::from_le_bytes(bytes[5..13].try_into().expect("8 bytes"))
}

/// When an encoded reading was received (Unix seconds).
pub(super) fn reading_received_at(bytes: &[u8; READING_BYTES]) -> i64 {
    i64::from_le_bytes(bytes[22..30].try_into().expect("8 bytes"))
}

/// The reading of register `name` ("LFDI/MMR-mRID") at `timestamp`.
pub(super) fn decode_reading(
    name: &str,
    timestamp: u32,
    bytes: &[u8; READING_BYTES],
) -> Result<StoredReading> {
    let Some((lfdi, mmr)) = name.split_once('/') else {
        bail!("register name {name:?} is not LFDI/mRID");
    };
    let flow = match bytes[0] {
        0 => Flow::Import,
        1 => Flow::Export,
        other => bail!("stored reading has flow {other}"),
    };
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    Ok(StoredReading {
        lfdi: lfdi.to_string(),
        mirror: u64_at(14),
        mmr: mmr.to_string(),
        reading: RegisterReading {
            flow,
            timestamp,
            start: u32_at(1),
            wh: u64_at(5),
            quality: bytes[13],
        },
        received_at: u64_at(22) as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn readings_round_trip(
            lfdi in "[0-9A-F]{40}", mmr in "[0-9A-F]{1,32}", export in any::<bool>(),
            timestamp in any::<u32>(), start in any::<u32>(), wh in any::<u64>(),
            quality in any::<u8>(), mirror in any::<u64>(), received_at in any::<i64>(),
            register in any::<u32>(),
        ) {
            let r = StoredReading {
                lfdi: lfdi.clone(),
                mirror,
                mmr: mmr.clone(),
                reading: RegisterReading {
                    flow: if export { Flow::Export } else { Flow::Import },
                    timestamp, start, wh, quality,
                },
                received_at,
            };
            let bytes = encode_reading(&r);
            prop_assert_eq!(reading_wh(&bytes), wh);
            prop_assert_eq!(split_key(reading_key(timestamp, register)), (timestamp, register));
            prop_assert_eq!(decode_reading(&format!("{lfdi}/{mmr}"), timestamp, &bytes).unwrap(), r);
            let queued = encode_export(register, timestamp, &bytes);
            prop_assert_eq!(split_export(&queued), (register, timestamp, &bytes));
        }

        /// Keys sort by time, then register.
        #[test]
        fn keys_sort_by_time_first(a in any::<(u32, u32)>(), b in any::<(u32, u32)>()) {
            prop_assert_eq!(reading_key(a.0, a.1).cmp(&reading_key(b.0, b.1)), a.cmp(&b));
        }
    }

    #[test]
    fn a_damaged_reading_is_refused() {
        let mut bytes = [0u8; READING_BYTES];
        bytes[0] = 7;
        assert!(decode_reading("AA/0B", 1, &bytes).is_err());
        assert!(decode_reading("AA", 1, &[0u8; READING_BYTES]).is_err());
    }
}
