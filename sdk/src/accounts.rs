//! Reading the programs' state as a client sees it: accounts as `getAccountInfo` returns
//! them, and the Anchor events in a transaction's logs.
use anchor_lang::{AccountDeserialize, Discriminator};
use base64::Engine;
use solana_account::Account;

/// Decodes a zero-copy Anchor account (discriminator checked).
pub fn zero_copy<T: bytemuck::Pod + Discriminator>(account: &Account) -> Option<T> {
    let data = &account.data;
    let size = std::mem::size_of::<T>();
    if data.len() < 8 + size || !data.starts_with(T::DISCRIMINATOR) {
        return None;
    }
    Some(bytemuck::pod_read_unaligned(&data[8..8 + size]))
}

/// An SPL Token account's mint and amount: mint (32 bytes), owner (32), amount (u64,
/// little-endian); `None` for data too short to be one.
pub fn token_account(account: &Account) -> Option<([u8; 32], u64)> {
    let data = &account.data;
    let mint: [u8; 32] = data.get(..32)?.try_into().ok()?;
    let amount = u64::from_le_bytes(data.get(64..72)?.try_into().ok()?);
    Some((mint, amount))
}

/// An SPL Token mint's supply and decimals: an optional authority (36 bytes), supply (u64,
/// little-endian), decimals (u8); `None` for data too short to be one.
pub fn mint_supply_and_decimals(account: &Account) -> Option<(u64, u8)> {
    let data = &account.data;
    let supply = u64::from_le_bytes(data.get(36..44)?.try_into().ok()?);
    Some((supply, *data.get(44)?))
}

/// Decodes a borsh Anchor account (discriminator checked).
pub fn anchor_account<T: AccountDeserialize>(account: &Account) -> Option<T> {
    T::try_deserialize(&mut account.data.as_slice()).ok()
}

/// The Anchor events of type `T` in a transaction's logs, in order (a native run logs them
/// one level down, as `Program log: Program data: ...`).
pub fn events<T: anchor_lang::Event + anchor_lang::AnchorDeserialize>(logs: &[String]) -> Vec<T> {
    logs.iter()
        .filter_map(|line| {
            line.strip_prefix("Program data: ")
                .or_else(|| line.strip_prefix("Program log: Program data: "))
        })
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|bytes| bytes.starts_with(T::DISCRIMINATOR))
        .filter_map(|bytes| T::deserialize(&mut &bytes[T::DISCRIMINATOR.len()..]).ok())
        .collect()
}
