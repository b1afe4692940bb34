use anchor_lang::prelude::*;

#[event]
pub struct EnergyTokenInitialized {
    pub campus: Pubkey,
    pub authority: Pubkey,
    pub grid_mint: Pubkey,
    pub rec_mint: Pubkey,
}

#[event]
pub struct TokenAuthorityProposed {
    pub authority: Pubkey,
    pub pending: Pubkey,
}

#[event]
pub struct TokenAuthorityChanged {
    pub from: Pubkey,
    pub to: Pubkey,
}

#[event]
pub struct TokenPauseChanged {
    /// Paused until this Unix time; 0 when not paused (`program_common::pause`).
    pub paused_until: i64,
}

#[event]
pub struct LedgerInitialized {
    pub lfdi: [u8; 20],
}

/// GRID minted to a meter's owner for verified export.
#[event]
pub struct GenerationMinted {
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    /// Base units (Wh) minted now.
    pub amount: u64,
    /// Everything minted for this meter so far, Wh.
    pub total_minted_wh: u64,
}

/// A meter left out of a `mint_generation` or `issue_rec`; the others were processed.
#[event]
pub struct MeterSkipped {
    pub lfdi: [u8; 20],
    /// The `TokenError` code (6000 + variant) that says why.
    pub reason: u32,
}

#[event]
pub struct ConsumptionRedeemed {
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    pub amount: u64,
    pub total_redeemed_wh: u64,
}

#[event]
pub struct RecsIssued {
    pub lfdi: [u8; 20],
    pub owner: Pubkey,
    pub amount: u64,
    pub total_certified_wh: u64,
}

#[event]
pub struct RecsRetired {
    pub retirement: Pubkey,
    pub index: u64,
    pub id: u64,
    pub holder: Pubkey,
    pub amount: u64,
    pub beneficiary: String,
    pub reason: String,
}
