//! The keeper's address lookup table: every account its transactions name more than once
//! (program configurations, mints, vaults, and per meter its registry record, oracle state,
//! ledger, the owner's GRID, REC and quote accounts, market balance and wallet). With it, a
//! batch of 25 readings, a mint of 14 meters, a settlement of 24 orders and a sweep of 12
//! balances each fit one transaction.
//!
//! The keeper creates the table itself and extends it as meters appear; an address extended
//! in slot `s` can be used from slot `s + 1`. After a restart it finds its table again on
//! chain from the address given in its configuration (or creates a new one).
use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, Result};
use registry::identity::Lfdi;
use sdk::ix::{
    energy_token as token_ix, oracle as oracle_ix, registry as registry_ix, trading as market_ix,
};
use solana_address_lookup_table_interface::instruction as alt;
use solana_address_lookup_table_interface::state::AddressLookupTable;
use solana_message::AddressLookupTableAccount;

use sdk::chain::{send_and_confirm, Chain, SendPolicy};

/// Addresses per `extend` transaction.
const EXTEND_CHUNK: usize = 20;
/// A table holds at most this many addresses.
pub const TABLE_CAPACITY: usize = 256;

#[derive(Clone, Debug, Default)]
pub struct CampusTable {
    /// The table's address, once created (or given).
    pub address: Option<Pubkey>,
    /// What it holds, in order.
    pub addresses: Vec<Pubkey>,
}

/// Every address the keeper wants in its table, for `meters` and the market's quote mint.
pub fn wanted(meters: &[(Lfdi, Pubkey)], quote_mint: Option<Pubkey>) -> Vec<Pubkey> {
    let mut out = vec![
        oracle_ix::config_address(),
        solana_sdk_ids::sysvar::instructions::ID,
        anchor_spl::token::ID,
        token_ix::config_address(),
        token_ix::grid_mint(),
        token_ix::rec_mint(),
        token_ix::mint_authority(),
        market_ix::market_address(),
        market_ix::base_vault(),
        market_ix::quote_vault(),
        market_ix::vault_authority(),
    ];
    for (lfdi, owner) in meters {
        out.push(registry_ix::meter_address(lfdi));
        out.push(oracle_ix::meter_state_address(lfdi));
        out.push(token_ix::ledger_address(lfdi));
        out.push(token_ix::ata(owner, &token_ix::grid_mint()));
        out.push(token_ix::ata(owner, &token_ix::rec_mint()));
        if let Some(quote) = quote_mint {
            out.push(token_ix::ata(owner, &quote));
            // The owner's market balance (settlement credits it, the sweep pays it out),
            // and the owner's wallet (the sweep returns settled orders' rent to it).
            out.push(market_ix::balance_address(owner));
            out.push(*owner);
        }
    }
    // An owner of several meters is listed once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|a| seen.insert(*a));
    out
}

impl CampusTable {
    pub fn lookup(&self) -> Option<AddressLookupTableAccount> {
        self.address.map(|key| AddressLookupTableAccount {
            key,
            addresses: self.addresses.clone(),
        })
    }

    /// Loads the table at `address` from the chain.
    pub async fn load<C: Chain>(chain: &mut C, address: Pubkey) -> Result<CampusTable> {
        let account = chain
            .account(address)
            .await?
            .ok_or_else(|| anyhow!("lookup table {address} does not exist"))?;
        let table = AddressLookupTable::deserialize(&account.data)
            .map_err(|e| anyhow!("{address} is not a lookup table: {e}"))?;
        Ok(CampusTable {
            address: Some(address),
            addresses: table.addresses.to_vec(),
        })
    }

    /// Creates the table if needed and adds what is missing for `meters` (each with its
    /// owner, as the registry has it).
    pub async fn ensure<C: Chain>(
        &mut self,
        chain: &mut C,
        meters: &[(Lfdi, Pubkey)],
        quote_mint: Option<Pubkey>,
    ) -> Result<()> {
        let missing: Vec<Pubkey> = wanted(meters, quote_mint)
            .into_iter()
            .filter(|a| !self.addresses.contains(a))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // A full table never stops the keeper: what does not fit is named in the
        // transactions themselves, whose batches shrink to fit (`Keeper::batches`). (One
        // table serves a campus of about 30 owners; more tables are issue 27's.)
        let room = TABLE_CAPACITY.saturating_sub(self.addresses.len());
        if missing.len() > room {
            tracing::warn!(
                missing = missing.len(),
                room,
                "the lookup table is full: the rest go in the transactions"
            );
        }
        let missing: Vec<Pubkey> = missing.into_iter().take(room).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let payer = chain.payer().insecure_clone();
        let payer_key = solana_signer::Signer::pubkey(&payer);
        let policy = SendPolicy::default();
        let address = match self.address {
            Some(a) => a,
            None => {
                let slot = chain.clock().await?.slot;
                // The recent slot must be in the SlotHashes sysvar: an earlier slot.
                let recent = slot.saturating_sub(1);
                let (create, address) = alt::create_lookup_table(payer_key, payer_key, recent);
                send_and_confirm(chain, &[create], &[], &[], policy)
                    .await
                    .map_err(|e| anyhow!("create the lookup table: {e}"))?;
                tracing::info!(%address, "lookup table created");
                self.address = Some(address);
                address
            }
        };
        let mut last_slot = 0;
        for chunk in missing.chunks(EXTEND_CHUNK) {
            let extend =
                alt::extend_lookup_table(address, payer_key, Some(payer_key), chunk.to_vec());
            let confirmed = send_and_confirm(chain, &[extend], &[], &[], policy)
                .await
                .map_err(|e| anyhow!("extend the lookup table: {e}"))?;
            last_slot = confirmed.slot;
            self.addresses.extend_from_slice(chunk);
        }
        tracing::info!(
            added = missing.len(),
            total = self.addresses.len(),
            "lookup table extended"
        );
        chain.wait_for_slot_after(last_slot).await?;
        Ok(())
    }
}
