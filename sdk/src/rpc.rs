//! A cluster over JSON-RPC behind the keeper's `Chain` interface: a local
//! `solana-test-validator`, devnet, or any RPC endpoint.
//!
//! Reads use `confirmed` commitment (what the keeper acts on must not roll back in the
//! usual case; the chain's own checks make a rolled-back action safe to redo). Transactions
//! are sent with preflight skipped (the keeper simulated them just before) and without the
//! node's own retries (the keeper rebroadcasts itself until confirmed or expired).
use std::time::Duration;

use anchor_lang::prelude::{Clock, Pubkey};
use anyhow::{anyhow, bail, Context, Result};
use solana_account::Account;
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_commitment_config::{CommitmentConfig, CommitmentLevel};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_types::config::{
    RpcAccountInfoConfig, RpcProgramAccountsConfig, RpcSendTransactionConfig,
    RpcSimulateTransactionConfig, RpcTransactionConfig,
};
use solana_rpc_client_types::filter::{Memcmp, RpcFilterType};
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::TransactionError;
use solana_transaction_status_client_types::{
    TransactionConfirmationStatus, UiTransactionEncoding,
};

use crate::chain::{Chain, NamedTransaction, NamedTransactions, Outcome, Simulation};

/// Accounts per `getMultipleAccounts` call (the RPC's limit).
const ACCOUNTS_PER_CALL: usize = 100;
/// `getTransaction` requests in flight at once when reading a history.
const LOGS_AT_ONCE: usize = 8;
/// Signatures per `getSignaturesForAddress` page (the most a node serves).
const SIGNATURES_PER_CALL: usize = 1_000;

pub struct RpcChain {
    client: RpcClient,
    payer: Keypair,
    url: String,
    genesis: Option<[u8; 32]>,
}

