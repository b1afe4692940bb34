//! Every PDA seed of the trading program.

/// The campus market: `[MARKET]`.
pub const MARKET: &[u8] = b"market";
/// Owner of both vaults; holds no data, signs transfers out of them: `[VAULT_AUTHORITY]`.
pub const VAULT_AUTHORITY: &[u8] = b"vault_authority";
/// The GRID (base) escrow vault: `[BASE_VAULT]`.
pub const BASE_VAULT: &[u8] = b"base_vault";
/// The quote escrow vault, which also holds the fees: `[QUOTE_VAULT]`.
pub const QUOTE_VAULT: &[u8] = b"quote_vault";
/// The aggregate ladder of one interval: `[BOOK, interval u64 LE]`.
pub const BOOK: &[u8] = b"book";
/// One building's order on one side of one interval: `[ORDER, interval u64 LE, lfdi, side]`.
pub const ORDER: &[u8] = b"order";
/// A trader's claimable balances: `[BALANCE, owner]`.
pub const BALANCE: &[u8] = b"balance";
/// A building's order delegate (orders only, revocable): `[ORDER_DELEGATE, lfdi]`.
pub const ORDER_DELEGATE: &[u8] = b"order_delegate";
