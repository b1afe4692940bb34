use anchor_lang::prelude::*;
use program_common::zero_copy;
use registry::Meter;
use solana_instructions_sysvar::load_instruction_at_checked;

use crate::attestation::{batch_hash, ed25519, meters_digest, Batch};
use crate::errors::OracleError;
use crate::events::{BatchApplied, ReadingSkipped};
use crate::rules::{assess, MeterFacts};
use crate::state::{MeterState, OracleConfig, MAX_ATTESTORS};

/// Applies one attested batch. The transaction carries, before this instruction, an Ed25519
/// program instruction (at `ed25519_instruction_index`) that verifies the batch message with
/// `quorum` attestor signatures. Remaining accounts: for each reading in the batch's order,
/// the registry `Meter` (read-only) then its oracle `MeterState` (writable), the latter
/// exactly the addresses the attestor committed to (`attestation`).
///
/// A reading that fails a data check (meter suspended, stale, implausible, no state yet...)
/// is skipped with a `ReadingSkipped` event and the rest of the batch applies; the sequence
/// advances either way. Only structural faults fail the transaction: signatures, domain,
/// sequence, and accounts other than the ones signed for.
#[derive(Accounts)]
pub struct SubmitReadings<'info> {
    /// No seeds check: a zero-copy `OracleConfig` owned by this program (which
    /// `AccountLoader` checks, with the discriminator) exists only at `[CONFIG]`, where
    /// `initialize_oracle` creates it; the derivation would cost ~1,500 CU per batch.
    #[account(mut)]
    pub config: AccountLoader<'info, OracleConfig>,
    /// CHECK: the instructions sysvar, checked by address.
    #[account(address = solana_sdk_ids::sysvar::instructions::ID)]
    pub instructions: UncheckedAccount<'info>,
    /// Pays the fees; has no say over the data.
    pub submitter: Signer<'info>,
}

impl SubmitReadings<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(
            !self.config.load()?.is_paused(Clock::get()?.unix_timestamp),
            OracleError::Paused
        );
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
    let mut signers: [Pubkey; MAX_ATTESTORS] = [Pubkey::default(); MAX_ATTESTORS];
    let mut distinct = 0usize;
    for v in &verified {
        require!(v.message == message, OracleError::MessageMismatch);
        let key = Pubkey::new_from_array(*v.public_key);
        require!(config.is_attestor(&key), OracleError::UnknownAttestor);
        if !signers[..distinct].contains(&key) {
            // `parse` returns at most MAX_ATTESTORS signatures.
            signers[distinct] = key;
            distinct += 1;
        }
    }
    require!(
        distinct >= usize::from(config.quorum),
        OracleError::QuorumNotMet
    );
    Ok((distinct, message.to_vec()))
}

fn skipped(
    sequence: u64,
    position: usize,
    meter_state: Pubkey,
    lfdi: [u8; 20],
    reason: OracleError,
) {
    program_common::emit_event!(ReadingSkipped {
        sequence,
        // A batch holds at most u16::MAX readings.
        position: position as u16,
        meter_state,
        lfdi,
        reason: reason.into(),
    });
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
    let mut config = ctx.accounts.config.load_mut()?;
    let (attestors, message) =
        verified_message(&config, &ed25519_ix.data, ed25519_instruction_index)?;

    let batch = Batch::parse(&message).map_err(|_| OracleError::MalformedBatch)?;
    require!(batch.domain == &config.domain, OracleError::WrongDomain);
    config.check_sequence(batch.sequence)?;

    let accounts = ctx.remaining_accounts;
    require!(
        accounts.len() == 2 * batch.len(),
        OracleError::AccountsMismatch
    );
    // The meter state accounts must be the ones the attestors signed for.
    let digest = meters_digest(accounts.iter().skip(1).step_by(2).map(|a| a.key.as_array()));
    require!(&digest == batch.meters, OracleError::MetersMismatch);

    let now = Clock::get()?.unix_timestamp;
    let limits = config.limits();
    let mut applied: u16 = 0;
    for i in 0..batch.len() {
        let reading = batch.reading(i);
        let state_info = &accounts[2 * i + 1];
        if !zero_copy::holds::<MeterState>(state_info) {
            skipped(
                batch.sequence,
                i,
                *state_info.key,
                [0; 20],
                OracleError::MeterStateMissing,
            );
            continue;
        }
        require!(state_info.is_writable, OracleError::AccountsMismatch);
        let state = zero_copy::read::<MeterState>(state_info)?;
        // A Meter owned by the registry is the meter of the LFDI inside (see
        // `Meter::load_checked`); it must be this state's meter.
        let meter = Meter::load_checked(&accounts[2 * i])
            .ok()
            .filter(|m| m.lfdi == state.lfdi)
            .ok_or(OracleError::MeterAccountMismatch)?;
        let last = state.last();
        match assess(
            last.as_ref(),
            &reading,
            &MeterFacts::of(&meter),
            &limits,
            now,
        ) {
            Ok(verdict) => {
                zero_copy::update::<MeterState, _>(state_info, |s| {
                    s.apply(&reading, verdict, batch.sequence)
                })??;
                applied += 1;
            }
            Err(reason) => skipped(batch.sequence, i, *state_info.key, state.lfdi, reason),
        }
    }

    let hash = batch_hash(&message);
    config.record_batch(batch.sequence, hash);
    program_common::emit_event!(BatchApplied {
        sequence: batch.sequence,
        hash,
        applied,
        skipped: batch.len() as u16 - applied,
        attestors: attestors as u8,
    });
    Ok(())
}
