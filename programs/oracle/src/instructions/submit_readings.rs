use anchor_lang::prelude::*;
use registry::{Meter, MeterStatus};
use solana_instructions_sysvar::load_instruction_at_checked;

use crate::attestation::{ed25519, Batch};
use crate::errors::OracleError;
use crate::events::ReadingsAccepted;
use crate::state::{seeds, MeterState, OracleConfig, MAX_ATTESTORS};
use registry::pda::write_account;

/// Applies one attested batch. The transaction carries, before this instruction, an Ed25519
/// program instruction (at `ed25519_instruction_index`) that verifies the batch message with
/// `quorum` attestor signatures. Remaining accounts: for each reading in the batch's order,
/// the registry `Meter` (read-only) then its oracle `MeterState` (writable).
#[derive(Accounts)]
pub struct SubmitReadings<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.bump)]
    pub config: Account<'info, OracleConfig>,
    /// CHECK: the instructions sysvar, checked by address.
    #[account(address = solana_sdk_ids::sysvar::instructions::ID)]
    pub instructions: UncheckedAccount<'info>,
    /// Pays the fees; has no say over the data.
    pub submitter: Signer<'info>,
}

impl SubmitReadings<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(!self.config.paused, OracleError::Paused);
        Ok(())
    }
}

/// The batch message verified by the Ed25519 instruction at `index`, and how many distinct
/// authorised attestors signed it.
fn verified_message(config: &OracleConfig, data: &[u8], index: u8) -> Result<(usize, Vec<u8>)> {
    let verified = ed25519::parse(data, u16::from(index), MAX_ATTESTORS).map_err(|e| match e {
        ed25519::Ed25519Error::Malformed => OracleError::MalformedEd25519,
        ed25519::Ed25519Error::OffsetsOutsideInstruction => OracleError::Ed25519OffsetsSpoofed,
    })?;
    let message = verified[0].message;
    let mut signers: Vec<Pubkey> = Vec::with_capacity(verified.len());
    for v in &verified {
        require!(v.message == message, OracleError::MessageMismatch);
        let key = Pubkey::new_from_array(*v.public_key);
        require!(config.is_attestor(&key), OracleError::UnknownAttestor);
        if !signers.contains(&key) {
            signers.push(key);
        }
    }
    require!(
        signers.len() >= usize::from(config.quorum),
        OracleError::QuorumNotMet
    );
    Ok((signers.len(), message.to_vec()))
}

pub fn handler<'info>(
    ctx: Context<'info, SubmitReadings<'info>>,
    ed25519_instruction_index: u8,
) -> Result<()> {
    let ed25519_ix = load_instruction_at_checked(
        usize::from(ed25519_instruction_index),
        &ctx.accounts.instructions.to_account_info(),
    )
    .map_err(|_| OracleError::NotEd25519Instruction)?;
    require_keys_eq!(
        ed25519_ix.program_id,
        solana_sdk_ids::ed25519_program::ID,
        OracleError::NotEd25519Instruction
    );
    let config = &ctx.accounts.config;
    let (attestors, message) =
        verified_message(config, &ed25519_ix.data, ed25519_instruction_index)?;

    let batch = Batch::parse(&message).map_err(|_| OracleError::MalformedBatch)?;
    require!(
        batch.program_id == &crate::ID.to_bytes(),
        OracleError::WrongProgram
    );
    require!(
        batch.campus == &config.campus.to_bytes(),
        OracleError::WrongCampus
    );
    config.check_sequence(batch.sequence)?;

    let accounts = ctx.remaining_accounts;
    require!(
        accounts.len() == 2 * batch.len(),
        OracleError::AccountsMismatch
    );
    let now = Clock::get()?.unix_timestamp;
    for i in 0..batch.len() {
        let reading = batch.reading(i);
        let meter =
            Meter::load_checked(&accounts[2 * i]).map_err(|_| OracleError::MeterNotRegistered)?;
        require!(
            meter.index == reading.meter_index,
            OracleError::MeterIndexMismatch
        );
        require!(
            meter.status == MeterStatus::Active,
            OracleError::MeterNotActive
        );
        let state_info = &accounts[2 * i + 1];
        require!(state_info.is_writable, OracleError::AccountsMismatch);
        let mut state = MeterState::load_checked(state_info, &meter.lfdi)
            .map_err(|_| OracleError::MeterStateMissing)?;
        state.check(&reading, &meter.capacity, &config.limits, now)?;
        state.apply(&reading, batch.sequence)?;
        // Written at once, so a meter appearing twice in a batch is checked against its
        // first reading.
        write_account(state_info, &state)?;
    }

    ctx.accounts.config.last_sequence = batch.sequence;
    emit!(ReadingsAccepted {
        sequence: batch.sequence,
        readings: batch.len() as u16,
        attestors: attestors as u8,
    });
    Ok(())
}
