//! The attestation format: what a bridge (attestor) signs and the oracle verifies.
//!
//! Defined once, here, for the oracle, the bridge and the keeper. A batch message is
//!
//! | bytes | field |
//! |---|---|
//! | 32 | domain: SHA-256(`gridtokenx-rdg-2` ‖ oracle program id ‖ campus ‖ cluster) |
//! | 8  | batch sequence number, u64 LE (1, 2, 3, ... per campus) |
//! | 32 | meters: SHA-256 over the readings' oracle `MeterState` addresses, in order |
//! | 2  | reading count, u16 LE |
//! | 21 each | reading: timestamp u32 (Unix seconds), cumulative import Wh u64, cumulative export Wh u64, quality flags u8, all LE |
//!
//! **Domain.** The first 32 bytes bind a batch to one oracle program, one campus and one
//! cluster (the cluster's genesis hash, given when the oracle is initialised and stored in
//! its configuration), and separate it from anything else an attestor key might sign: a
//! batch signed for devnet cannot be replayed on another cluster.
//!
//! **Meters.** Reading `i` is for the meter whose oracle state lives at the `i`-th address
//! hashed into `meters`; that address is the PDA `["meter_state", lfdi]`, so it names the
//! meter's full LFDI. The keeper must pass exactly those accounts: the oracle hashes the keys
//! it was given and refuses the batch if they differ, so no account list (and no meter
//! index) can credit one building's reading to another. One 32-byte commitment instead of an
//! identity per reading keeps a whole campus of 25 readings in one transaction at quorum 2.
//!
//! The timestamp is a u32 (valid until 2106) and the quality flags a u8 (IEEE 2030.5 defines
//! bits 0-6 of its 16-bit QualityFlags).
//!
//! The message travels only inside the Ed25519 program instruction that verifies it; the
//! oracle reads it from there (instructions sysvar), so what it applies is exactly what was
//! verified, byte for byte.

use solana_sha256_hasher::hashv;

/// Hashed into the domain: no other GridTokenX (or foreign) message has this prefix.
pub const DOMAIN_TAG: &[u8; 16] = b"gridtokenx-rdg-2";
pub const HEADER_LEN: usize = 32 + 8 + 32 + 2;
pub const READING_LEN: usize = 4 + 8 + 8 + 1;

/// The domain of every batch for `program_id`, `campus` and `cluster` (its genesis hash).
pub fn batch_domain(program_id: &[u8; 32], campus: &[u8; 32], cluster: &[u8; 32]) -> [u8; 32] {
    hashv(&[DOMAIN_TAG, program_id, campus, cluster]).to_bytes()
}

/// The commitment to the meters of a batch: SHA-256 over their `MeterState` addresses.
pub fn meters_digest<'a>(meter_states: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let keys: Vec<&[u8]> = meter_states.into_iter().map(|k| &k[..]).collect();
    hashv(&keys).to_bytes()
}

/// One meter's reading, in the oracle's integers. Which meter it is follows from its
/// position in the batch (see `meters` above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// When both registers were measured, Unix seconds.
    pub timestamp: u32,
    /// Cumulative energy drawn from the campus grid, Wh (flowDirection 1, forward).
    pub import_wh: u64,
    /// Cumulative energy delivered to the campus grid, Wh (flowDirection 19, reverse).
    pub export_wh: u64,
    /// IEEE 2030.5 QualityFlags bits 0-7.
    pub quality: u8,
}

impl Reading {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.import_wh.to_le_bytes());
        out.extend_from_slice(&self.export_wh.to_le_bytes());
        out.push(self.quality);
    }

    fn read(b: &[u8]) -> Reading {
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Reading {
            timestamp: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            import_wh: u64_at(4),
            export_wh: u64_at(12),
            quality: b[20],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Shorter than its header, a length not matching its count, or no readings.
    BadLength,
}

/// Encodes a batch message; `None` if it would hold more than `u16::MAX` readings.
pub fn encode_batch(
    domain: &[u8; 32],
    sequence: u64,
    meters: &[u8; 32],
    readings: &[Reading],
) -> Option<Vec<u8>> {
    let count = u16::try_from(readings.len()).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN + readings.len() * READING_LEN);
    out.extend_from_slice(domain);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(meters);
    out.extend_from_slice(&count.to_le_bytes());
    for r in readings {
        r.write(&mut out);
    }
    Some(out)
}

