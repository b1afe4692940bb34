//! What a client (the keeper, the migrations) needs of a chain, and how it gets a
//! transaction confirmed there.
//!
//! Two implementations: a cluster over JSON-RPC (`rpc`) and, for the tests and the demo, the
//! embedded chain (`gridtokenx_tests::embedded`, a solana-program-test bank in the same
//! process). The sending logic is the same for both: build
//! the transaction on a fresh blockhash, simulate it to learn its compute units (and to
//! refuse early what would fail), set the compute-unit limit from that, send, and rebroadcast
//! until it is confirmed, fails, or its blockhash expires (then rebuild it on a new one,
//! after checking that the expired one did not land).
use std::time::Duration;

use anchor_lang::prelude::{Clock, Pubkey};
use anyhow::{Context, Result};
use solana_account::Account;
use solana_hash::Hash;
use solana_instruction::error::InstructionError;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::{v0, AddressLookupTableAccount, VersionedMessage};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::TransactionError;

/// A simulated transaction.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub error: Option<TransactionError>,
    pub units: u64,
    pub logs: Vec<String>,
}

/// Where a sent transaction stands.
#[derive(Clone, Debug)]
pub enum Outcome {
    Pending,
    Confirmed {
        slot: u64,
        logs: Vec<String>,
    },
    Failed {
        error: TransactionError,
        logs: Vec<String>,
    },
}

#[allow(async_fn_in_trait)]
pub trait Chain {
    /// Pays the fees of everything the keeper sends.
    fn payer(&self) -> &Keypair;
    /// The cluster's genesis hash: batches are bound to it (the oracle's domain).
    async fn genesis_hash(&mut self) -> Result<[u8; 32]>;
    async fn clock(&mut self) -> Result<Clock>;
    async fn accounts(&mut self, keys: &[Pubkey]) -> Result<Vec<Option<Account>>>;
    /// Every account of `program` whose data starts with `discriminator` (an Anchor account
    /// type) and holds `bytes` at each `(offset, bytes)` of `matching`, as
    /// `getProgramAccounts` with memcmp filters returns them.
    async fn program_accounts_matching(
        &mut self,
        program: Pubkey,
        discriminator: &[u8],
        matching: &[(usize, Vec<u8>)],
    ) -> Result<Vec<(Pubkey, Account)>>;

    /// Every account of `program` of the Anchor account type with `discriminator`.
    async fn program_accounts(
        &mut self,
        program: Pubkey,
        discriminator: &[u8],
    ) -> Result<Vec<(Pubkey, Account)>> {
        self.program_accounts_matching(program, discriminator, &[])
            .await
    }
    async fn latest_blockhash(&mut self) -> Result<Hash>;
    async fn blockhash_valid(&mut self, blockhash: &Hash) -> Result<bool>;
    async fn simulate(&mut self, tx: &VersionedTransaction) -> Result<Simulation>;
    async fn send(&mut self, tx: &VersionedTransaction) -> Result<Signature>;
    async fn outcome(&mut self, signature: &Signature) -> Result<Outcome>;
    /// Returns once the chain is past `slot` (a lookup table extended in `slot` is usable).
    async fn wait_for_slot_after(&mut self, slot: u64) -> Result<()>;

    fn payer_key(&self) -> Pubkey {
        self.payer().pubkey()
    }

    async fn account(&mut self, key: Pubkey) -> Result<Option<Account>> {
        Ok(self.accounts(&[key]).await?.pop().flatten())
    }
}

/// Why a transaction did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The chain refused it (in simulation or on execution): retrying will not help.
    #[error("refused: {error}")]
    Refused {
        error: TransactionError,
        logs: Vec<String>,
    },
    /// The chain could not be reached, or the transaction never landed in time.
    #[error("{0:#}")]
    Unavailable(anyhow::Error),
    /// The transaction is larger than a packet (1,232 bytes): split the work.
    #[error("the transaction is {size} bytes, more than a packet ({PACKET} bytes)")]
    TooLarge { size: usize },
}

