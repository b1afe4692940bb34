//! The embedded chain: the five GridTokenX programs loaded natively (host-compiled, through
//! `processor!`) in a solana-program-test bank, next to the real SPL Token, Associated Token
//! Account, Ed25519 and address-lookup-table programs the bank bundles. The campus demo runs
//! on it, and so does the test harness.
use std::collections::{BTreeSet, HashMap};

use anchor_lang::prelude::{AccountInfo, Clock, Pubkey};
use anchor_lang::solana_program::entrypoint::ProgramResult;
use anyhow::{anyhow, bail, Context, Result};
use solana_account::Account;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_program_test::{processor, ProgramTest, ProgramTestContext};
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::TransactionError;

use sdk::chain::{Chain, NamedTransaction, NamedTransactions, Outcome, Simulation};

/// Anchor's `entry` ties the lifetimes of its three arguments together; program-test's
/// builtin signature doesn't. Every argument outlives the call, so narrowing them all to
/// one lifetime is sound.
macro_rules! native_entry {
    ($name:ident, $program:ident) => {
        fn $name<'a, 'b, 'c, 'd>(
            program_id: &'a Pubkey,
            accounts: &'b [AccountInfo<'c>],
            data: &'d [u8],
        ) -> ProgramResult {
            // SAFETY: see the macro's comment; nothing is kept beyond this call.
            let (program_id, accounts, data): (&'c Pubkey, &'c [AccountInfo<'c>], &'c [u8]) =
                unsafe { std::mem::transmute((program_id, accounts, data)) };
            $program::entry(program_id, accounts, data)
        }
    };
}

native_entry!(registry_entry, registry);
native_entry!(oracle_entry, oracle);
native_entry!(energy_token_entry, energy_token);
native_entry!(trading_entry, trading);
native_entry!(governance_entry, governance);

/// The five GridTokenX programs.
pub const PROGRAMS: [Pubkey; 5] = [
    registry::ID,
    oracle::ID,
    energy_token::ID,
    trading::ID,
    governance::ID,
];

/// A `ProgramTest` with the five GridTokenX programs loaded natively.
pub fn program_test() -> ProgramTest {
    let mut pt = ProgramTest::default();
    // program-test turns on per-instruction debug logs; keep output readable unless
    // RUST_LOG asks for them (RUST_LOG=solana_runtime::message_processor=debug).
    agave_logger::setup_with_default("error");
    pt.prefer_bpf(false);
    pt.add_program("registry", registry::ID, processor!(registry_entry));
    pt.add_program("oracle", oracle::ID, processor!(oracle_entry));
    pt.add_program(
        "energy_token",
        energy_token::ID,
        processor!(energy_token_entry),
    );
    pt.add_program("trading", trading::ID, processor!(trading_entry));
    pt.add_program("governance", governance::ID, processor!(governance_entry));
    pt
}

/// Call once the bank has started: native programs' events then reach the transaction logs
/// as on a real cluster (see `event_stubs`).
pub fn install_event_stubs() {
    crate::event_stubs::install();
}

/// Writes `program`'s `ProgramData` account (upgradeable loader) naming
/// `upgrade_authority`: the native programs are builtins without one, a deployed program has
/// it, and the initialisers read it.
pub fn plant_program_data(
    ctx: &mut ProgramTestContext,
    program: Pubkey,
    upgrade_authority: Option<Pubkey>,
) {
    use anchor_lang::solana_program::bpf_loader_upgradeable::{self, UpgradeableLoaderState};
    let state = UpgradeableLoaderState::ProgramData {
        slot: 0,
        upgrade_authority_address: upgrade_authority,
    };
    let data = bincode::serialize(&state).expect("serialize ProgramData");
    let rent = anchor_lang::prelude::Rent::default();
    ctx.set_account(
        &sdk::ix::program_data_address(program),
        &solana_account::AccountSharedData::from(Account {
            lamports: rent.minimum_balance(data.len()),
            data,
            owner: bpf_loader_upgradeable::ID,
            executable: false,
            rent_epoch: 0,
        }),
    );
}

/// The embedded chain behind the keeper's `Chain` interface. Transactions execute when sent
/// (the bank has no network), so their outcome is known at once.
pub struct EmbeddedChain {
    pub ctx: ProgramTestContext,
    outcomes: HashMap<Signature, (Result<(), TransactionError>, Vec<String>)>,
    /// Every account a transaction sent here named: the bank offers no account index, so
    /// the chain keeps its own for `program_accounts` (what an RPC node's index answers).
    touched: BTreeSet<Pubkey>,
    /// Every successful transaction, in order (for `transactions_naming`, as a node's
    /// signature index answers `getSignaturesForAddress`).
    history: Vec<Executed>,
    history_at: HashMap<Signature, usize>,
}

/// A successful transaction: its signature, slot, the accounts it names and its logs.
struct Executed {
    signature: Signature,
    slot: u64,
    unix_timestamp: i64,
    accounts: Vec<Pubkey>,
    logs: Vec<String>,
}

