//! Initialisers that create a program's singleton are bound to the program's upgrade
//! authority: whoever deployed (and can upgrade) the program initialises it, not whoever
//! calls first. Each initialiser takes the program's `ProgramData` account (upgradeable
//! loader) as `Account<ProgramData>`, with `seeds = [program id]`,
//! `seeds::program = bpf_loader_upgradeable::ID` and a constraint that its upgrade authority
//! signed.
use anchor_lang::prelude::*;
use anchor_lang::solana_program::bpf_loader_upgradeable;

/// The `ProgramData` account of `program_id` under the upgradeable loader.
pub fn program_data_address(program_id: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[program_id.as_ref()], &bpf_loader_upgradeable::ID).0
}
