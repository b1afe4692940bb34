//! Instruction builders and addresses for the governance program.
use anchor_lang::prelude::Pubkey;
use governance::{accounts, instruction, seeds, CouncilConfig, ProposedInstruction};
use solana_instruction::{AccountMeta, Instruction};

use super::anchor_ix;

pub fn council_address() -> Pubkey {
    Pubkey::find_program_address(&[seeds::COUNCIL], &governance::ID).0
}

/// The key `program` accepts for privileged actions once handed over to governance.
pub fn authority_for(program: Pubkey) -> Pubkey {
    governance::seeds::authority_for(&program)
}

pub fn proposal_address(index: u64) -> Pubkey {
    Pubkey::find_program_address(&[seeds::PROPOSAL, &index.to_le_bytes()], &governance::ID).0
}

pub fn initialize_council(payer: Pubkey, config: CouncilConfig) -> Instruction {
    anchor_ix(
        governance::ID,
        accounts::InitializeCouncil {
            council: council_address(),
            payer,
            program_data: super::program_data_address(governance::ID),
            system_program: anchor_lang::system_program::ID,
        },
        instruction::InitializeCouncil { config },
    )
}

pub fn propose(proposer: Pubkey, index: u64, target: &Instruction) -> Instruction {
    anchor_ix(
        governance::ID,
        accounts::Propose {
            council: council_address(),
            proposal: proposal_address(index),
            proposer,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::Propose {
            instruction: ProposedInstruction::from(target),
        },
    )
}

fn vote_accounts(index: u64, member: Pubkey) -> accounts::Vote {
    accounts::Vote {
        council: council_address(),
        proposal: proposal_address(index),
        member,
    }
}

pub fn approve(member: Pubkey, index: u64) -> Instruction {
    anchor_ix(
        governance::ID,
        vote_accounts(index, member),
        instruction::Approve {},
    )
}

pub fn reject(member: Pubkey, index: u64) -> Instruction {
    anchor_ix(
        governance::ID,
        vote_accounts(index, member),
        instruction::Reject {},
    )
}

/// `execute` for proposal `index` whose instruction is `target`: the target's accounts follow
/// as remaining accounts, with the governance authority's signature left to the program.
/// Every signer the target names is left unsigned here: only governance can supply it.
pub fn execute(executor: Pubkey, index: u64, target: &Instruction) -> Instruction {
    let mut ix = anchor_ix(
        governance::ID,
        accounts::Execute {
            council: council_address(),
            proposal: proposal_address(index),
            target_program: target.program_id,
            executor,
        },
        instruction::Execute {},
    );
    let authority = authority_for(target.program_id);
    ix.accounts
        .extend(target.accounts.iter().map(|m| AccountMeta {
            pubkey: m.pubkey,
            is_signer: m.is_signer && m.pubkey != authority,
            is_writable: m.is_writable,
        }));
    ix
}

pub fn cancel(proposer: Pubkey, index: u64) -> Instruction {
    anchor_ix(
        governance::ID,
        accounts::Cancel {
            council: council_address(),
            proposal: proposal_address(index),
            proposer,
        },
        instruction::Cancel {},
    )
}

pub fn update_council(config: CouncilConfig) -> Instruction {
    anchor_ix(
        governance::ID,
        accounts::UpdateCouncil {
            council: council_address(),
            governance_authority: authority_for(governance::ID),
        },
        instruction::UpdateCouncil { config },
    )
}

pub fn guardian_pause(
    guardian: Pubkey,
    target_program: Pubkey,
    target_config: Pubkey,
) -> Instruction {
    anchor_ix(
        governance::ID,
        accounts::GuardianPause {
            council: council_address(),
            guardian,
            governance_authority: authority_for(target_program),
            target_program,
            target_config,
        },
        instruction::GuardianPause {},
    )
}