impl EmbeddedChain {
    /// Starts a bank with the five programs; its payer deploys them (is their upgrade
    /// authority).
    pub async fn start() -> EmbeddedChain {
        Self::start_with(program_test()).await
    }

    /// `start` from a `ProgramTest` of `program_test()` (with genesis accounts added).
    pub async fn start_with(pt: ProgramTest) -> EmbeddedChain {
        let mut ctx = pt.start_with_context().await;
        install_event_stubs();
        let payer = solana_signer::Signer::pubkey(&ctx.payer);
        for program in PROGRAMS {
            plant_program_data(&mut ctx, program, Some(payer));
        }
        EmbeddedChain {
            ctx,
            outcomes: HashMap::new(),
            touched: BTreeSet::new(),
            history: Vec::new(),
            history_at: HashMap::new(),
        }
    }

    /// The keeper's view of a bank a test set up by other means (`TestEnv::into_context`).
    /// Its account index starts empty: `program_accounts` finds what is sent from here on.
    pub fn from_context(ctx: ProgramTestContext) -> EmbeddedChain {
        EmbeddedChain {
            ctx,
            outcomes: HashMap::new(),
            touched: BTreeSet::new(),
            history: Vec::new(),
            history_at: HashMap::new(),
        }
    }

    /// Moves to the next slot with the cluster clock at `unix_timestamp`. The bank starts at
    /// the wall-clock time; an embedded run may replay an earlier day, so this can set any
    /// time (callers move it forward only).
    pub async fn set_time(&mut self, unix_timestamp: i64) -> Result<()> {
        let before: Clock = self.ctx.banks_client.get_sysvar().await?;
        self.ctx
            .warp_to_slot(before.slot + 1)
            .map_err(|e| anyhow!("warp: {e:?}"))?;
        let mut clock: Clock = self.ctx.banks_client.get_sysvar().await?;
        clock.unix_timestamp = unix_timestamp;
        self.ctx.set_sysvar(&clock);
        self.ctx.last_blockhash = self.ctx.banks_client.get_latest_blockhash().await?;
        Ok(())
    }

    /// Moves `slots` slots ahead, the clock's time unchanged (for what waits on slots, such
    /// as a deactivated lookup table's cool-down).
    pub async fn skip_slots(&mut self, slots: u64) -> Result<()> {
        let before: Clock = self.ctx.banks_client.get_sysvar().await?;
        self.ctx
            .warp_to_slot(before.slot + slots.max(1))
            .map_err(|e| anyhow!("warp: {e:?}"))?;
        let mut clock: Clock = self.ctx.banks_client.get_sysvar().await?;
        clock.unix_timestamp = before.unix_timestamp;
        self.ctx.set_sysvar(&clock);
        self.ctx.last_blockhash = self.ctx.banks_client.get_latest_blockhash().await?;
        Ok(())
    }
}

impl EmbeddedChain {
    /// Adds the accounts `tx` named (its static keys and those it loaded from lookup
    /// tables) to the index, and returns them.
    async fn index(&mut self, tx: &VersionedTransaction) -> Result<Vec<Pubkey>> {
        use solana_address_lookup_table_interface::state::AddressLookupTable;
        let mut keys: Vec<Pubkey> = tx.message.static_account_keys().to_vec();
        for lookup in tx.message.address_table_lookups().unwrap_or_default() {
            let Some(table) = self
                .ctx
                .banks_client
                .get_account(lookup.account_key)
                .await?
            else {
                continue;
            };
            let table = AddressLookupTable::deserialize(&table.data)
                .map_err(|e| anyhow!("lookup table {}: {e:?}", lookup.account_key))?;
            for index in lookup
                .writable_indexes
                .iter()
                .chain(&lookup.readonly_indexes)
            {
                if let Some(key) = table.addresses.get(usize::from(*index)) {
                    keys.push(*key);
                }
            }
        }
        self.touched.extend(keys.iter().copied());
        Ok(keys)
    }
}

impl EmbeddedChain {
    /// The successful transactions naming `address` after `after`: the newest `limit`
    /// (`skipped` when older ones were left out) or, `oldest`, the oldest `limit` (`more`
    /// when others follow), oldest first, as a node's signature index answers.
    fn named(
        &self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
        oldest: bool,
    ) -> Result<NamedTransactions> {
        let from = match after {
            None => 0,
            Some(s) => match self.history_at.get(&s) {
                Some(at) => at + 1,
                None => bail!("transaction {s} is not in this chain's history"),
            },
        };
        let mut found: Vec<&Executed> = self.history[from..]
            .iter()
            .filter(|e| e.accounts.contains(&address))
            .collect();
        let over = found.len() > limit;
        if oldest {
            found.truncate(limit);
        } else {
            found.drain(..found.len().saturating_sub(limit));
        }
        Ok(NamedTransactions {
            transactions: found
                .into_iter()
                .map(|e| NamedTransaction {
                    signature: e.signature,
                    slot: e.slot,
                    block_time: Some(e.unix_timestamp),
                    logs: e.logs.clone(),
                })
                .collect(),
            skipped: over && !oldest,
            more: over && oldest,
        })
    }
}

