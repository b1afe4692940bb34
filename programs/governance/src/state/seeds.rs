//! Every PDA seed of the governance program.

/// The singleton council: `[COUNCIL]`.
pub const COUNCIL: &[u8] = b"council";
/// The governance authority for one target program, the key that program accepts for
/// privileged actions: `[AUTHORITY, target program id]`. It holds no data; it only signs, by
/// CPI from `execute` and `guardian_pause`, and only for calls to its own target program, so
/// a proposal that calls some other program hands it no key to the GridTokenX programs.
pub const AUTHORITY: &[u8] = b"authority";
/// A proposal: `[PROPOSAL, index as u64 little-endian]`.
pub const PROPOSAL: &[u8] = b"proposal";

/// The governance authority for `program_id`: the key that program accepts for privileged
/// actions once it is handed over (off-chain helper; costs a PDA search).
pub fn authority_for(program_id: &anchor_lang::prelude::Pubkey) -> anchor_lang::prelude::Pubkey {
    anchor_lang::prelude::Pubkey::find_program_address(
        &[AUTHORITY, program_id.as_ref()],
        &crate::ID,
    )
    .0
}
