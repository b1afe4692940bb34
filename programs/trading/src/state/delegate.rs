use anchor_lang::prelude::*;

/// A building's order delegate, at `[ORDER_DELEGATE, lfdi]`: a key the meter's owner lets
/// place and cancel that building's orders for them (a building's energy-management system,
/// through the keeper), and nothing else. Its orders are the owner's (escrow, fills and
/// refunds are theirs); their escrow is drawn from the owner's token accounts through the
/// allowance the owner gives the market's vault authority (SPL `approve`), which caps what
/// the delegate can commit; refunds go back to those accounts and settlements to the owner's
/// balance, so a delegate can never move funds anywhere else. The rent of its orders comes
/// out of the delegation's own lamports beyond its rent (the owner's rent float). It lapses
/// when the meter changes owner and is revoked by closing it (`revoke_delegate`).
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

    /// The rent float: the delegation's lamports beyond its own rent.
    pub fn float_of(info: &AccountInfo) -> Result<u64> {
        let keep = Rent::get()?.minimum_balance(Self::SPACE);
        Ok(info.lamports().saturating_sub(keep))
    }

    /// Moves the rent of a new account of `space` bytes at `to` out of the delegation's
    /// float (`to` is then created by `create_pda_account` without a payer's transfer).
    pub fn fund_rent(delegation: &AccountInfo, to: &AccountInfo, space: usize) -> Result<()> {
        let needed = Rent::get()?
            .minimum_balance(space)
            .saturating_sub(to.lamports());
        require!(
            Self::float_of(delegation)? >= needed,
            crate::errors::TradingError::RentFloatExhausted
        );
        **delegation.try_borrow_mut_lamports()? = delegation
            .lamports()
            .checked_sub(needed)
            .ok_or(crate::errors::TradingError::Overflow)?;
        **to.try_borrow_mut_lamports()? = to
            .lamports()
            .checked_add(needed)
            .ok_or(crate::errors::TradingError::Overflow)?;
        Ok(())
    }

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
