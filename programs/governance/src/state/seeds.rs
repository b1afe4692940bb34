//! Every PDA seed of the governance program.

/// The singleton council: `[COUNCIL]`.
pub const COUNCIL: &[u8] = b"council";
/// The governance authority, the key every other program accepts for privileged actions:
/// `[AUTHORITY]`. It holds no data; it only signs, by CPI from `execute` and `guardian_pause`.
pub const AUTHORITY: &[u8] = b"authority";
/// A proposal: `[PROPOSAL, index as u64 little-endian]`.
pub const PROPOSAL: &[u8] = b"proposal";
