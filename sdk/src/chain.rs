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

    /// The successful transactions that named `address` (a program they called, directly
    /// or through another, or any account they used: a building's market balance), after
    /// the one signed `after` (from the oldest the chain keeps when `None`), oldest first,
    /// at most `limit` (the newest `limit` when more are waiting; the caller learns that
    /// from `skipped`): each with its slot and logs, for the programs' events. As
    /// `getSignaturesForAddress` answers.
    async fn transactions_naming(
        &mut self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
    ) -> Result<NamedTransactions> {
        let _ = (address, after, limit);
        anyhow::bail!("this chain keeps no transaction history")
    }

    /// As [`Chain::transactions_naming`], but the *oldest* `limit` transactions after
    /// `after`, with `more` set when others follow them: for a reader that must see every
    /// one, in order (the history exporter).
    async fn transactions_after(
        &mut self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
    ) -> Result<NamedTransactions> {
        let _ = (address, after, limit);
        anyhow::bail!("this chain keeps no transaction history")
    }

    fn payer_key(&self) -> Pubkey {
        self.payer().pubkey()
    }

    async fn account(&mut self, key: Pubkey) -> Result<Option<Account>> {
        Ok(self.accounts(&[key]).await?.pop().flatten())
    }
}

/// What [`Chain::transactions_naming`] found.
#[derive(Clone, Debug, Default)]
pub struct NamedTransactions {
    /// Oldest first.
    pub transactions: Vec<NamedTransaction>,
    /// More transactions came after `after` than the limit: the oldest of them were left
    /// out (a reader that fell behind sees a gap, never a repeat).
    pub skipped: bool,
    /// (`transactions_after`) More transactions follow the ones returned.
    pub more: bool,
}

