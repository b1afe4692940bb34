use anchor_lang::prelude::*;

#[event]
pub struct OracleInitialized {
    pub campus: Pubkey,
    pub authority: Pubkey,
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
pub struct OracleAuthorityChanged {
    pub from: Pubkey,
    pub to: Pubkey,
}

#[event]
pub struct OraclePauseChanged {
    pub paused: bool,
}

#[event]
pub struct MeterStateInitialized {
    pub lfdi: [u8; 20],
    pub meter_index: u16,
}

/// One accepted batch: the keeper follows these to know what is confirmed on-chain.
#[event]
pub struct ReadingsAccepted {
    pub sequence: u64,
    pub readings: u16,
    pub attestors: u8,
}
