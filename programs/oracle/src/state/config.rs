use anchor_lang::prelude::*;

use crate::errors::OracleError;

pub const MAX_ATTESTORS: usize = 8;

/// How readings are bounded; set by governance.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub struct ReadingLimits {
    /// How far a reading's timestamp may be ahead of the cluster clock, seconds.
    pub max_future_skew_s: u32,
    /// Least time between two readings of one meter, seconds.
    pub min_interval_s: u32,
    /// Slack on the physical bound, in basis points (1000 = 10 % above capacity x time).
    pub tolerance_bps: u16,
}

impl ReadingLimits {
    pub const MAX_SKEW_S: u32 = 3600;
    pub const MAX_TOLERANCE_BPS: u16 = 10_000;

    pub fn validate(&self) -> Result<()> {
        require!(
            self.max_future_skew_s <= Self::MAX_SKEW_S
                && self.min_interval_s >= 1
                && self.min_interval_s <= 86_400
                && self.tolerance_bps <= Self::MAX_TOLERANCE_BPS,
            OracleError::InvalidParams
        );
        Ok(())
    }
}

/// The oracle's configuration, at `[CONFIG]`.
#[account]
#[derive(InitSpace)]
pub struct OracleConfig {
    /// Signs every privileged change: the bootstrap key, then the governance authority.
    pub authority: Pubkey,
    /// The registry's campus account; batches name it.
    pub campus: Pubkey,
    #[max_len(MAX_ATTESTORS)]
    pub attestors: Vec<Pubkey>,
    /// Distinct attestor signatures a batch needs.
    pub quorum: u8,
    pub limits: ReadingLimits,
    pub paused: bool,
    /// Sequence number of the last applied batch (0: none yet).
    pub last_sequence: u64,
    pub bump: u8,
}

impl OracleConfig {
    pub const SPACE: usize = 8 + OracleConfig::INIT_SPACE;

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

    pub fn is_attestor(&self, key: &Pubkey) -> bool {
        self.attestors.contains(key)
    }

    /// Batches apply in order, one after another: `sequence` must be the next number.
    pub fn check_sequence(&self, sequence: u64) -> Result<()> {
        require!(sequence > self.last_sequence, OracleError::BatchReplayed);
        let next = self
            .last_sequence
            .checked_add(1)
            .ok_or(OracleError::Overflow)?;
        require!(sequence == next, OracleError::BatchOutOfOrder);
        Ok(())
    }
}
