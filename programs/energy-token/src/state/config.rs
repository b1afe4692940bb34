use anchor_lang::prelude::*;

/// GRID has 3 decimals: 1 GRID = 1 kWh, one base unit = 1 Wh.
pub const GRID_DECIMALS: u8 = 3;
/// RECs are whole certificates: 1 REC = 1 MWh.
pub const REC_DECIMALS: u8 = 0;
/// Watt-hours certified by one REC.
pub const WH_PER_REC: u64 = 1_000_000;

/// The energy-token configuration, at `[CONFIG]`. Zero-copy: every mint updates its totals.
#[account(zero_copy)]
#[derive(Debug)]
pub struct TokenConfig {
    /// Signs every privileged change: the bootstrap key, then governance.
    pub authority: Pubkey,
    /// Proposed successor of `authority` until it accepts; the default key when none.
    pub pending_authority: Pubkey,
    /// The registry's campus account.
    pub campus: Pubkey,
    pub grid_mint: Pubkey,
    pub rec_mint: Pubkey,
    /// GRID minted from verified export and burnt against verified import, Wh (= base
    /// units). The mint's supply equals `grid_minted_wh - grid_redeemed_wh`.
    pub grid_minted_wh: u64,
    pub grid_redeemed_wh: u64,
    pub recs_issued: u64,
    pub recs_retired: u64,
    /// Retirement records written; the next one gets this index.
    pub retirement_count: u64,
    /// Paused until this Unix time (0: not paused; `program_common::pause`): minting and REC
    /// issuance stop meanwhile; redemption and retirement never do.
    pub paused_until: i64,
    pub bump: u8,
    pub mint_authority_bump: u8,
    pub _reserved: [u8; 6],
}

impl TokenConfig {
    pub const SPACE: usize = 8 + std::mem::size_of::<TokenConfig>();

    pub fn is_paused(&self, now: i64) -> bool {
        program_common::pause::is_paused(self.paused_until, now)
    }
}