/// A parsed batch message, borrowing the bytes it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub domain: &'a [u8; 32],
    pub sequence: u64,
    pub meters: &'a [u8; 32],
    readings: &'a [u8],
}

impl<'a> Batch<'a> {
    pub fn parse(message: &'a [u8]) -> Result<Self, FormatError> {
        if message.len() < HEADER_LEN {
            return Err(FormatError::BadLength);
        }
        let count = usize::from(u16::from_le_bytes([message[72], message[73]]));
        let readings = &message[HEADER_LEN..];
        if count == 0 || readings.len() != count * READING_LEN {
            return Err(FormatError::BadLength);
        }
        let mut sequence = [0u8; 8];
        sequence.copy_from_slice(&message[32..40]);
        Ok(Batch {
            domain: message[..32]
                .try_into()
                .map_err(|_| FormatError::BadLength)?,
            sequence: u64::from_le_bytes(sequence),
            meters: message[40..72]
                .try_into()
                .map_err(|_| FormatError::BadLength)?,
            readings,
        })
    }

    pub fn len(&self) -> usize {
        self.readings.len() / READING_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }

    /// Reading `i` (`i < len()`).
    pub fn reading(&self, i: usize) -> Reading {
        Reading::read(&self.readings[i * READING_LEN..(i + 1) * READING_LEN])
    }
}

/// SHA-256 of a whole batch message: how events and the oracle's recent-batch log name it,
/// so a keeper can tell its own batch from another that took the same sequence number.
pub fn batch_hash(message: &[u8]) -> [u8; 32] {
    hashv(&[message]).to_bytes()
}

/// The Ed25519 program's instruction layout (solana-ed25519-program): a count, a padding
/// byte, then one 14-byte offsets record per signature.
pub mod ed25519 {
    pub const HEADER_LEN: usize = 2;
    pub const OFFSETS_LEN: usize = 14;
    pub const PUBKEY_LEN: usize = 32;
    pub const SIGNATURE_LEN: usize = 64;
    /// An instruction index meaning "this instruction".
    pub const THIS_INSTRUCTION: u16 = u16::MAX;

