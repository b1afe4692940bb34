//! Reading and writing zero-copy accounts handed to a program as plain `AccountInfo`s
//! (remaining accounts, or another program's accounts), with the checks Anchor's
//! `AccountLoader` makes: owner, discriminator, size.
use anchor_lang::prelude::*;
use anchor_lang::{Owner, ZeroCopy};

fn check<T: ZeroCopy + Owner>(info: &AccountInfo, data: &[u8]) -> Result<()> {
    require_keys_eq!(
        *info.owner,
        T::owner(),
        ErrorCode::AccountOwnedByWrongProgram
    );
    let disc = T::DISCRIMINATOR;
    require!(
        data.len() >= disc.len(),
        ErrorCode::AccountDiscriminatorNotFound
    );
    require!(
        &data[..disc.len()] == disc,
        ErrorCode::AccountDiscriminatorMismatch
    );
    require!(
        data.len() >= disc.len() + std::mem::size_of::<T>(),
        ErrorCode::AccountDidNotDeserialize
    );
    Ok(())
}

/// A copy of the `T` in `info`, after checking owner, discriminator and size.
pub fn read<T: ZeroCopy + Owner>(info: &AccountInfo) -> Result<T> {
    let data = info.try_borrow_data()?;
    check::<T>(info, &data)?;
    let at = T::DISCRIMINATOR.len();
    Ok(bytemuck::pod_read_unaligned(
        &data[at..at + std::mem::size_of::<T>()],
    ))
}

/// Runs `f` on the `T` in `info` in place, after the same checks and that it is writable.
pub fn update<T: ZeroCopy + Owner, R>(
    info: &AccountInfo,
    f: impl FnOnce(&mut T) -> R,
) -> Result<R> {
    require!(info.is_writable, ErrorCode::AccountNotMutable);
    let mut data = info.try_borrow_mut_data()?;
    check::<T>(info, &data)?;
    let at = T::DISCRIMINATOR.len();
    let bytes = &mut data[at..at + std::mem::size_of::<T>()];
    // Account data is 8-byte aligned on every runtime, and the discriminator is 8 bytes.
    // (No copying fallback: a copy of a large `T` would not fit the 4 KiB SBF stack.)
    let value = bytemuck::try_from_bytes_mut::<T>(bytes)
        .map_err(|_| error!(ErrorCode::AccountDidNotDeserialize))?;
    Ok(f(value))
}

/// Whether `info` holds a `T` (owner and discriminator), without reading it.
pub fn holds<T: ZeroCopy + Owner>(info: &AccountInfo) -> bool {
    info.try_borrow_data()
        .map(|data| check::<T>(info, &data).is_ok())
        .unwrap_or(false)
}
