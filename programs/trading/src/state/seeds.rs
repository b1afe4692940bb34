//! Every PDA seed of the trading program.

/// The campus market: `[MARKET]`.
pub const MARKET: &[u8] = b"market";
/// Owner of both vaults; holds no data, signs transfers out of them: `[VAULT_AUTHORITY]`.
pub const VAULT_AUTHORITY: &[u8] = b"vault_authority";
/// The GRID (base) escrow vault: `[BASE_VAULT]`.
pub const BASE_VAULT: &[u8] = b"base_vault";
/// The quote escrow vault, which also holds the fees: `[QUOTE_VAULT]`.
pub const QUOTE_VAULT: &[u8] = b"quote_vault";
/// The order book of one interval: `[BOOK, interval index as u64 little-endian]`.
pub const BOOK: &[u8] = b"book";
