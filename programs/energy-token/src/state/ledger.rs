use anchor_lang::prelude::*;

use crate::errors::TokenError;
use crate::state::WH_PER_REC;

/// What has been drawn against one meter's verified energy, at `[LEDGER, lfdi]`. GRID, RECs
/// and redemption each keep their own counter, so each can reach the oracle's verified
/// total exactly once and independently of the others: a REC certifies the generation's
/// attributes, GRID is the energy itself.
#[account(zero_copy)]
#[derive(Debug, PartialEq, Eq)]
pub struct MeterLedger {
    pub lfdi: [u8; 20],
    pub bump: u8,
    pub _reserved: [u8; 3],
    /// Verified export minted as GRID, Wh.
    pub grid_minted_wh: u64,
    /// Verified import covered by burnt GRID, Wh.
    pub redeemed_wh: u64,
    /// Verified renewable export certified by RECs, Wh (a multiple of 1 MWh: the remainder
    /// waits).
    pub rec_certified_wh: u64,
    pub recs_issued: u64,
}

impl MeterLedger {
    pub const SPACE: usize = 8 + std::mem::size_of::<MeterLedger>();

    pub fn new(lfdi: [u8; 20], bump: u8) -> MeterLedger {
        MeterLedger {
            lfdi,
            bump,
            ..bytemuck::Zeroable::zeroed()
        }
    }

    /// GRID (Wh) still to mint for `verified_export_wh`, and records it as minted.
    pub fn mint_grid(&mut self, verified_export_wh: u64) -> Result<u64> {
        let due = verified_export_wh
            .checked_sub(self.grid_minted_wh)
            .ok_or(TokenError::LedgerAhead)?;
        self.grid_minted_wh = verified_export_wh;
        Ok(due)
    }

    /// Whole RECs still to issue for `verified_renewable_wh` (the remainder below 1 MWh is
    /// carried to the next issue), and records them.
    pub fn issue_recs(&mut self, verified_renewable_wh: u64) -> Result<u64> {
        let uncertified = verified_renewable_wh
            .checked_sub(self.rec_certified_wh)
            .ok_or(TokenError::LedgerAhead)?;
        let recs = uncertified / WH_PER_REC;
        // recs * WH_PER_REC <= uncertified, so neither can overflow.
        self.rec_certified_wh += recs * WH_PER_REC;
        self.recs_issued = self
            .recs_issued
            .checked_add(recs)
            .ok_or(TokenError::Overflow)?;
        Ok(recs)
    }

    /// Covers `amount` Wh of verified import with burnt GRID, if not covered yet.
    pub fn redeem(&mut self, amount: u64, verified_import_wh: u64) -> Result<()> {
        let covered = self
            .redeemed_wh
            .checked_add(amount)
            .ok_or(TokenError::Overflow)?;
        require!(
            covered <= verified_import_wh,
            TokenError::RedemptionExceedsImport
        );
        self.redeemed_wh = covered;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<()>) -> u32 {
        match r {
            Err(anchor_lang::error::Error::AnchorError(e)) => e.error_code_number,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn grid_is_minted_once_per_verified_wh() {
        let mut l = MeterLedger::new([1; 20], 255);
        assert_eq!(l.mint_grid(5_000).unwrap(), 5_000);
        assert_eq!(l.mint_grid(5_000).unwrap(), 0);
        assert_eq!(l.mint_grid(7_500).unwrap(), 2_500);
        assert_eq!(l.grid_minted_wh, 7_500);
    }

    #[test]
    fn recs_are_whole_mwh_with_the_remainder_carried() {
        let mut l = MeterLedger::new([1; 20], 255);
        assert_eq!(l.issue_recs(2_400_000).unwrap(), 2);
        assert_eq!(l.rec_certified_wh, 2_000_000);
        assert_eq!(l.issue_recs(2_900_000).unwrap(), 0);
        assert_eq!(l.issue_recs(3_000_000).unwrap(), 1);
        assert_eq!((l.rec_certified_wh, l.recs_issued), (3_000_000, 3));
        // GRID is independent of RECs.
        assert_eq!(l.mint_grid(3_000_000).unwrap(), 3_000_000);
    }

    #[test]
    fn redemption_never_exceeds_verified_import() {
        let mut l = MeterLedger::new([1; 20], 255);
        l.redeem(600, 1_000).unwrap();
        l.redeem(400, 1_000).unwrap();
        assert_eq!(
            code(l.redeem(1, 1_000)),
            u32::from(TokenError::RedemptionExceedsImport)
        );
        assert_eq!(l.redeemed_wh, 1_000);
    }

    #[test]
    fn a_ledger_ahead_of_the_oracle_is_an_error_not_a_mint() {
        let mut l = MeterLedger::new([1; 20], 255);
        l.mint_grid(5_000).unwrap();
        assert!(l.mint_grid(4_999).is_err());
        assert_eq!(l.grid_minted_wh, 5_000);
    }
}