/// The most bytes a transaction may have.
pub const PACKET: usize = 1_232;

impl SendError {
    /// Whether a program refused it (an instruction failed), or it can never fit a packet:
    /// only then does sending the same thing again not help. Anything else (the fee payer
    /// short of SOL, an expired blockhash, an account in use, a lookup table not yet
    /// usable, the cluster unreachable) is transient: retried without limit, never counted
    /// as a refusal.
    pub fn is_program_refusal(&self) -> bool {
        matches!(
            self,
            SendError::Refused {
                error: TransactionError::InstructionError(..),
                ..
            } | SendError::TooLarge { .. }
        )
    }

    /// The program's custom error code, if that is why it was refused.
    pub fn custom_code(&self) -> Option<u32> {
        match self {
            SendError::Refused {
                error: TransactionError::InstructionError(_, InstructionError::Custom(code)),
                ..
            } => Some(*code),
            _ => None,
        }
    }
}

impl SendError {
    /// Why, in words: the program's log line with its error when there is one.
    pub fn reason(&self) -> String {
        match self {
            SendError::Refused { error, logs } => logs
                .iter()
                .rev()
                .find(|l| l.contains("AnchorError") || l.contains("Error Message"))
                .map(|l| l.trim_start_matches("Program log: ").to_string())
                .unwrap_or_else(|| error.to_string()),
            SendError::Unavailable(e) => format!("{e:#}"),
            SendError::TooLarge { .. } => self.to_string(),
        }
    }
}

impl From<anyhow::Error> for SendError {
    fn from(e: anyhow::Error) -> Self {
        SendError::Unavailable(e)
    }
}

/// A confirmed transaction.
#[derive(Clone, Debug)]
pub struct Confirmed {
    pub signature: Signature,
    pub slot: u64,
    pub units_limit: u32,
    pub logs: Vec<String>,
    pub size: usize,
}

/// How long to wait for a confirmation between rebroadcasts, and in all.
#[derive(Clone, Copy, Debug)]
pub struct SendPolicy {
    pub rebroadcast_every: Duration,
    pub give_up_after: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            rebroadcast_every: Duration::from_secs(2),
            give_up_after: Duration::from_secs(90),
        }
    }
}

/// Compute units to request for a transaction that used `simulated` in simulation: a fifth
/// more (state can change between simulation and execution), at least 20,000 (natively run
/// programs charge little), at most the transaction maximum.
pub fn units_limit(simulated: u64) -> u32 {
    let with_margin = simulated.saturating_mul(6) / 5 + 1_000;
    with_margin.clamp(20_000, 1_400_000) as u32
}

/// A signed v0 transaction paid by `payer`.
pub fn v0_transaction(
    payer: &Keypair,
    instructions: &[Instruction],
    signers: &[&Keypair],
    tables: &[AddressLookupTableAccount],
    blockhash: Hash,
) -> Result<VersionedTransaction> {
    let message = v0::Message::try_compile(&payer.pubkey(), instructions, tables, blockhash)
        .context("compile v0 message")?;
    let mut all: Vec<&Keypair> = vec![payer];
    all.extend(
        signers
            .iter()
            .filter(|s| s.pubkey() != payer.pubkey())
            .copied(),
    );
    VersionedTransaction::try_new(VersionedMessage::V0(message), &all)
        .context("sign v0 transaction")
}

/// Whether `instructions` (with the compute-unit limit `send_and_confirm` prepends) fit one
/// transaction paid by `payer` with `tables`.
pub fn fits(
    payer: &Keypair,
    instructions: &[Instruction],
    tables: &[AddressLookupTableAccount],
) -> bool {
    let mut with_limit = Vec::with_capacity(instructions.len() + 1);
    with_limit.push(crate::ix::compute_unit_limit(1_400_000));
    with_limit.extend_from_slice(instructions);
    v0_transaction(payer, &with_limit, &[], tables, Hash::default())
        .is_ok_and(|tx| transaction_size(&tx) <= PACKET)
}