impl Chain for EmbeddedChain {
    fn payer(&self) -> &Keypair {
        &self.ctx.payer
    }

    async fn genesis_hash(&mut self) -> Result<[u8; 32]> {
        Ok(self.ctx.genesis_config().hash().to_bytes())
    }

    async fn clock(&mut self) -> Result<Clock> {
        Ok(self.ctx.banks_client.get_sysvar().await?)
    }

    async fn accounts(&mut self, keys: &[Pubkey]) -> Result<Vec<Option<Account>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.ctx.banks_client.get_account(*key).await?);
        }
        Ok(out)
    }

    async fn program_accounts_matching(
        &mut self,
        program: Pubkey,
        discriminator: &[u8],
        matching: &[(usize, Vec<u8>)],
    ) -> Result<Vec<(Pubkey, Account)>> {
        let keys: Vec<Pubkey> = self.touched.iter().copied().collect();
        let accounts = self.accounts(&keys).await?;
        // Closed accounts (settled orders, closed books) leave the index: a transaction that
        // creates one again names it, and indexes it again.
        for (key, account) in keys.iter().zip(&accounts) {
            if account.is_none() {
                self.touched.remove(key);
            }
        }
        Ok(keys
            .into_iter()
            .zip(accounts)
            .filter_map(|(key, account)| Some((key, account?)))
            .filter(|(_, a)| a.owner == program && a.data.starts_with(discriminator))
            .filter(|(_, a)| {
                matching.iter().all(|(offset, bytes)| {
                    a.data.get(*offset..*offset + bytes.len()) == Some(bytes)
                })
            })
            .collect())
    }

    async fn transactions_naming(
        &mut self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
    ) -> Result<NamedTransactions> {
        self.named(address, after, limit, false)
    }

    async fn transactions_after(
        &mut self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
    ) -> Result<NamedTransactions> {
        self.named(address, after, limit, true)
    }

    async fn latest_blockhash(&mut self) -> Result<Hash> {
        Ok(self.ctx.banks_client.get_latest_blockhash().await?)
    }

    async fn blockhash_valid(&mut self, _blockhash: &Hash) -> Result<bool> {
        // Every transaction sent here executed at once: nothing waits on a blockhash.
        Ok(true)
    }

    async fn simulate(&mut self, tx: &VersionedTransaction) -> Result<Simulation> {
        let mut attempts = 0;
        loop {
            let sim = self
                .ctx
                .banks_client
                .simulate_transaction(tx.clone())
                .await?;
            let result = sim.result.unwrap_or(Ok(()));
            // program-test runs transactions on its own thread too, which may still hold the
            // locks of the one sent just before: wait for them.
            if result == Err(TransactionError::AccountInUse) && attempts < 100 {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
            let details = sim.simulation_details;
            return Ok(Simulation {
                error: result.err(),
                units: details.as_ref().map_or(0, |d| d.units_consumed),
                logs: details.map(|d| d.logs).unwrap_or_default(),
            });
        }
    }

    async fn send(&mut self, tx: &VersionedTransaction) -> Result<Signature> {
        let signature = *tx.signatures.first().context("unsigned transaction")?;
        if self.outcomes.contains_key(&signature) {
            return Ok(signature);
        }
        let mut attempts = 0;
        let outcome = loop {
            let outcome = self
                .ctx
                .banks_client
                .process_transaction_with_metadata(tx.clone())
                .await?;
            match outcome.result {
                Err(TransactionError::AccountInUse) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                _ => break outcome,
            }
        };
        let logs = outcome.metadata.map(|m| m.log_messages).unwrap_or_default();
        if outcome.result.is_ok() {
            // As a node's index: every account the transaction names, whether it calls the
            // program or reaches it through another (a governance execution).
            let accounts = self.index(tx).await?;
            let clock = self.clock().await?;
            self.history_at.insert(signature, self.history.len());
            self.history.push(Executed {
                signature,
                slot: clock.slot,
                unix_timestamp: clock.unix_timestamp,
                accounts,
                logs: logs.clone(),
            });
        }
        self.outcomes.insert(signature, (outcome.result, logs));
        Ok(signature)
    }

    async fn outcome(&mut self, signature: &Signature) -> Result<Outcome> {
        let slot = self.clock().await?.slot;
        Ok(match self.outcomes.get(signature) {
            None => Outcome::Pending,
            Some((Ok(()), logs)) => Outcome::Confirmed {
                slot,
                logs: logs.clone(),
            },
            Some((Err(error), logs)) => Outcome::Failed {
                error: error.clone(),
                logs: logs.clone(),
            },
        })
    }

    async fn wait_for_slot_after(&mut self, slot: u64) -> Result<()> {
        let clock = self.clock().await?;
        if clock.slot <= slot {
            self.set_time(clock.unix_timestamp).await?;
        }
        Ok(())
    }
}
