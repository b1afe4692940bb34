use anchor_lang::prelude::*;

use crate::errors::OracleError;

pub const MAX_ATTESTORS: usize = 8;
/// Batches remembered by `OracleConfig::recent_batches` (as many as the window holds, so the
/// keeper can tell each batch in flight from another that took its number).
pub const RECENT_BATCHES: usize = BATCH_WINDOW as usize;
/// How far ahead of the last contiguous batch a batch may land: batches apply in any order
/// within `last_sequence + 1 ..= last_sequence + BATCH_WINDOW`, so the keeper can keep that
/// many in flight. A batch that never arrives holds the window's start: once the window is
/// full behind it, only governance's bounded `skip_batches` moves on.
pub const BATCH_WINDOW: u64 = 128;
const WINDOW_WORDS: usize = (BATCH_WINDOW / 64) as usize;
/// Most batches one `skip_batches` may skip. A skip is for batches that can never be
/// delivered (an attestor that lost its store), a handful in practice; 1,024 is far more
/// than that, and small enough that a mistaken skip puts the sequence only a little ahead of
/// the bridge (how a bridge jumps its own sequence past a skip belongs to its recovery:
/// issue 28). A larger gap takes several governed skips, each a deliberate act.
pub const MAX_SKIP_BATCHES: u64 = 1_024;

/// How readings are bounded; set by governance.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadingLimits {
    /// How far a reading's timestamp may be ahead of the cluster clock, seconds.
    pub max_future_skew_s: u32,
    /// Least time between two accepted readings of one meter, seconds.
    pub min_interval_s: u32,
    /// How far a reading's timestamp may be behind the cluster clock, seconds.
    pub max_age_s: u32,
    /// Slack on the physical bound, in basis points (1000 = 10 % above capacity x time).
    pub tolerance_bps: u16,
}

impl ReadingLimits {
    pub const MAX_SKEW_S: u32 = 3600;
    pub const MAX_INTERVAL_S: u32 = 86_400;
    pub const MAX_AGE_S: u32 = 30 * 86_400;
    pub const MAX_TOLERANCE_BPS: u16 = 10_000;

    pub fn validate(&self) -> Result<()> {
        require!(
            self.max_future_skew_s <= Self::MAX_SKEW_S
                && self.min_interval_s >= 1
                && self.min_interval_s <= Self::MAX_INTERVAL_S
                && self.max_age_s >= self.min_interval_s
                && self.max_age_s <= Self::MAX_AGE_S
                && self.tolerance_bps <= Self::MAX_TOLERANCE_BPS,
            OracleError::InvalidParams
        );
        Ok(())
    }
}

/// One applied batch, as remembered by the configuration.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchRecord {
    pub sequence: u64,
    /// SHA-256 of the signed message (`attestation::batch_hash`).
    pub hash: [u8; 32],
}

/// The oracle's configuration, at `[CONFIG]`. Zero-copy: every batch reads and writes it.
#[account(zero_copy)]
#[derive(Debug)]
pub struct OracleConfig {
    /// Signs every privileged change: the bootstrap key, then governance.
    pub authority: Pubkey,
    /// Proposed successor of `authority` until it accepts; the default key when none.
    pub pending_authority: Pubkey,
    /// The registry's campus account.
    pub campus: Pubkey,
    /// The domain every batch must carry (`attestation::batch_domain` of this program, the
    /// campus and the cluster given at initialisation).
    pub domain: [u8; 32],
    /// Authorised attestor keys; the first `attestor_count` are set.
    pub attestors: [Pubkey; MAX_ATTESTORS],
    /// Every batch numbered up to this one is applied or skipped (0 before the first): the
    /// start of the window. Batches after it that applied early are marked in
    /// `applied_window`.
    pub last_sequence: u64,
    /// Paused until this Unix time (0: not paused; `program_common::pause`).
    pub paused_until: i64,
    pub max_future_skew_s: u32,
    pub min_interval_s: u32,
    pub max_age_s: u32,
    pub tolerance_bps: u16,
    pub attestor_count: u8,
    /// Distinct attestor signatures a batch needs.
    pub quorum: u8,
    pub bump: u8,
    pub _reserved: [u8; 7],
    /// The last `RECENT_BATCHES` applied batches, a ring indexed by sequence.
    pub recent_batches: [BatchRecord; RECENT_BATCHES],
    /// Batches in `last_sequence + 1 ..= last_sequence + BATCH_WINDOW` applied already: bit
    /// `sequence % BATCH_WINDOW` (a ring; a bit is cleared as the start passes it).
    pub applied_window: [u64; WINDOW_WORDS],
    /// The highest sequence settled so far (applied, or skipped by governance).
    pub highest_sequence: u64,
}

impl OracleConfig {
    pub const SPACE: usize = 8 + std::mem::size_of::<OracleConfig>();