/// Size of a transaction on the wire.
pub fn transaction_size(tx: &VersionedTransaction) -> usize {
    bincode::serialize(tx)
        .map(|b| b.len())
        .unwrap_or(usize::MAX)
}

/// Sends `instructions` (a compute-unit limit is prepended) and waits for the outcome.
pub async fn send_and_confirm<C: Chain>(
    chain: &mut C,
    instructions: &[Instruction],
    signers: &[&Keypair],
    tables: &[AddressLookupTableAccount],
    policy: SendPolicy,
) -> Result<Confirmed, SendError> {
    let started = tokio::time::Instant::now();
    let payer = chain.payer().insecure_clone();
    loop {
        let blockhash = chain.latest_blockhash().await?;
        // Simulate with the largest limit, then ask for what it used.
        let mut with_limit = Vec::with_capacity(instructions.len() + 1);
        with_limit.push(crate::ix::compute_unit_limit(1_400_000));
        with_limit.extend_from_slice(instructions);
        let probe = v0_transaction(&payer, &with_limit, signers, tables, blockhash)?;
        let size = transaction_size(&probe);
        if size > PACKET {
            return Err(SendError::TooLarge { size });
        }
        let simulation = chain.simulate(&probe).await?;
        if let Some(error) = simulation.error {
            return Err(SendError::Refused {
                error,
                logs: simulation.logs,
            });
        }
        let limit = units_limit(simulation.units);
        with_limit[0] = crate::ix::compute_unit_limit(limit);
        let tx = v0_transaction(&payer, &with_limit, signers, tables, blockhash)?;
        let size = transaction_size(&tx);
        let signature = chain.send(&tx).await?;
        let mut last_broadcast = tokio::time::Instant::now();
        loop {
            match chain.outcome(&signature).await? {
                Outcome::Confirmed { slot, logs } => {
                    return Ok(Confirmed {
                        signature,
                        slot,
                        units_limit: limit,
                        logs,
                        size,
                    })
                }
                Outcome::Failed { error, logs } => return Err(SendError::Refused { error, logs }),
                Outcome::Pending => {}
            }
            if started.elapsed() > policy.give_up_after {
                return Err(SendError::Unavailable(anyhow::anyhow!(
                    "not confirmed after {:?} (signature {signature})",
                    policy.give_up_after
                )));
            }
            if !chain.blockhash_valid(&blockhash).await? {
                // Expired: it can no longer land. Check once more, then rebuild.
                match chain.outcome(&signature).await? {
                    Outcome::Pending => break,
                    _ => continue,
                }
            }
            if last_broadcast.elapsed() >= policy.rebroadcast_every {
                chain.send(&tx).await?;
                last_broadcast = tokio::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        tracing::warn!(%signature, "blockhash expired before confirmation; rebuilding");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(error: TransactionError) -> SendError {
        SendError::Refused {
            error,
            logs: Vec::new(),
        }
    }

    /// Only a program's refusal (or a transaction that can never fit) is final; everything
    /// the cluster or the wallet causes is retried.
    #[test]
    fn only_a_programs_refusal_is_a_refusal() {
        let program = refused(TransactionError::InstructionError(
            1,
            InstructionError::Custom(6_000),
        ));
        assert!(program.is_program_refusal());
        assert_eq!(program.custom_code(), Some(6_000));
        assert!(SendError::TooLarge { size: 1_300 }.is_program_refusal());
        for transient in [
            TransactionError::InsufficientFundsForFee,
            TransactionError::BlockhashNotFound,
            TransactionError::AccountInUse,
            TransactionError::AccountNotFound,
            TransactionError::AddressLookupTableNotFound,
            TransactionError::WouldExceedMaxBlockCostLimit,
            TransactionError::ClusterMaintenance,
        ] {
            assert!(
                !refused(transient.clone()).is_program_refusal(),
                "{transient:?}"
            );
        }
        assert!(
            !SendError::Unavailable(anyhow::anyhow!("connection refused")).is_program_refusal()
        );
    }
}