impl RpcChain {
    /// A chain at `url` (for example `http://127.0.0.1:8899`), paying with `payer`.
    pub fn new(url: &str, payer: Keypair) -> RpcChain {
        let client = RpcClient::new_with_timeout_and_commitment(
            url.to_string(),
            Duration::from_secs(30),
            CommitmentConfig::confirmed(),
        );
        RpcChain {
            client,
            payer,
            url: url.to_string(),
            genesis: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL as logs may show it (`settings::redact_url`): providers put API keys in it.
    pub fn shown_url(&self) -> String {
        crate::settings::redact_url(&self.url)
    }

    /// An RPC error, said without the URL's secrets: the client's own message quotes the
    /// whole URL (a request error names it), so every URL in it is redacted.
    fn failed(&self, what: String, error: impl std::fmt::Display) -> anyhow::Error {
        let message = crate::settings::redact_urls_in(&error.to_string());
        anyhow!("{what} at {}: {message}", self.shown_url())
    }

    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// Asks the cluster (a test validator or devnet faucet) for lamports and waits until
    /// they are there.
    pub async fn airdrop(&mut self, to: &Pubkey, lamports: u64) -> Result<()> {
        let before = self.client.get_balance(to).await.unwrap_or(0);
        let signature = self
            .client
            .request_airdrop(to, lamports)
            .await
            .map_err(|e| self.failed(format!("airdrop to {to}"), e))?;
        for _ in 0..150 {
            if let Outcome::Confirmed { .. } = self.outcome(&signature).await? {
                return Ok(());
            }
            if self.client.get_balance(to).await.unwrap_or(0) >= before + lamports {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(anyhow!("airdrop {signature} not confirmed after 30 s"))
    }

    /// Waits until the cluster's clock reaches `unix_timestamp` (a validator's clock is
    /// real time; it cannot be moved).
    pub async fn wait_for_time(&mut self, unix_timestamp: i64) -> Result<Clock> {
        loop {
            let clock = self.clock().await?;
            if clock.unix_timestamp >= unix_timestamp {
                return Ok(clock);
            }
            let wait = (unix_timestamp - clock.unix_timestamp).clamp(0, 2) as u64;
            tokio::time::sleep(Duration::from_millis(200 + wait * 400)).await;
        }
    }

    async fn logs(&self, signature: &Signature) -> Vec<String> {
        match self.try_logs(signature, 20).await {
            Some((logs, _)) => logs,
            None => {
                tracing::warn!(%signature, "transaction confirmed but its logs were not served");
                Vec::new()
            }
        }
    }

    /// A transaction's logs, asking up to `attempts` times (a node may report a status a
    /// moment before it serves the transaction); `None` if it never served them.
    /// The successful transactions naming `address` after `after`, at most `limit`, oldest
    /// first: the newest `limit` (`oldest` false; `skipped` when others were left out) or
    /// the oldest `limit` (`oldest` true; `more` when others follow). Signatures are read a
    /// page at a time, newest first, back to `after` (all of them when `oldest`: a reader
    /// far behind walks its whole backlog each read, 1,000 signatures a call); logs for the
    /// ones returned.
    async fn named(
        &self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
        oldest: bool,
    ) -> Result<NamedTransactions> {
        use solana_rpc_client::rpc_client::GetConfirmedSignaturesForAddress2Config;
        // A node ignores an `until` it does not know (pruned from its ledger, another
        // node's, a reset chain) and lists back to its oldest: a reader that must see
        // every transaction stops there instead of jumping or repeating.
        if let (true, Some(cursor)) = (oldest, after) {
            let known = self
                .client
                .get_signature_statuses_with_history(&[cursor])
                .await
                .map_err(|e| self.failed("getSignatureStatuses".into(), e))?
                .value
                .into_iter()
                .next()
                .flatten()
                .is_some();
            if !known {
                bail!(
                    "the node does not know transaction {cursor}, where this reader stopped (its ledger was pruned past it, or it is another node): ask a node with that history, or start the reader again from the node's oldest transaction"
                );
            }
        }
        // Failed transactions are passed over (they emitted nothing) and do not count. For
        // the oldest, only the last `limit + 1` met going back are kept.
        let mut found = std::collections::VecDeque::new();
        let mut before = None;
        let mut skipped = false;
        'pages: loop {
            let page = self
                .client
                .get_signatures_for_address_with_config(
                    &address,
                    GetConfirmedSignaturesForAddress2Config {
                        before,
                        until: after,
                        limit: Some(SIGNATURES_PER_CALL),
                        commitment: Some(CommitmentConfig::confirmed()),
                    },
                )
                .await
                .map_err(|e| self.failed(format!("getSignaturesForAddress({address})"), e))?;
            let full = page.len() == SIGNATURES_PER_CALL;
            for status in page {
                let signature: Signature = status
                    .signature
                    .parse()
                    .map_err(|e| anyhow!("getSignaturesForAddress: signature {e}"))?;
                before = Some(signature);
                if status.err.is_some() {
                    continue;
                }
                if !oldest && found.len() == limit {
                    skipped = true;
                    break 'pages;
                }
                found.push_back((signature, status.slot, status.block_time));
                if oldest && found.len() > limit + 1 {
                    found.pop_front();
                }
            }
            if !full {
                break;
            }
        }
        // Oldest first, LOGS_AT_ONCE requests in flight. A transaction whose logs the node
        // does not serve ends the list there: the caller asks again from the one before it,
        // and nothing is passed over.
        let mut found: Vec<_> = found.into_iter().rev().collect();
        let more = oldest && found.len() > limit;
        found.truncate(limit);
        let mut transactions = Vec::with_capacity(found.len());
        let mut cut = false;
        'chunks: for chunk in found.chunks(LOGS_AT_ONCE) {
            let logs = futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|(signature, _, _)| self.try_logs(signature, 5)),
            )
            .await;
            for ((signature, slot, block_time), logs) in chunk.iter().zip(logs) {
                let Some((logs, tx_time)) = logs else {
                    tracing::warn!(%signature, "getTransaction: the node does not serve this transaction yet; the rest waits for the next read");
                    cut = true;
                    break 'chunks;
                };
                transactions.push(NamedTransaction {
                    signature: *signature,
                    slot: *slot,
                    block_time: block_time.or(tx_time),
                    logs,
                });
            }
        }
        if oldest && transactions.is_empty() && !found.is_empty() {
            bail!(
                "the node does not serve transaction {} yet (getTransaction): the reader waits for it",
                found[0].0
            );
        }
        Ok(NamedTransactions {
            transactions,
            skipped,
            more: more || (oldest && cut),
        })
    }

    /// A transaction's logs and block time, `None` if the node does not serve it.
    async fn try_logs(
        &self,
        signature: &Signature,
        attempts: u32,
    ) -> Option<(Vec<String>, Option<i64>)> {
        let config = RpcTransactionConfig {
            encoding: Some(UiTransactionEncoding::Base64),
            commitment: Some(CommitmentConfig::confirmed()),
            max_supported_transaction_version: Some(0),
        };
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if let Ok(tx) = self
                .client
                .get_transaction_with_config(signature, config)
                .await
            {
                return Some((
                    tx.transaction
                        .meta
                        .and_then(|m| Option::<Vec<String>>::from(m.log_messages))
                        .unwrap_or_default(),
                    tx.block_time,
                ));
            }
        }
        None
    }
}

impl Chain for RpcChain {
    fn payer(&self) -> &Keypair {
        &self.payer
    }

    async fn genesis_hash(&mut self) -> Result<[u8; 32]> {
        if let Some(hash) = self.genesis {
            return Ok(hash);
        }
        let hash = self
            .client
            .get_genesis_hash()
            .await
            .map_err(|e| self.failed("getGenesisHash".into(), e))?
            .to_bytes();
        self.genesis = Some(hash);
        Ok(hash)
    }

