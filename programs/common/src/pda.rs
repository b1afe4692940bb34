//! Creating program-owned PDA accounts safely.
//!
//! Anchor 1.2's `init` creates an account that already holds lamports with the System
//! program's `CreateAccountAllowPrefund`, which clusters without that feature reject. Anyone
//! can send lamports to a predictable address (a meter's, the next proposal's), so `init`
//! would let them block its creation for ever. This helper uses the instructions every
//! cluster has: `create_account` for an empty address, otherwise top-up, `allocate`, `assign`.
use anchor_lang::prelude::*;
use anchor_lang::solana_program::program::{invoke, invoke_signed};
use anchor_lang::solana_program::system_instruction;
use anchor_lang::{Discriminator, ZeroCopy};

/// Creates `account` (a PDA of `owner` with `signer_seeds`) with `space` bytes, rent-exempt,
/// paid by `payer`. Fails if the account already has data or another owner.
pub fn create_pda_account<'info>(
    payer: &AccountInfo<'info>,
    account: &AccountInfo<'info>,
    system_program: &AccountInfo<'info>,
    space: usize,
    owner: &Pubkey,
    signer_seeds: &[&[u8]],
) -> Result<()> {
    let rent = Rent::get()?.minimum_balance(space);
    let current = account.lamports();
    if current == 0 {
        invoke_signed(
            &system_instruction::create_account(payer.key, account.key, rent, space as u64, owner),
            &[payer.clone(), account.clone(), system_program.clone()],
            &[signer_seeds],
        )?;
        return Ok(());
    }
    if let Some(top_up) = rent.checked_sub(current).filter(|l| *l > 0) {
        invoke(
            &system_instruction::transfer(payer.key, account.key, top_up),
            &[payer.clone(), account.clone(), system_program.clone()],
        )?;
    }
    invoke_signed(
        &system_instruction::allocate(account.key, space as u64),
        &[account.clone(), system_program.clone()],
        &[signer_seeds],
    )?;
    invoke_signed(
        &system_instruction::assign(account.key, owner),
        &[account.clone(), system_program.clone()],
        &[signer_seeds],
    )?;
    Ok(())
}

/// Writes an Anchor account (discriminator, then Borsh) into a freshly created account.
pub fn write_account<T: AccountSerialize>(account: &AccountInfo, value: &T) -> Result<()> {
    let mut data = account.try_borrow_mut_data()?;
    let mut cursor: &mut [u8] = &mut data;
    value.try_serialize(&mut cursor)
}

/// Writes a zero-copy account (discriminator, then its bytes) into a freshly created account.
pub fn write_zero_copy<T: ZeroCopy + Discriminator>(
    account: &AccountInfo,
    value: &T,
) -> Result<()> {
    let mut data = account.try_borrow_mut_data()?;
    let disc = T::DISCRIMINATOR;
    let body = bytemuck::bytes_of(value);
    require!(
        data.len() >= disc.len() + body.len(),
        ErrorCode::AccountDidNotSerialize
    );
    data[..disc.len()].copy_from_slice(disc);
    data[disc.len()..disc.len() + body.len()].copy_from_slice(body);
    Ok(())
}

/// Writes the discriminator of zero-copy account `T` into a freshly created (zeroed)
/// account and lets `init` set its fields in place: for accounts too large to build on the
/// 4 KiB SBF stack.
pub fn init_zero_copy<T: ZeroCopy + anchor_lang::Owner>(
    account: &AccountInfo,
    init: impl FnOnce(&mut T),
) -> Result<()> {
    {
        let mut data = account.try_borrow_mut_data()?;
        let disc = T::DISCRIMINATOR;
        require!(
            data.len() >= disc.len() + std::mem::size_of::<T>(),
            ErrorCode::AccountDidNotSerialize
        );
        data[..disc.len()].copy_from_slice(disc);
    }
    crate::zero_copy::update::<T, _>(account, init)
}
