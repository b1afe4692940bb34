//! The native test harness every GridTokenX program test uses.
//!
//! Solana's SBF toolchain is not available to CI, so the five programs run natively inside
//! `solana-program-test` (host-compiled, through `processor!`), next to the real SPL Token and
//! Associated Token Account programs that program-test bundles. Native runs charge no compute
//! units, so tests also assert what is deterministic: transaction sizes and account counts.
use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountDeserialize;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_program_test::{BanksClientError, ProgramTest, ProgramTestContext};
use solana_signer::Signer;
use solana_transaction::Transaction;

pub mod auction_reference;
pub mod campus_day;
pub mod embedded;
pub mod energy_campus;
pub mod energy_token_ix;
mod event_stubs;
pub mod fault;
pub mod fixtures;
pub mod governance_ix;
pub mod market_campus;
pub mod market_scale;
pub mod metering;
pub mod oracle_ix;
pub mod registry_ix;
pub mod trading_ix;

pub use solana_keypair;
pub use solana_signer;

/// Largest serialized transaction the network accepts.
pub const MAX_TRANSACTION_SIZE: usize = solana_packet::PACKET_DATA_SIZE;

pub use embedded::{program_test, PROGRAMS};
pub use sdk::ix::program_data_address;

/// A running test validator with helpers to send transactions and read accounts.
pub struct TestEnv {
    pub ctx: ProgramTestContext,
    /// Signatures already sent: the bank answers a repeated transaction with the first
    /// one's result, so `send` moves to a new blockhash before repeating one.
    sent: std::collections::HashSet<solana_signature::Signature>,
}

impl TestEnv {
    pub async fn start() -> Self {
        Self::start_with(program_test()).await
    }

    /// Starts the bank and makes the payer the upgrade authority of the five programs (as
    /// if it had deployed them), which the initialisers check.
    pub async fn start_with(pt: ProgramTest) -> Self {
        let mut env = TestEnv {
            ctx: pt.start_with_context().await,
            sent: Default::default(),
        };
        embedded::install_event_stubs();
        let payer = env.payer();
        for program in PROGRAMS {
            env.plant_program_data(program, Some(payer));
        }
        env
    }

    /// Writes `program`'s `ProgramData` account (upgradeable loader) naming
    /// `upgrade_authority`. The native test programs are builtins without one; a deployed
    /// program has it, and the initialisers read it.
    pub fn plant_program_data(&mut self, program: Pubkey, upgrade_authority: Option<Pubkey>) {
        embedded::plant_program_data(&mut self.ctx, program, upgrade_authority);
    }

    pub fn payer(&self) -> Pubkey {
        self.ctx.payer.pubkey()
    }

    /// A new keypair holding `sol` SOL, paid by the payer.
    pub async fn funded_keypair(&mut self, lamports: u64) -> Keypair {
        let kp = Keypair::new();
        let ix = anchor_lang::solana_program::system_instruction::transfer(
            &self.payer(),
            &kp.pubkey(),
            lamports,
        );
        self.send(&[ix], &[]).await.expect("fund keypair");
        kp
    }

    /// The transaction `send` would submit, signed by the payer and `signers`.
    pub fn transaction(&self, instructions: &[Instruction], signers: &[&Keypair]) -> Transaction {
        let mut all: Vec<&Keypair> = vec![&self.ctx.payer];
        all.extend_from_slice(signers);
        Transaction::new_signed_with_payer(
            instructions,
            Some(&self.payer()),
            &all,
            self.ctx.last_blockhash,
        )
    }

    /// A transaction paid and signed by `payer` alone (a member acting from their wallet).
    pub fn transaction_paid_by(
        &self,
        instructions: &[Instruction],
        payer: &Keypair,
    ) -> Transaction {
        Transaction::new_signed_with_payer(
            instructions,
            Some(&payer.pubkey()),
            &[payer],
            self.ctx.last_blockhash,
        )
    }

