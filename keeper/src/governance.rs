//! The governance step a batch the oracle refuses for good needs: a proposal to skip it
//! (`oracle::skip_batches` through its sequence), which the keeper names when it gives the
//! batch up and proposes on a council member's behalf (`keeper propose-skip`). The members
//! approve it and execute it after the council's timelock; the keeper then has the bridge
//! sign the skipped batches' readings again under new sequences (`Keeper::submit_batches`),
//! so the skip loses no reading.
use anyhow::{bail, Context, Result};
use sdk::accounts::{anchor_account, zero_copy};
use sdk::chain::{send_and_confirm, Chain, SendPolicy};
use sdk::ix::{governance as governance_ix, oracle as oracle_ix};
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A skip proposed: its index in the council's proposals, and the sequences it settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipProposal {
    pub index: u64,
    /// The oracle had settled every batch through `from - 1`.
    pub from: u64,
    pub through: u64,
    /// The council's approvals needed and its timelock.
    pub threshold: u8,
    pub timelock_seconds: u32,
}

/// Proposes `skip_batches(through)` to the council, signed by `proposer` (a member). Checks
/// first what the program would: a skip that moves the oracle's window on, by at most
/// `oracle::MAX_SKIP_BATCHES`.
pub async fn propose_skip<C: Chain>(
    chain: &mut C,
    proposer: &Keypair,
    through: u64,
) -> Result<SkipProposal> {
    let config = chain
        .account(oracle_ix::config_address())
        .await?
        .and_then(|a| zero_copy::<oracle::OracleConfig>(&a))
        .context("the oracle is not initialised on this cluster")?;
    if through <= config.last_sequence {
        bail!(
            "nothing to skip: the oracle has settled every batch through {} already",
            config.last_sequence
        );
    }
    if through - config.last_sequence > oracle::MAX_SKIP_BATCHES {
        bail!(
            "a skip settles at most {} batches: propose --through {} first",
            oracle::MAX_SKIP_BATCHES,
            config.last_sequence + oracle::MAX_SKIP_BATCHES
        );
    }
    let council = chain
        .account(governance_ix::council_address())
        .await?
        .and_then(|a| anchor_account::<governance::Council>(&a))
        .context("the council is not initialised on this cluster")?;
    if !council.members.contains(&proposer.pubkey()) {
        bail!(
            "{} is not a council member: propose with a member's keypair",
            proposer.pubkey()
        );
    }
    let index = council.proposal_count;
    let target = oracle_ix::skip_batches(governance_ix::authority_for(oracle::ID), through);
    let propose = governance_ix::propose(proposer.pubkey(), index, &target);
    send_and_confirm(chain, &[propose], &[proposer], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("proposing the skip: {}", e.reason()))?;
    Ok(SkipProposal {
        index,
        from: config.last_sequence + 1,
        through,
        threshold: council.threshold,
        timelock_seconds: council.timelock_seconds,
    })
}

/// The command an operator runs to propose skipping through `sequence`.
pub fn skip_command(sequence: u64) -> String {
    format!("keeper propose-skip --through {sequence} --keypair <a council member's keypair>")
}
