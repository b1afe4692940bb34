//! Instruction builders and addresses for the oracle program, and batch signing.
use anchor_lang::prelude::Pubkey;
use oracle::attestation::{batch_domain, ed25519, encode_batch, meters_digest, Reading};
use oracle::{accounts, instruction, seeds, InitializeOracleArgs, ReadingLimits};
use registry::identity::Lfdi;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::anchor_ix;
use super::registry::{campus_address, meter_address};

pub fn config_address() -> Pubkey {
    Pubkey::find_program_address(&[seeds::CONFIG], &oracle::ID).0
}

pub fn meter_state_address(lfdi: &Lfdi) -> Pubkey {
    Pubkey::find_program_address(&[seeds::METER_STATE, lfdi], &oracle::ID).0
}

/// The domain of an oracle's batches for the registry campus on `cluster` (its genesis hash).
pub fn domain(cluster: &[u8; 32]) -> [u8; 32] {
    batch_domain(
        &oracle::ID.to_bytes(),
        &campus_address().to_bytes(),
        cluster,
    )
}

/// `initialize_oracle` by the campus authority, for the cluster whose genesis hash is
/// `cluster`.
pub fn initialize_oracle(
    authority: Pubkey,
    attestors: Vec<Pubkey>,
    quorum: u8,
    limits: ReadingLimits,
    cluster: [u8; 32],
) -> Instruction {
    anchor_ix(
        oracle::ID,
        accounts::InitializeOracle {
            config: config_address(),
            campus: campus_address(),
            authority,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::InitializeOracle {
            args: InitializeOracleArgs {
                attestors,
                quorum,
                limits,
                cluster,
            },
        },
    )
}

fn admin(authority: Pubkey) -> accounts::ConfigAdmin {
    accounts::ConfigAdmin {
        config: config_address(),
        authority,
    }
}

pub fn set_attestors(authority: Pubkey, attestors: Vec<Pubkey>, quorum: u8) -> Instruction {
    anchor_ix(
        oracle::ID,
        admin(authority),
        instruction::SetAttestors { attestors, quorum },
    )
}

pub fn set_limits(authority: Pubkey, limits: ReadingLimits) -> Instruction {
    anchor_ix(
        oracle::ID,
        admin(authority),
        instruction::SetLimits { limits },
    )
}

pub fn propose_authority(authority: Pubkey, new_authority: Pubkey) -> Instruction {
    anchor_ix(
        oracle::ID,
        admin(authority),
        instruction::ProposeAuthority { new_authority },
    )
}

pub fn accept_authority(new_authority: Pubkey) -> Instruction {
    anchor_ix(
        oracle::ID,
        accounts::AcceptAuthority {
            config: config_address(),
            new_authority,
        },
        instruction::AcceptAuthority {},
    )
}

pub fn skip_batches(authority: Pubkey, through: u64) -> Instruction {
    anchor_ix(
        oracle::ID,
        admin(authority),
        instruction::SkipBatches { through },
    )
}

/// `set_paused`: paused until lifted (`true`) or lifted (`false`).
pub fn set_paused(authority: Pubkey, paused: bool) -> Instruction {
    pause_until(
        authority,
        if paused {
            program_common::pause::INDEFINITELY
        } else {
            0
        },
    )
}

/// `set_paused(paused_until)`: paused until that Unix time (0 lifts the pause).
pub fn pause_until(authority: Pubkey, paused_until: i64) -> Instruction {
    anchor_ix(
        oracle::ID,
        admin(authority),
        instruction::SetPaused { paused_until },
    )
}

/// The `read_meter_state` view (simulate it; the verified energy comes back as return data).
pub fn read_meter_state(lfdi: &Lfdi) -> Instruction {
    anchor_ix(
        oracle::ID,
        accounts::ReadMeterState {
            meter_state: meter_state_address(lfdi),
        },
        instruction::ReadMeterState {},
    )
}

pub fn init_meter_state(payer: Pubkey, lfdi: &Lfdi) -> Instruction {
    anchor_ix(
        oracle::ID,
        accounts::InitMeterState {
            meter: meter_address(lfdi),
            meter_state: meter_state_address(lfdi),
            payer,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::InitMeterState {},
    )
}

/// `submit_readings` for a batch whose readings are, in order, for the meters `lfdis`.
pub fn submit_readings(submitter: Pubkey, ed25519_index: u8, lfdis: &[Lfdi]) -> Instruction {
    let mut ix = anchor_ix(
        oracle::ID,
        accounts::SubmitReadings {
            config: config_address(),
            instructions: solana_sdk_ids::sysvar::instructions::ID,
            submitter,
        },
        instruction::SubmitReadings {
            ed25519_instruction_index: ed25519_index,
        },
    );
    for lfdi in lfdis {
        ix.accounts
            .push(AccountMeta::new_readonly(meter_address(lfdi), false));
        ix.accounts
            .push(AccountMeta::new(meter_state_address(lfdi), false));
    }
    ix
}

/// A batch message in `domain`, with readings for the meters `lfdis` in order.
pub fn batch_message(
    domain: &[u8; 32],
    sequence: u64,
    lfdis: &[Lfdi],
    readings: &[Reading],
) -> Vec<u8> {
    let states: Vec<[u8; 32]> = lfdis
        .iter()
        .map(|l| meter_state_address(l).to_bytes())
        .collect();
    encode_batch(domain, sequence, &meters_digest(states.iter()), readings).expect("batch fits")
}

/// The Ed25519 instruction for a message already signed by attestors (key, signature).
pub fn ed25519_verify(message: &[u8], signatures: &[([u8; 32], [u8; 64])]) -> Instruction {
    Instruction {
        program_id: solana_sdk_ids::ed25519_program::ID,
        accounts: vec![],
        data: ed25519::instruction_data(message, signatures),
    }
}

/// An Ed25519 program instruction verifying `message` signed by each of `attestors`.
pub fn ed25519_instruction(message: &[u8], attestors: &[&Keypair]) -> Instruction {
    let signers: Vec<([u8; 32], [u8; 64])> = attestors
        .iter()
        .map(|k| {
            let signature: [u8; 64] = k.sign_message(message).into();
            (k.pubkey().to_bytes(), signature)
        })
        .collect();
    Instruction {
        program_id: solana_sdk_ids::ed25519_program::ID,
        accounts: vec![],
        data: ed25519::instruction_data(message, &signers),
    }
}

/// The two instructions that submit a batch: the Ed25519 verification, then the oracle's.
pub fn attested_batch(
    submitter: Pubkey,
    domain: &[u8; 32],
    sequence: u64,
    readings: &[Reading],
    lfdis: &[Lfdi],
    attestors: &[&Keypair],
) -> [Instruction; 2] {
    let message = batch_message(domain, sequence, lfdis, readings);
    [
        ed25519_instruction(&message, attestors),
        submit_readings(submitter, 0, lfdis),
    ]
}