    /// Sends one transaction paid by the payer and returns its log lines (program logs and
    /// the `Program data:` lines that carry Anchor events), whether it succeeded or not.
    pub async fn send_with_logs(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> (Result<(), BanksClientError>, Vec<String>) {
        let tx = self.fresh_transaction(instructions, signers).await;
        // This path runs the transaction on the working bank at once, beside program-test's
        // own transaction thread, which may still hold the locks of the transaction sent
        // just before: wait for them (AccountInUse) instead of failing.
        let mut attempts = 0;
        let outcome = loop {
            let outcome = self
                .ctx
                .banks_client
                .process_transaction_with_metadata(tx.clone())
                .await
                .expect("banks client");
            match outcome.result {
                Err(solana_transaction::TransactionError::AccountInUse) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                _ => break outcome,
            }
        };
        let logs = outcome.metadata.map(|m| m.log_messages).unwrap_or_default();
        (
            outcome.result.map_err(BanksClientError::TransactionError),
            logs,
        )
    }

    /// Simulates one transaction. (Anchor's `set_return_data` does nothing on the host, so
    /// the values that view instructions return are checked on SBF, in `tests/sbf`.)
    pub async fn simulate(&mut self, instructions: &[Instruction]) -> Result<(), BanksClientError> {
        let tx = self.fresh_transaction(instructions, &[]).await;
        let mut attempts = 0;
        loop {
            let sim = self
                .ctx
                .banks_client
                .simulate_transaction(tx.clone())
                .await?;
            match sim.result.unwrap_or(Ok(())) {
                Err(solana_transaction::TransactionError::AccountInUse) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                other => return other.map_err(BanksClientError::TransactionError),
            }
        }
    }

    /// Sends one transaction paid by the payer.
    pub async fn send(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), BanksClientError> {
        let tx = self.fresh_transaction(instructions, signers).await;
        self.ctx.banks_client.process_transaction(tx).await
    }

    /// A transaction with the bank's latest blockhash (program-test's simulated PoH makes
    /// blockhashes age in wall-clock time), never one already sent: the bank answers a
    /// repeated transaction with the first one's result.
    async fn fresh_transaction(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Transaction {
        self.ctx.last_blockhash = self
            .ctx
            .banks_client
            .get_latest_blockhash()
            .await
            .expect("latest blockhash");
        let mut tx = self.transaction(instructions, signers);
        if self.sent.contains(&tx.signatures[0]) {
            self.next_slot().await;
            tx = self.transaction(instructions, signers);
        }
        self.sent.insert(tx.signatures[0]);
        tx
    }

    /// Moves to the next slot, and so to a new blockhash, keeping the clock's time.
    async fn next_slot(&mut self) {
        self.advance_clock(0).await;
    }

    /// Reads and deserializes an Anchor account (discriminator and owner-independent layout).
    pub async fn account<T: AccountDeserialize>(&mut self, address: Pubkey) -> T {
        let account = self
            .ctx
            .banks_client
            .get_account(address)
            .await
            .expect("banks client")
            .unwrap_or_else(|| panic!("account {address} does not exist"));
        T::try_deserialize(&mut account.data.as_slice()).expect("deserialize account")
    }

    /// Reads a zero-copy Anchor account (discriminator checked, then its bytes).
    pub async fn zero_copy<T: anchor_lang::ZeroCopy>(&mut self, address: Pubkey) -> T {
        let account = self
            .ctx
            .banks_client
            .get_account(address)
            .await
            .expect("banks client")
            .unwrap_or_else(|| panic!("account {address} does not exist"));
        let disc = T::DISCRIMINATOR;
        assert_eq!(
            &account.data[..disc.len()],
            disc,
            "discriminator of {address}"
        );
        bytemuck::pod_read_unaligned(
            &account.data[disc.len()..disc.len() + std::mem::size_of::<T>()],
        )
    }

    /// Balance of an SPL Token account; 0 if it does not exist.
    pub async fn token_balance(&mut self, address: Pubkey) -> u64 {
        use anchor_lang::solana_program::program_pack::Pack;
        match self
            .ctx
            .banks_client
            .get_account(address)
            .await
            .expect("banks client")
        {
            Some(account) => {
                spl_token_interface::state::Account::unpack(&account.data)
                    .expect("token account")
                    .amount
            }
            None => 0,
        }
    }

    /// Supply and decimals of an SPL Token mint.
    pub async fn mint_info(&mut self, mint: Pubkey) -> spl_token_interface::state::Mint {
        use anchor_lang::solana_program::program_pack::Pack;
        let account = self
            .ctx
            .banks_client
            .get_account(mint)
            .await
            .expect("banks client")
            .expect("mint exists");
        spl_token_interface::state::Mint::unpack(&account.data).expect("mint")
    }

    pub async fn account_exists(&mut self, address: Pubkey) -> bool {
        self.ctx
            .banks_client
            .get_account(address)
            .await
            .expect("banks client")
            .is_some()
    }

    /// Lamports of `address`; 0 if it does not exist.
    pub async fn lamports(&mut self, address: Pubkey) -> u64 {
        self.ctx
            .banks_client
            .get_balance(address)
            .await
            .expect("banks client")
    }

    pub async fn account_owner(&mut self, address: Pubkey) -> Pubkey {
        self.ctx
            .banks_client
            .get_account(address)
            .await
            .expect("banks client")
            .expect("account exists")
            .owner
    }

    pub async fn now(&mut self) -> i64 {
        self.clock().await.unix_timestamp
    }

    async fn clock(&mut self) -> anchor_lang::prelude::Clock {
        self.ctx
            .banks_client
            .get_sysvar()
            .await
            .expect("clock sysvar")
    }

    /// Moves the cluster clock forward by `seconds` (and the slot by one, so that the next
    /// transactions get a fresh blockhash).
    pub async fn advance_clock(&mut self, seconds: i64) {
        let before = self.clock().await;
        self.ctx
            .warp_to_slot(before.slot + 1)
            .expect("warp to next slot");
        let mut clock = self.clock().await;
        clock.unix_timestamp = before
            .unix_timestamp
            .checked_add(seconds)
            .expect("clock overflow");
        self.ctx.set_sysvar(&clock);
        self.ctx.last_blockhash = self
            .ctx
            .banks_client
            .get_latest_blockhash()
            .await
            .expect("latest blockhash");
    }
}

pub use sdk::ix::{anchor_ix, compute_unit_limit};

/// Marks `key` as not signing in `ix` (to test that a missing signature is refused).
pub fn without_signature(mut ix: Instruction, key: Pubkey) -> Instruction {
    for meta in ix.accounts.iter_mut().filter(|m| m.pubkey == key) {
        meta.is_signer = false;
    }
    ix
}

/// Replaces every occurrence of account `from` in `ix` by `to`, keeping the flags.
pub fn replace_account(mut ix: Instruction, from: Pubkey, to: Pubkey) -> Instruction {
    for meta in ix.accounts.iter_mut().filter(|m| m.pubkey == from) {
        *meta = AccountMeta {
            pubkey: to,
            ..meta.clone()
        };
    }
    ix
}

/// The custom error code a failed transaction ended with, if any.
pub fn custom_error(result: &Result<(), BanksClientError>) -> Option<u32> {
    use solana_instruction::error::InstructionError;
    use solana_transaction::TransactionError;
    match result {
        Err(BanksClientError::TransactionError(TransactionError::InstructionError(
            _,
            InstructionError::Custom(code),
        ))) => Some(*code),
        Err(BanksClientError::SimulationError {
            err: TransactionError::InstructionError(_, InstructionError::Custom(code)),
            ..
        }) => Some(*code),
        _ => None,
    }
}

/// Asserts that `result` failed with exactly the Anchor (or program) error `expected`.
#[track_caller]
pub fn assert_error(result: Result<(), BanksClientError>, expected: impl Into<u32>) {
    let expected = expected.into();
    assert_eq!(
        custom_error(&result),
        Some(expected),
        "expected custom error {expected}, got {result:?}"
    );
}

/// The Anchor events of type `T` in a transaction's logs, in order (the keeper's reader:
/// native runs log events one level down, see `embedded`).
/// One GET over a fresh connection: status and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap();
    (status, body)
}

pub use sdk::accounts::events;

/// Size of a transaction as it goes over the wire.
pub fn transaction_size(tx: &Transaction) -> usize {
    bincode::serialize(tx).expect("serialize transaction").len()
}

impl TestEnv {
    /// The bank, for a harness that drives it otherwise (the keeper's `EmbeddedChain`).
    pub fn into_context(self) -> ProgramTestContext {
        self.ctx
    }

