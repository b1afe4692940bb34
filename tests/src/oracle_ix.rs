//! Oracle builders (`sdk::ix::oracle`) with the test suite's cluster and limits.
pub use sdk::ix::oracle::{
    accept_authority, config_address, ed25519_instruction, ed25519_verify, init_meter_state,
    meter_state_address, pause_until, propose_authority, read_meter_state, set_attestors,
    set_limits, set_paused, skip_batches, submit_readings,
};

use anchor_lang::prelude::Pubkey;
use oracle::attestation::Reading;
use oracle::ReadingLimits;
use registry::identity::Lfdi;
use solana_instruction::Instruction;
use solana_keypair::Keypair;

/// The cluster the test oracle is initialised for (stands in for a genesis hash).
pub const CLUSTER: [u8; 32] = *b"gridtokenx test cluster genesis.";

/// One minute between readings at least, one minute of clock skew, readings at most a day
/// old, 10 % slack.
pub fn default_limits() -> ReadingLimits {
    ReadingLimits {
        max_future_skew_s: 60,
        min_interval_s: 60,
        max_age_s: 86_400,
        tolerance_bps: 1_000,
    }
}

/// The domain of the test oracle's batches.
pub fn domain() -> [u8; 32] {
    sdk::ix::oracle::domain(&CLUSTER)
}

/// `initialize_oracle` for the test cluster with the default limits.
pub fn initialize_oracle(authority: Pubkey, attestors: Vec<Pubkey>, quorum: u8) -> Instruction {
    sdk::ix::oracle::initialize_oracle(authority, attestors, quorum, default_limits(), CLUSTER)
}

/// The batch message for the test oracle, with readings for the meters `lfdis` in order.
pub fn batch_message(sequence: u64, lfdis: &[Lfdi], readings: &[Reading]) -> Vec<u8> {
    sdk::ix::oracle::batch_message(&domain(), sequence, lfdis, readings)
}

/// `batch_message` with another domain (another program, campus or cluster).
pub fn batch_message_in(
    domain: &[u8; 32],
    sequence: u64,
    lfdis: &[Lfdi],
    readings: &[Reading],
) -> Vec<u8> {
    sdk::ix::oracle::batch_message(domain, sequence, lfdis, readings)
}

/// The Ed25519 verification and `submit_readings` of a batch for the test oracle.
pub fn attested_batch(
    submitter: Pubkey,
    sequence: u64,
    readings: &[Reading],
    lfdis: &[Lfdi],
    attestors: &[&Keypair],
) -> [Instruction; 2] {
    sdk::ix::oracle::attested_batch(submitter, &domain(), sequence, readings, lfdis, attestors)
}