    /// Ed25519 instruction data verifying `message` once per `(public key, signature)`,
    /// with every offset pointing into the instruction itself and one shared copy of the
    /// message.
    pub fn instruction_data(message: &[u8], signers: &[([u8; 32], [u8; 64])]) -> Vec<u8> {
        let n = signers.len();
        let keys_at = HEADER_LEN + n * OFFSETS_LEN;
        let sigs_at = keys_at + n * PUBKEY_LEN;
        let msg_at = sigs_at + n * SIGNATURE_LEN;
        let mut out = Vec::with_capacity(msg_at + message.len());
        out.push(n as u8);
        out.push(0);
        for i in 0..n {
            let fields = [
                (sigs_at + i * SIGNATURE_LEN) as u16,
                THIS_INSTRUCTION,
                (keys_at + i * PUBKEY_LEN) as u16,
                THIS_INSTRUCTION,
                msg_at as u16,
                message.len() as u16,
                THIS_INSTRUCTION,
            ];
            for f in fields {
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        for (key, _) in signers {
            out.extend_from_slice(key);
        }
        for (_, sig) in signers {
            out.extend_from_slice(sig);
        }
        out.extend_from_slice(message);
        out
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Ed25519Error {
        /// Truncated, no signatures, or offsets past the end of the data.
        Malformed,
        /// An offset refers to another instruction of the transaction.
        OffsetsOutsideInstruction,
    }

    /// One verified signature: whose key, over which bytes.
    #[derive(Clone, Copy, Debug)]
    pub struct Verified<'a> {
        pub public_key: &'a [u8; 32],
        pub message: &'a [u8],
    }

    fn u16_at(data: &[u8], at: usize) -> Result<u16, Ed25519Error> {
        data.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or(Ed25519Error::Malformed)
    }

    fn slice(data: &[u8], at: u16, len: usize) -> Result<&[u8], Ed25519Error> {
        let at = usize::from(at);
        data.get(at..at.checked_add(len).ok_or(Ed25519Error::Malformed)?)
            .ok_or(Ed25519Error::Malformed)
    }

    /// What the Ed25519 instruction at index `own_index` verified, at most `max` signatures.
    /// Refuses any offset that points into another instruction: the precompile would then
    /// verify bytes that these offsets, read here, do not show.
    pub fn parse(
        data: &[u8],
        own_index: u16,
        max: usize,
    ) -> Result<Vec<Verified<'_>>, Ed25519Error> {
        let n = usize::from(*data.first().ok_or(Ed25519Error::Malformed)?);
        if n == 0 || n > max || data.len() < HEADER_LEN + n * OFFSETS_LEN {
            return Err(Ed25519Error::Malformed);
        }
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let at = HEADER_LEN + i * OFFSETS_LEN;
            let sig_offset = u16_at(data, at)?;
            let key_offset = u16_at(data, at + 4)?;
            let msg_offset = u16_at(data, at + 8)?;
            let msg_len = usize::from(u16_at(data, at + 10)?);
            for index_at in [at + 2, at + 6, at + 12] {
                let index = u16_at(data, index_at)?;
                if index != THIS_INSTRUCTION && index != own_index {
                    return Err(Ed25519Error::OffsetsOutsideInstruction);
                }
            }
            slice(data, sig_offset, SIGNATURE_LEN)?;
            let public_key = slice(data, key_offset, PUBKEY_LEN)?
                .try_into()
                .map_err(|_| Ed25519Error::Malformed)?;
            let message = slice(data, msg_offset, msg_len)?;
            out.push(Verified {
                public_key,
                message,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Reading> {
        vec![
            Reading {
                timestamp: 1_790_000_000,
                import_wh: 1_000,
                export_wh: 2_000,
                quality: 0,
            },
            Reading {
                timestamp: 1_790_000_900,
                import_wh: u64::MAX,
                export_wh: 7,
                quality: 0x41,
            },
        ]
    }

    #[test]
    fn batch_bytes_are_pinned() {
        let bytes = encode_batch(&[0x11; 32], 0x0102030405060708, &[0x22; 32], &sample()).unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1]);
        expected.extend_from_slice(&[0x22; 32]);
        expected.extend_from_slice(&[2, 0]);
        // t = 1_790_000_000 = 0x6AB1_3B80, import 1000, export 2000, quality 0
        expected.extend_from_slice(&[0x80, 0x3B, 0xB1, 0x6A]);
        expected.extend_from_slice(&[0xE8, 0x03, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0xD0, 0x07, 0, 0, 0, 0, 0, 0]);
        expected.push(0);
        // t + 900, import u64::MAX, export 7, quality 0x41
        expected.extend_from_slice(&[0x04, 0x3F, 0xB1, 0x6A]);
        expected.extend_from_slice(&[0xFF; 8]);
        expected.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        expected.push(0x41);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), HEADER_LEN + 2 * READING_LEN);
    }