/// A successful transaction of a program, with its logs.
#[derive(Clone, Debug)]
pub struct NamedTransaction {
    pub signature: Signature,
    pub slot: u64,
    /// When its block was produced (Unix seconds), if the node knows.
    pub block_time: Option<i64>,
    pub logs: Vec<String>,
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
    /// Whether a program refused it (an instruction failed): only then does sending the
    /// same thing again not help. Anything else (the fee payer short of SOL, an expired
    /// blockhash, an account in use, a lookup table not yet usable, a transaction too large
    /// while a lookup table is being built, the cluster unreachable) is transient: retried
    /// without limit, never counted as a refusal.
    pub fn is_program_refusal(&self) -> bool {
        matches!(
            self,
            SendError::Refused {
                error: TransactionError::InstructionError(..),
                ..
            }
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
    fits_with(payer, instructions, &[], tables)
}

/// `fits`, for a transaction that `signers` sign beside the payer.
pub fn fits_with(
    payer: &Keypair,
    instructions: &[Instruction],
    signers: &[&Keypair],
    tables: &[AddressLookupTableAccount],
) -> bool {
    let mut with_limit = Vec::with_capacity(instructions.len() + 1);
    with_limit.push(crate::ix::compute_unit_limit(1_400_000));
    with_limit.extend_from_slice(instructions);
    v0_transaction(payer, &with_limit, signers, tables, Hash::default())
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

/// A transaction sent and not yet settled, in `send_pipelined`.
struct Flight {
    job: usize,
    tx: VersionedTransaction,
    signature: Signature,
    blockhash: Hash,
    limit: u32,
    size: usize,
    /// When the job was first prepared (its give-up clock).
    started: tokio::time::Instant,
    last_broadcast: tokio::time::Instant,
}

/// Simulates, signs and sends one job (a compute-unit limit prepended, sized by the
/// simulation); a refusal in simulation comes back as the job's error.
async fn launch<C: Chain>(
    chain: &mut C,
    payer: &Keypair,
    job: usize,
    instructions: &[Instruction],
    signers: &[&Keypair],
    tables: &[AddressLookupTableAccount],
    started: tokio::time::Instant,
) -> Result<Flight, SendError> {
    let blockhash = chain.latest_blockhash().await?;
    let mut with_limit = Vec::with_capacity(instructions.len() + 1);
    with_limit.push(crate::ix::compute_unit_limit(1_400_000));
    with_limit.extend_from_slice(instructions);
    let probe = v0_transaction(payer, &with_limit, signers, tables, blockhash)?;
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
    let tx = v0_transaction(payer, &with_limit, signers, tables, blockhash)?;
    let size = transaction_size(&tx);
    let signature = chain.send(&tx).await?;
    Ok(Flight {
        job,
        tx,
        signature,
        blockhash,
        limit,
        size,
        started,
        last_broadcast: tokio::time::Instant::now(),
    })
}

/// Sends independent `jobs` (each a transaction's instructions, paid by the chain's payer)
/// with at most `max_in_flight` unconfirmed at once: each is simulated, sent, rebroadcast
/// every `policy.rebroadcast_every` while pending, rebuilt on a fresh blockhash if its own
/// expired unconfirmed, and given up (`Unavailable`) after `policy.give_up_after`. Returns
/// each job's outcome, in job order. For work whose transactions do not depend on one
/// another (the oracle takes batches in any order within its window) and that the chain
/// refuses to apply twice (a rebuilt transaction may land beside one that was processed but
/// not yet confirmed: the oracle refuses the replay).
pub async fn send_pipelined<C: Chain>(
    chain: &mut C,
    jobs: &[Vec<Instruction>],
    tables: &[AddressLookupTableAccount],
    policy: SendPolicy,
    max_in_flight: usize,
) -> Vec<Result<Confirmed, SendError>> {
    let jobs: Vec<Job<'_>> = jobs
        .iter()
        .map(|instructions| Job {
            instructions,
            signers: &[],
            tables: None,
        })
        .collect();
    send_pipelined_signed(chain, &jobs, tables, policy, max_in_flight).await
}

/// One transaction for [`send_pipelined_signed`]: its instructions and the co-signers
/// beside the chain's payer.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub instructions: &'a [Instruction],
    pub signers: &'a [&'a Keypair],
    /// Lookup tables for this job alone (`None`: those given to the whole call): with
    /// hundreds of tables, compiling every transaction against all of them costs more than
    /// choosing each one's.
    pub tables: Option<&'a [AddressLookupTableAccount]>,
}

/// [`send_pipelined`] for jobs that need co-signers (a meter's owner registering it).
pub async fn send_pipelined_signed<C: Chain>(
    chain: &mut C,
    jobs: &[Job<'_>],
    tables: &[AddressLookupTableAccount],
    policy: SendPolicy,
    max_in_flight: usize,
) -> Vec<Result<Confirmed, SendError>> {
    let payer = chain.payer().insecure_clone();
    let mut results: Vec<Option<Result<Confirmed, SendError>>> =
        (0..jobs.len()).map(|_| None).collect();
    let mut in_flight: Vec<Flight> = Vec::new();
    let mut next = 0;
    let max_in_flight = max_in_flight.max(1);
    loop {
        while in_flight.len() < max_in_flight && next < jobs.len() {
            let started = tokio::time::Instant::now();
            let job = jobs[next];
            let job_tables = job.tables.unwrap_or(tables);
            match launch(
                chain,
                &payer,
                next,
                job.instructions,
                job.signers,
                job_tables,
                started,
            )
            .await
            {
                Ok(flight) => in_flight.push(flight),
                Err(e) => results[next] = Some(Err(e)),
            }
            next += 1;
        }
        if in_flight.is_empty() {
            break;
        }
        let mut still = Vec::with_capacity(in_flight.len());
        let mut settled = false;
        for mut flight in in_flight.drain(..) {
            // An RPC hiccup while polling is not an outcome: the flight stays pending.
            match chain.outcome(&flight.signature).await {
                Ok(Outcome::Confirmed { slot, logs }) => {
                    results[flight.job] = Some(Ok(Confirmed {
                        signature: flight.signature,
                        slot,
                        units_limit: flight.limit,
                        logs,
                        size: flight.size,
                    }));
                    settled = true;
                    continue;
                }
                Ok(Outcome::Failed { error, logs }) => {
                    results[flight.job] = Some(Err(SendError::Refused { error, logs }));
                    settled = true;
                    continue;
                }
                Ok(Outcome::Pending) | Err(_) => {}
            }
            if flight.started.elapsed() > policy.give_up_after {
                results[flight.job] = Some(Err(SendError::Unavailable(anyhow::anyhow!(
                    "not confirmed after {:?} (signature {})",
                    policy.give_up_after,
                    flight.signature
                ))));
                settled = true;
                continue;
            }
            if !chain
                .blockhash_valid(&flight.blockhash)
                .await
                .unwrap_or(true)
            {
                // Expired: it can no longer land. Once more, then rebuild on a new blockhash.
                if let Ok(Outcome::Pending) = chain.outcome(&flight.signature).await {
                    tracing::warn!(signature = %flight.signature, "blockhash expired before confirmation; rebuilding");
                    let job = jobs[flight.job];
                    match launch(
                        chain,
                        &payer,
                        flight.job,
                        job.instructions,
                        job.signers,
                        job.tables.unwrap_or(tables),
                        flight.started,
                    )
                    .await
                    {
                        Ok(rebuilt) => still.push(rebuilt),
                        Err(e) => {
                            results[flight.job] = Some(Err(e));
                            settled = true;
                        }
                    }
                    continue;
                }
                // Settled meanwhile: read on the next poll.
                still.push(flight);
                continue;
            }
            if flight.last_broadcast.elapsed() >= policy.rebroadcast_every {
                // A lost resend is caught by the next one.
                let _ = chain.send(&flight.tx).await;
                flight.last_broadcast = tokio::time::Instant::now();
            }
            still.push(flight);
        }
        in_flight = still;
        if !settled && !in_flight.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every job settles"))
        .collect()
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

    /// Only a program's refusal is final; everything
    /// the cluster or the wallet causes is retried.
    #[test]
    fn only_a_programs_refusal_is_a_refusal() {
        let program = refused(TransactionError::InstructionError(
            1,
            InstructionError::Custom(6_000),
        ));
        assert!(program.is_program_refusal());
        assert_eq!(program.custom_code(), Some(6_000));
        assert!(!SendError::TooLarge { size: 1_300 }.is_program_refusal());
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

    /// A cluster that confirms each transaction after three polls, refuses in simulation the
    /// ones whose instruction data is `[0xFF]`, and counts what is outstanding.
    #[derive(Default)]
    struct SlowCluster {
        payer: Option<Keypair>,
        polls_left: std::collections::HashMap<Signature, u32>,
        outstanding: usize,
        most_outstanding: usize,
        broadcasts: usize,
    }

    impl Chain for SlowCluster {
        fn payer(&self) -> &Keypair {
            self.payer.as_ref().unwrap()
        }
        async fn genesis_hash(&mut self) -> Result<[u8; 32]> {
            Ok([0; 32])
        }
        async fn clock(&mut self) -> Result<Clock> {
            Ok(Clock::default())
        }
        async fn accounts(&mut self, keys: &[Pubkey]) -> Result<Vec<Option<Account>>> {
            Ok(vec![None; keys.len()])
        }
        async fn program_accounts_matching(
            &mut self,
            _program: Pubkey,
            _discriminator: &[u8],
            _matching: &[(usize, Vec<u8>)],
        ) -> Result<Vec<(Pubkey, Account)>> {
            Ok(Vec::new())
        }
        async fn latest_blockhash(&mut self) -> Result<Hash> {
            Ok(Hash::new_from_array([7; 32]))
        }
        async fn blockhash_valid(&mut self, _blockhash: &Hash) -> Result<bool> {
            Ok(true)
        }
        async fn simulate(&mut self, tx: &VersionedTransaction) -> Result<Simulation> {
            let refused = tx.message.instructions().iter().any(|ix| ix.data == [0xFF]);
            Ok(Simulation {
                error: refused.then_some(TransactionError::InstructionError(
                    1,
                    InstructionError::Custom(7),
                )),
                units: 1_000,
                logs: Vec::new(),
            })
        }
        async fn send(&mut self, tx: &VersionedTransaction) -> Result<Signature> {
            let signature = tx.signatures[0];
            self.broadcasts += 1;
            if let std::collections::hash_map::Entry::Vacant(e) = self.polls_left.entry(signature) {
                e.insert(3);
                self.outstanding += 1;
                self.most_outstanding = self.most_outstanding.max(self.outstanding);
            }
            Ok(signature)
        }
        async fn outcome(&mut self, signature: &Signature) -> Result<Outcome> {
            let left = self.polls_left.get_mut(signature).expect("sent");
            if *left == 0 {
                return Ok(Outcome::Confirmed {
                    slot: 1,
                    logs: Vec::new(),
                });
            }
            *left -= 1;
            if *left == 0 {
                self.outstanding -= 1;
                return Ok(Outcome::Confirmed {
                    slot: 1,
                    logs: Vec::new(),
                });
            }
            Ok(Outcome::Pending)
        }
        async fn wait_for_slot_after(&mut self, _slot: u64) -> Result<()> {
            Ok(())
        }
    }

    /// Twenty jobs, four in flight at most: all settle, in job order, the refused one with
    /// its program's error; pending ones are rebroadcast.
    #[tokio::test(start_paused = true)]
    async fn pipelined_sends_keep_a_bounded_number_in_flight() {
        let mut chain = SlowCluster {
            payer: Some(Keypair::new()),
            ..SlowCluster::default()
        };
        let program = Pubkey::new_unique();
        let jobs: Vec<Vec<Instruction>> = (0..20u8)
            .map(|i| {
                let data = if i == 7 { vec![0xFF] } else { vec![i] };
                vec![Instruction::new_with_bytes(program, &data, Vec::new())]
            })
            .collect();
        let policy = SendPolicy {
            rebroadcast_every: Duration::from_millis(100),
            give_up_after: Duration::from_secs(60),
        };
        let results = send_pipelined(&mut chain, &jobs, &[], policy, 4).await;
        assert_eq!(results.len(), 20);
        for (i, r) in results.iter().enumerate() {
            if i == 7 {
                let e = r.as_ref().unwrap_err();
                assert!(e.is_program_refusal());
                assert_eq!(e.custom_code(), Some(7));
            } else {
                assert_eq!(r.as_ref().unwrap().slot, 1, "job {i}");
            }
        }
        assert_eq!(chain.most_outstanding, 4);
        assert_eq!(chain.outstanding, 0);
        // Nineteen sent once, and the pending ones again.
        assert!(chain.broadcasts > 19, "{}", chain.broadcasts);
    }
}
