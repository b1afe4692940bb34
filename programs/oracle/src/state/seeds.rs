//! Every PDA seed of the oracle.

/// The singleton configuration: `[CONFIG]`.
pub const CONFIG: &[u8] = b"oracle_config";
/// A meter's reading state: `[METER_STATE, lfdi]`.
pub const METER_STATE: &[u8] = b"meter_state";
