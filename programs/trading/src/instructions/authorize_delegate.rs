use anchor_lang::prelude::*;
use program_common::pda::{create_pda_account, init_zero_copy};
use registry::Meter;

use crate::errors::TradingError;
use crate::events::DelegateAuthorized;
use crate::state::{seeds, OrderDelegate};

/// The meter's owner lets `delegate` place and cancel the building's orders for them (see
/// `OrderDelegate`), or replaces the building's delegate. The delegation's rent is the
/// owner's (paid by them, returned when it is revoked). The escrow the delegate can lock is
/// capped separately, by the allowance the owner approves for the market's vault authority
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

pub fn handler(ctx: Context<AuthorizeDelegate>, lfdi: [u8; 20], delegate: Pubkey) -> Result<()> {
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
        Some(program_common::zero_copy::read::<OrderDelegate>(&info)?.delegate)
    };
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
    });
    Ok(())
}
