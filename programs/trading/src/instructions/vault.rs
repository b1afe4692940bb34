//! Moving tokens out of the market's vaults (the vault authority PDA signs), and closing the
//! program's accounts.
use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, Transfer};

use crate::state::seeds;

pub fn pay_out<'info>(
    token_program: &Program<'info, Token>,
    vault: &AccountInfo<'info>,
    to: &AccountInfo<'info>,
    vault_authority: &AccountInfo<'info>,
    bump: u8,
    amount: u64,
) -> Result<()> {
    signed_transfer(token_program, vault, to, vault_authority, bump, amount)
}

/// A transfer the vault authority PDA signs: as the vaults' owner, or as an owner's SPL
/// delegate.
fn signed_transfer<'info>(
    token_program: &Program<'info, Token>,
    from: &AccountInfo<'info>,
    to: &AccountInfo<'info>,
    vault_authority: &AccountInfo<'info>,
    bump: u8,
    amount: u64,
) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    let bump = [bump];
    let signer: &[&[u8]] = &[seeds::VAULT_AUTHORITY, &bump];
    token::transfer(
        CpiContext::new_with_signer(
            token_program.key(),
            Transfer {
                from: from.clone(),
                to: to.clone(),
                authority: vault_authority.clone(),
            },
            &[signer],
        ),
        amount,
    )
}

/// Moves `amount` from `from` (a trader's account) into a vault, signed by the trader.
pub fn pay_in<'info>(
    token_program: &Program<'info, Token>,
    from: &AccountInfo<'info>,
    vault: &AccountInfo<'info>,
    owner: &AccountInfo<'info>,
    amount: u64,
) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    token::transfer(
        CpiContext::new(
            token_program.key(),
            Transfer {
                from: from.clone(),
                to: vault.clone(),
                authority: owner.clone(),
            },
        ),
        amount,
    )
}

/// Moves `amount` from `from` (an owner's account) into a vault for an order their delegate
/// placed: the vault authority PDA signs as the account's SPL delegate, within the allowance
/// the owner approved (the caller checked it covers `amount`).
pub fn pay_in_by_allowance<'info>(
    token_program: &Program<'info, Token>,
    from: &AccountInfo<'info>,
    vault: &AccountInfo<'info>,
    vault_authority: &AccountInfo<'info>,
    bump: u8,
    amount: u64,
) -> Result<()> {
    signed_transfer(token_program, from, vault, vault_authority, bump, amount)
}

/// Closes a program-owned account: its lamports go to `to`, its data is cleared and it is
/// given back to the System program (so the address can be used again).
pub fn close_account(account: &AccountInfo, to: &AccountInfo) -> Result<()> {
    require_keys_neq!(
        *account.key,
        *to.key,
        crate::errors::TradingError::WrongBalance
    );
    let lamports = account.lamports();
    **to.try_borrow_mut_lamports()? = to
        .lamports()
        .checked_add(lamports)
        .ok_or(crate::errors::TradingError::Overflow)?;
    **account.try_borrow_mut_lamports()? = 0;
    account.try_borrow_mut_data()?.fill(0);
    account.assign(&anchor_lang::system_program::ID);
    account.resize(0)?;
    Ok(())
}