    /// Writes an account directly into the bank: used to plant look-alike accounts at the
    /// wrong address or under the wrong owner.
    pub fn plant_account(&mut self, address: Pubkey, owner: Pubkey, data: Vec<u8>) {
        let account = solana_account::Account {
            lamports: 1_000_000_000,
            data,
            owner,
            executable: false,
            rent_epoch: 0,
        };
        self.ctx
            .set_account(&address, &solana_account::AccountSharedData::from(account));
    }
}

/// The bytes of an Anchor account (discriminator first), as the program would write them.
pub fn anchor_account_data<T: anchor_lang::AccountSerialize>(account: &T) -> Vec<u8> {
    let mut data = Vec::new();
    account.try_serialize(&mut data).expect("serialize account");
    data
}

/// Transactions in the v0 format, with address lookup tables: how the keeper fits a whole
/// campus's readings in one transaction.
impl TestEnv {
    /// Writes a lookup table holding `addresses` straight into the bank (as if created and
    /// extended in an earlier slot) and returns its address.
    pub fn plant_lookup_table(&mut self, addresses: Vec<Pubkey>) -> Pubkey {
        use solana_address_lookup_table_interface::state::{AddressLookupTable, LookupTableMeta};
        let table = AddressLookupTable {
            meta: LookupTableMeta {
                deactivation_slot: u64::MAX,
                last_extended_slot: 0,
                last_extended_slot_start_index: 0,
                authority: Some(self.payer()),
                _padding: 0,
            },
            addresses: addresses.into(),
        };
        let data = table.serialize_for_tests().expect("serialize lookup table");
        let address = Keypair::new().pubkey();
        self.plant_account(
            address,
            solana_address_lookup_table_interface::program::ID,
            data,
        );
        address
    }