    pub fn validate_attestors(attestors: &[Pubkey], quorum: u8) -> Result<()> {
        let distinct = attestors
            .iter()
            .enumerate()
            .all(|(i, k)| *k != Pubkey::default() && !attestors[..i].contains(k));
        require!(
            !attestors.is_empty()
                && attestors.len() <= MAX_ATTESTORS
                && distinct
                && quorum >= 1
                && usize::from(quorum) <= attestors.len(),
            OracleError::InvalidAttestors
        );
        Ok(())
    }

    /// Replaces the attestor set (already validated).
    pub fn set_attestors(&mut self, attestors: &[Pubkey], quorum: u8) {
        self.attestors = [Pubkey::default(); MAX_ATTESTORS];
        self.attestors[..attestors.len()].copy_from_slice(attestors);
        // At most MAX_ATTESTORS (8): fits a u8.
        self.attestor_count = attestors.len() as u8;
        self.quorum = quorum;
    }

    pub fn attestors(&self) -> &[Pubkey] {
        &self.attestors[..usize::from(self.attestor_count).min(MAX_ATTESTORS)]
    }

    pub fn is_attestor(&self, key: &Pubkey) -> bool {
        self.attestors().contains(key)
    }

    pub fn limits(&self) -> ReadingLimits {
        ReadingLimits {
            max_future_skew_s: self.max_future_skew_s,
            min_interval_s: self.min_interval_s,
            max_age_s: self.max_age_s,
            tolerance_bps: self.tolerance_bps,
        }
    }

    pub fn set_limits(&mut self, limits: &ReadingLimits) {
        self.max_future_skew_s = limits.max_future_skew_s;
        self.min_interval_s = limits.min_interval_s;
        self.max_age_s = limits.max_age_s;
        self.tolerance_bps = limits.tolerance_bps;
    }

    pub fn is_paused(&self, now: i64) -> bool {
        program_common::pause::is_paused(self.paused_until, now)
    }

    fn window_bit(sequence: u64) -> (usize, u64) {
        let bit = sequence % BATCH_WINDOW;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    /// Whether batch `sequence` is settled: applied, or skipped by governance.
    pub fn is_settled(&self, sequence: u64) -> bool {
        if sequence <= self.last_sequence {
            return true;
        }
        if sequence - self.last_sequence > BATCH_WINDOW {
            return false;
        }
        let (word, mask) = Self::window_bit(sequence);
        self.applied_window[word] & mask != 0
    }

    /// A batch applies once, within the window: after the last contiguous one, at most
    /// `BATCH_WINDOW` ahead, and not applied already.
    pub fn check_sequence(&self, sequence: u64) -> Result<()> {
        require!(!self.is_settled(sequence), OracleError::BatchReplayed);
        let furthest = self
            .last_sequence
            .checked_add(BATCH_WINDOW)
            .ok_or(OracleError::Overflow)?;
        require!(sequence <= furthest, OracleError::BatchOutOfOrder);
        Ok(())
    }

    /// Records batch `sequence` (checked by `check_sequence`) as applied, and moves the
    /// window's start over every batch now settled behind it (at most `BATCH_WINDOW` steps).
    pub fn record_batch(&mut self, sequence: u64, hash: [u8; 32]) {
        let (word, mask) = Self::window_bit(sequence);
        self.applied_window[word] |= mask;
        self.highest_sequence = self.highest_sequence.max(sequence);
        self.recent_batches[(sequence % RECENT_BATCHES as u64) as usize] =
            BatchRecord { sequence, hash };
        self.advance();
    }

    /// Moves `last_sequence` over the applied batches that follow it, clearing their bits.
    fn advance(&mut self) {
        for _ in 0..BATCH_WINDOW {
            let Some(next) = self.last_sequence.checked_add(1) else {
                return;
            };
            let (word, mask) = Self::window_bit(next);
            if self.applied_window[word] & mask == 0 {
                return;
            }
            self.applied_window[word] &= !mask;
            self.last_sequence = next;
        }
    }

    /// Settles every batch through `through` (> `last_sequence`, checked by the caller):
    /// those never applied can no longer be; then moves over the applied ones after it.
    pub fn skip_through(&mut self, through: u64) {
        if through - self.last_sequence >= BATCH_WINDOW {
            self.applied_window = [0; WINDOW_WORDS];
        } else {
            for sequence in self.last_sequence + 1..=through {
                let (word, mask) = Self::window_bit(sequence);
                self.applied_window[word] &= !mask;
            }
        }
        self.last_sequence = through;
        self.highest_sequence = self.highest_sequence.max(through);
        self.advance();
    }

    /// The hash of applied batch `sequence`, if it is among the recent ones.
    pub fn applied_batch(&self, sequence: u64) -> Option<[u8; 32]> {
        let record = &self.recent_batches[(sequence % RECENT_BATCHES as u64) as usize];
        (record.sequence == sequence && sequence != 0).then_some(record.hash)
    }
}
