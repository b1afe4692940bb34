use anchor_lang::prelude::*;
use registry::Meter;

use crate::errors::TradingError;
use crate::events::DelegateRevoked;
use crate::instructions::vault::close_account;
use crate::state::{seeds, OrderDelegate};

/// Ends a building's delegation: its owner (who gave it) or the meter's owner now (for
/// whom it has lapsed) closes it; its rent and what is left of its rent float go back to the
/// owner who gave it, whoever revokes. Orders the delegate placed stay the owner's, to
/// cancel or settle as any other.
#[derive(Accounts)]
#[instruction(lfdi: [u8; 20])]
pub struct RevokeDelegate<'info> {
    /// CHECK: the building's registry `Meter`, read with `Meter::load_for(lfdi)`.
    pub meter: UncheckedAccount<'info>,
    #[account(mut, seeds = [seeds::ORDER_DELEGATE, lfdi.as_ref()], bump = delegation.load()?.bump)]
    pub delegation: AccountLoader<'info, OrderDelegate>,
    pub signer: Signer<'info>,
    /// CHECK: the delegation's owner (checked): its lamports go back to them.
    #[account(mut)]
    pub funder: UncheckedAccount<'info>,
}

impl RevokeDelegate<'_> {
    pub fn validate(&self, lfdi: &[u8; 20]) -> Result<()> {
        let meter = Meter::load_for(&self.meter, lfdi)?;
        let given_by = self.delegation.load()?.owner;
        let signer = self.signer.key();
        require!(
            signer == given_by || signer == meter.owner,
            TradingError::NotDelegationOwner
        );
        require_keys_eq!(
            self.funder.key(),
            given_by,
            TradingError::NotDelegationOwner
        );
        Ok(())
    }
}

pub fn handler(ctx: Context<RevokeDelegate>, lfdi: [u8; 20]) -> Result<()> {
    let a = &ctx.accounts;
    let d = *a.delegation.load()?;
    close_account(&a.delegation.to_account_info(), &a.funder.to_account_info())?;
    program_common::emit_event!(DelegateRevoked {
        lfdi,
        owner: d.owner,
        delegate: d.delegate,
        by: a.signer.key(),
    });
    Ok(())
}
