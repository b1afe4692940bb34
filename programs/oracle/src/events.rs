use anchor_lang::prelude::*;

#[event]
pub struct OracleInitialized {
    pub campus: Pubkey,
    pub authority: Pubkey,
    /// The batch domain (see `attestation`), bound to the program, campus and cluster.
    pub domain: [u8; 32],
}

#[event]
pub struct AttestorsUpdated {
    pub attestors: Vec<Pubkey>,
    pub quorum: u8,
}

#[event]
pub struct OracleParamsUpdated {
    pub params: crate::state::ReadingLimits,
}

#[event]
pub struct OracleAuthorityProposed {
    pub authority: Pubkey,
    pub pending: Pubkey,
}

#[event]
pub struct OracleAuthorityChanged {
    pub from: Pubkey,
    pub to: Pubkey,
}

#[event]
pub struct OraclePauseChanged {
    /// Paused until this Unix time; 0 when not paused (`program_common::pause`).
    pub paused_until: i64,
}

#[event]
pub struct MeterStateInitialized {
    pub lfdi: [u8; 20],
}

/// One applied batch: the keeper follows these to know what is confirmed on-chain. `hash`
/// (SHA-256 of the signed message) tells "this exact batch was applied" from "another batch
/// took this sequence number".
#[event]
pub struct BatchApplied {
    pub sequence: u64,
    pub hash: [u8; 32],
    /// Readings accepted (baselines included) and skipped.
    pub applied: u16,
    pub skipped: u16,
    pub attestors: u8,
}

/// A reading that failed a data check: skipped, the rest of its batch applied.
#[event]
pub struct ReadingSkipped {
    pub sequence: u64,
    /// Position of the reading in its batch.
    pub position: u16,
    /// The meter, by its signed state address, and its LFDI (zeros if it has no state).
    pub meter_state: Pubkey,
    pub lfdi: [u8; 20],
    /// The `OracleError` code (6000 + variant) that says why.
    pub reason: u32,
}

/// Governance moved the sequence past batches that can never apply.
#[event]
pub struct BatchesSkipped {
    pub from: u64,
    pub through: u64,
}
