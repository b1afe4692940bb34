use anchor_lang::prelude::*;

/// A building's order delegate, at `[ORDER_DELEGATE, lfdi]`: a key the meter's owner lets
/// place and cancel that building's orders for them (a building's energy-management system,
/// through the keeper), and nothing else. Its orders are the owner's (escrow, fills and
/// refunds are theirs); their escrow is drawn from the owner's token accounts through the
/// allowance the owner gives the market's vault authority (SPL `approve`), which caps what
/// the delegate can commit; refunds go back to those accounts and settlements to the owner's
/// balance, so a delegate can never move funds anywhere else. It lapses when the meter
/// changes owner and is revoked by closing it (`revoke_delegate`).
#[account(zero_copy)]
#[derive(Debug, PartialEq, Eq)]
pub struct OrderDelegate {
    /// The meter's owner who authorised it; it is void once someone else owns the meter.
    pub owner: Pubkey,
    pub delegate: Pubkey,
    pub lfdi: [u8; 20],
    pub bump: u8,
    pub _reserved: [u8; 3],
    pub authorized_at: i64,
}

impl OrderDelegate {
    pub const SPACE: usize = 8 + std::mem::size_of::<OrderDelegate>();

    /// Whether `signer` may trade for the building whose owner is now `meter_owner`.
    pub fn allows(&self, signer: &Pubkey, meter_owner: &Pubkey) -> Result<()> {
        require_keys_eq!(
            self.delegate,
            *signer,
            crate::errors::TradingError::NotDelegate
        );
        require_keys_eq!(
            self.owner,
            *meter_owner,
            crate::errors::TradingError::DelegationLapsed
        );
        Ok(())
    }
}
