use anchor_lang::prelude::*;
use program_common::pda::{create_pda_account, init_zero_copy};
use registry::Meter;

use crate::errors::TradingError;
use crate::events::DelegateAuthorized;
use crate::state::{seeds, OrderDelegate};

/// The meter's owner lets `delegate` place and cancel the building's orders for them (see
/// `OrderDelegate`), or replaces the building's delegate, and adds `rent_float` lamports to
/// the delegation: the rent of the delegate's orders comes out of it (and goes back, like any
/// order's, to the owner's balance when they settle), so the delegate spends nothing of its
/// own and a building's EMS can cost only its owner. The delegation and its float are the
/// owner's, returned when it is revoked. A previous owner's delegation must be revoked first
/// (`DelegationOfPreviousOwner`): its float is theirs. The escrow the delegate can lock is
/// budgeted separately, by the allowance the owner approves for the market's vault authority
/// on their token accounts.
#[derive(Accounts)]
#[instruction(lfdi: [u8; 20])]
pub struct AuthorizeDelegate<'info> {
    /// CHECK: the building's registry `Meter`, read with `Meter::load_for(lfdi)`.
    pub meter: UncheckedAccount<'info>,
    /// CHECK: the delegation PDA; created by the handler, or the building's delegation to
    /// replace (owner and discriminator checked when read).
    #[account(mut, seeds = [seeds::ORDER_DELEGATE, lfdi.as_ref()], bump)]
    pub delegation: UncheckedAccount<'info>,
    #[account(mut)]
    pub owner: Signer<'info>,
    pub system_program: Program<'info, System>,
}

impl AuthorizeDelegate<'_> {
    pub fn validate(&self, lfdi: &[u8; 20], delegate: &Pubkey) -> Result<()> {
        let meter = Meter::load_for(&self.meter, lfdi)?;
        require_keys_eq!(meter.owner, self.owner.key(), TradingError::NotMeterOwner);
        require!(
            *delegate != Pubkey::default() && *delegate != self.owner.key(),
            TradingError::InvalidDelegate
        );
        Ok(())
    }
}

pub fn handler(
    ctx: Context<AuthorizeDelegate>,
    lfdi: [u8; 20],
    delegate: Pubkey,
    rent_float: u64,
) -> Result<()> {
    let a = &ctx.accounts;
    let owner = a.owner.key();
    let info = a.delegation.to_account_info();
    let bump = ctx.bumps.delegation;
    let replaced = if info.data_is_empty() {
        create_pda_account(
            &a.owner.to_account_info(),
            &info,
            &a.system_program.to_account_info(),
            OrderDelegate::SPACE,
            &crate::ID,
            &[seeds::ORDER_DELEGATE, &lfdi, &[bump]],
        )?;
        init_zero_copy::<OrderDelegate>(&info, |_| {})?;
        None
    } else {
        let existing = program_common::zero_copy::read::<OrderDelegate>(&info)?;
        require_keys_eq!(
            existing.owner,
            owner,
            TradingError::DelegationOfPreviousOwner
        );
        Some(existing.delegate)
    };
    if rent_float > 0 {
        anchor_lang::system_program::transfer(
            CpiContext::new(
                a.system_program.key(),
                anchor_lang::system_program::Transfer {
                    from: a.owner.to_account_info(),
                    to: info.clone(),
                },
            ),
            rent_float,
        )?;
    }
    let now = Clock::get()?.unix_timestamp;
    program_common::pda::write_zero_copy(
        &info,
        &OrderDelegate {
            owner,
            delegate,
            lfdi,
            bump,
            _reserved: [0; 3],
            authorized_at: now,
        },
    )?;
    program_common::emit_event!(DelegateAuthorized {
        lfdi,
        owner,
        delegate,
        replaced,
        rent_float: OrderDelegate::float_of(&info)?,
    });
    Ok(())
}