    /// A signed v0 transaction using the lookup table at `table` (holding `addresses`).
    pub fn v0_transaction(
        &self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        table: Pubkey,
        addresses: &[Pubkey],
    ) -> solana_transaction::versioned::VersionedTransaction {
        use solana_message::{v0, AddressLookupTableAccount, VersionedMessage};
        let lookup = AddressLookupTableAccount {
            key: table,
            addresses: addresses.to_vec(),
        };
        let message = v0::Message::try_compile(
            &self.payer(),
            instructions,
            &[lookup],
            self.ctx.last_blockhash,
        )
        .expect("compile v0 message");
        let mut all: Vec<&Keypair> = vec![&self.ctx.payer];
        all.extend_from_slice(signers);
        solana_transaction::versioned::VersionedTransaction::try_new(
            VersionedMessage::V0(message),
            &all,
        )
        .expect("sign v0 transaction")
    }

    pub async fn send_v0(
        &mut self,
        tx: solana_transaction::versioned::VersionedTransaction,
    ) -> Result<(), BanksClientError> {
        self.ctx.banks_client.process_transaction(tx).await
    }
}

/// Size of a v0 transaction as it goes over the wire.
pub fn versioned_transaction_size(
    tx: &solana_transaction::versioned::VersionedTransaction,
) -> usize {
    bincode::serialize(tx).expect("serialize transaction").len()
}
