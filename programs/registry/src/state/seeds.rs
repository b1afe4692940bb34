//! Every PDA seed of the registry.

/// The singleton campus: `[CAMPUS]`.
pub const CAMPUS: &[u8] = b"campus";
/// A meter: `[METER, lfdi]`.
pub const METER: &[u8] = b"meter";