    #[test]
    fn domain_and_digests_are_pinned() {
        // SHA-256("gridtokenx-rdg-2" || 0x01 * 32 || 0x02 * 32 || 0x03 * 32), computed
        // independently (Python hashlib).
        let domain = batch_domain(&[1; 32], &[2; 32], &[3; 32]);
        let expected = "1dbfe31f8b8353eb27f4b352725f7c61497d27cf4b59e3c3057846d1be19e258";
        let hex: String = domain.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        // Every input changes the domain.
        assert_ne!(domain, batch_domain(&[1; 32], &[2; 32], &[4; 32]));
        assert_ne!(domain, batch_domain(&[1; 32], &[5; 32], &[3; 32]));
        assert_ne!(domain, batch_domain(&[6; 32], &[2; 32], &[3; 32]));
        // The meters digest is over the addresses in order.
        let (a, b) = ([7u8; 32], [8u8; 32]);
        assert_ne!(meters_digest([&a, &b]), meters_digest([&b, &a]));
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        assert_eq!(meters_digest([&a, &b]), hashv(&[&both]).to_bytes());
    }

    #[test]
    fn parse_round_trips() {
        let bytes = encode_batch(&[1; 32], 9, &[2; 32], &sample()).unwrap();
        let batch = Batch::parse(&bytes).unwrap();
        assert_eq!(batch.domain, &[1; 32]);
        assert_eq!(batch.meters, &[2; 32]);
        assert_eq!(batch.sequence, 9);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.reading(1), sample()[1]);
        assert_eq!(batch_hash(&bytes), hashv(&[&bytes]).to_bytes());
    }

    #[test]
    fn parse_rejects_bad_lengths() {
        let bytes = encode_batch(&[1; 32], 9, &[2; 32], &sample()).unwrap();
        assert_eq!(
            Batch::parse(&bytes[..bytes.len() - 1]).unwrap_err(),
            FormatError::BadLength
        );
        assert_eq!(
            Batch::parse(&bytes[..50]).unwrap_err(),
            FormatError::BadLength
        );
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(Batch::parse(&extra).unwrap_err(), FormatError::BadLength);
        let empty = encode_batch(&[1; 32], 9, &[2; 32], &[]).unwrap();
        assert_eq!(Batch::parse(&empty).unwrap_err(), FormatError::BadLength);
    }

    #[test]
    fn ed25519_data_round_trips_through_parse() {
        let message = b"hello".to_vec();
        let data = ed25519::instruction_data(&message, &[([1; 32], [2; 64]), ([3; 32], [4; 64])]);
        assert_eq!(data.len(), 2 + 2 * 14 + 2 * 32 + 2 * 64 + 5);
        let verified = ed25519::parse(&data, 0, 8).unwrap();
        assert_eq!(verified.len(), 2);
        assert_eq!(verified[1].public_key, &[3; 32]);
        assert_eq!(verified[0].message, b"hello");
    }

    #[test]
    fn ed25519_parse_refuses_offsets_into_other_instructions() {
        let data = ed25519::instruction_data(b"m", &[([1; 32], [2; 64])]);
        // The message index (bytes 14..16 of the first record) points at instruction 1.
        for field in [4usize, 8, 14] {
            let mut spoofed = data.clone();
            spoofed[field..field + 2].copy_from_slice(&1u16.to_le_bytes());
            assert_eq!(
                ed25519::parse(&spoofed, 0, 8).unwrap_err(),
                ed25519::Ed25519Error::OffsetsOutsideInstruction
            );
        }
        // Its own index is as good as "this instruction".
        let mut own = data.clone();
        own[14..16].copy_from_slice(&3u16.to_le_bytes());
        assert!(ed25519::parse(&own, 3, 8).is_ok());
    }

    #[test]
    fn ed25519_parse_refuses_truncated_data() {
        let data = ed25519::instruction_data(b"message", &[([1; 32], [2; 64])]);
        assert_eq!(
            ed25519::parse(&data[..data.len() - 1], 0, 8).unwrap_err(),
            ed25519::Ed25519Error::Malformed
        );
        assert_eq!(
            ed25519::parse(&[0, 0], 0, 8).unwrap_err(),
            ed25519::Ed25519Error::Malformed
        );
        let too_many = ed25519::instruction_data(b"m", &[([1; 32], [2; 64]); 3]);
        assert_eq!(
            ed25519::parse(&too_many, 0, 2).unwrap_err(),
            ed25519::Ed25519Error::Malformed
        );
    }
}
