//! Instruction builders and addresses for the five programs: one definition used by the
//! migrations, the keeper, the test suite and the SBF benchmark.
use anchor_lang::{InstructionData, ToAccountMetas};
use solana_instruction::Instruction;

pub mod energy_token;
pub mod governance;
pub mod oracle;
pub mod registry;
pub mod trading;

pub use anchor_lang::prelude::Pubkey;

/// An Anchor instruction from the generated `accounts` and `instruction` structs.
pub fn anchor_ix(
    program_id: Pubkey,
    accounts: impl ToAccountMetas,
    data: impl InstructionData,
) -> Instruction {
    Instruction {
        program_id,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

/// The `ProgramData` address of `program` under the upgradeable loader (what the
/// initialisers read to find the upgrade authority).
pub fn program_data_address(program: Pubkey) -> Pubkey {
    program_common::upgrade::program_data_address(&program)
}

/// A compute-unit limit instruction (Compute Budget program, `SetComputeUnitLimit`).
pub fn compute_unit_limit(units: u32) -> Instruction {
    let mut data = vec![2u8];
    data.extend_from_slice(&units.to_le_bytes());
    Instruction {
        program_id: solana_sdk_ids::compute_budget::ID,
        accounts: vec![],
        data,
    }
}