    async fn clock(&mut self) -> Result<Clock> {
        let account = self
            .account(solana_sdk_ids::sysvar::clock::ID)
            .await?
            .ok_or_else(|| anyhow!("no clock sysvar at {}", self.shown_url()))?;
        bincode::deserialize(&account.data).context("decode the clock sysvar")
    }

    async fn accounts(&mut self, keys: &[Pubkey]) -> Result<Vec<Option<Account>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(ACCOUNTS_PER_CALL) {
            let got = self
                .client
                .get_multiple_accounts(chunk)
                .await
                .map_err(|e| self.failed("getMultipleAccounts".into(), e))?;
            out.extend(got);
        }
        Ok(out)
    }

    async fn program_accounts_matching(
        &mut self,
        program: Pubkey,
        discriminator: &[u8],
        matching: &[(usize, Vec<u8>)],
    ) -> Result<Vec<(Pubkey, Account)>> {
        let mut filters = vec![RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
            0,
            discriminator.to_vec(),
        ))];
        filters.extend(matching.iter().map(|(offset, bytes)| {
            RpcFilterType::Memcmp(Memcmp::new_raw_bytes(*offset, bytes.clone()))
        }));
        let config = RpcProgramAccountsConfig {
            filters: Some(filters),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                commitment: Some(CommitmentConfig::confirmed()),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let accounts = self
            .client
            .get_program_ui_accounts_with_config(&program, config)
            .await
            .map_err(|e| self.failed(format!("getProgramAccounts({program})"), e))?;
        accounts
            .into_iter()
            .map(|(key, ui)| {
                ui.decode::<Account>()
                    .map(|a| (key, a))
                    .ok_or_else(|| anyhow!("getProgramAccounts: undecodable account {key}"))
            })
            .collect()
    }

    async fn transactions_naming(
        &mut self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
    ) -> Result<NamedTransactions> {
        self.named(address, after, limit, false).await
    }

    async fn transactions_after(
        &mut self,
        address: Pubkey,
        after: Option<Signature>,
        limit: usize,
    ) -> Result<NamedTransactions> {
        self.named(address, after, limit, true).await
    }

    async fn latest_blockhash(&mut self) -> Result<Hash> {
        self.client
            .get_latest_blockhash()
            .await
            .map_err(|e| self.failed("getLatestBlockhash".into(), e))
    }

    async fn blockhash_valid(&mut self, blockhash: &Hash) -> Result<bool> {
        self.client
            .is_blockhash_valid(blockhash, CommitmentConfig::processed())
            .await
            .map_err(|e| self.failed("isBlockhashValid".into(), e))
    }

    async fn simulate(&mut self, tx: &VersionedTransaction) -> Result<Simulation> {
        let config = RpcSimulateTransactionConfig {
            sig_verify: true,
            commitment: Some(CommitmentConfig::confirmed()),
            encoding: Some(UiTransactionEncoding::Base64),
            ..RpcSimulateTransactionConfig::default()
        };
        let result = self
            .client
            .simulate_transaction_with_config(tx, config)
            .await
            .map_err(|e| self.failed("simulateTransaction".into(), e))?
            .value;
        Ok(Simulation {
            error: result.err.map(TransactionError::from),
            units: result.units_consumed.unwrap_or(0),
            logs: result.logs.unwrap_or_default(),
        })
    }

    async fn send(&mut self, tx: &VersionedTransaction) -> Result<Signature> {
        let config = RpcSendTransactionConfig {
            skip_preflight: true,
            preflight_commitment: Some(CommitmentLevel::Confirmed),
            encoding: Some(UiTransactionEncoding::Base64),
            max_retries: Some(0),
            min_context_slot: None,
        };
        self.client
            .send_transaction_with_config(tx, config)
            .await
            .map_err(|e| self.failed("sendTransaction".into(), e))
    }

    async fn outcome(&mut self, signature: &Signature) -> Result<Outcome> {
        let status = self
            .client
            .get_signature_statuses(&[*signature])
            .await
            .map_err(|e| self.failed("getSignatureStatuses".into(), e))?
            .value
            .pop()
            .flatten();
        let Some(status) = status else {
            return Ok(Outcome::Pending);
        };
        let confirmed = matches!(
            status.confirmation_status,
            Some(TransactionConfirmationStatus::Confirmed)
                | Some(TransactionConfirmationStatus::Finalized)
        ) || status.confirmations.is_none();
        if !confirmed {
            return Ok(Outcome::Pending);
        }
        let logs = self.logs(signature).await;
        Ok(match status.err {
            None => Outcome::Confirmed {
                slot: status.slot,
                logs,
            },
            Some(error) => Outcome::Failed { error, logs },
        })
    }

    async fn wait_for_slot_after(&mut self, slot: u64) -> Result<()> {
        for _ in 0..300 {
            let now = self
                .client
                .get_slot()
                .await
                .map_err(|e| self.failed("getSlot".into(), e))?;
            if now > slot {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(anyhow!(
            "the cluster at {} did not pass slot {slot} in 60 s",
            self.shown_url()
        ))
    }
}
