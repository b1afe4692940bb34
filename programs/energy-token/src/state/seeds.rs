//! Every PDA seed of the energy-token program.

/// The singleton configuration: `[CONFIG]`.
pub const CONFIG: &[u8] = b"token_config";
/// The GRID mint (1 GRID = 1 kWh, 3 decimals: one base unit is 1 Wh): `[GRID_MINT]`.
pub const GRID_MINT: &[u8] = b"grid_mint";
/// The REC mint (1 REC = 1 MWh of verified export, 0 decimals): `[REC_MINT]`.
pub const REC_MINT: &[u8] = b"rec_mint";
/// Mint authority of both mints; holds no data, signs `mint_to` by CPI: `[MINT_AUTHORITY]`.
pub const MINT_AUTHORITY: &[u8] = b"mint_authority";
/// A meter's ledger: `[LEDGER, lfdi]`.
pub const LEDGER: &[u8] = b"ledger";
/// A REC retirement record: `[RETIREMENT, index as u64 little-endian]`.
pub const RETIREMENT: &[u8] = b"retirement";
