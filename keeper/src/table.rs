//! The keeper's address lookup tables: every account its transactions name more than once
//! (program configurations, mints, vaults, and per meter its registry record, oracle state,
//! ledger, the owner's GRID, REC and quote accounts, market balance and wallet). With them,
//! a batch of 25 readings, a mint of 14 meters, a settlement of 24 orders and a sweep of 12
//! balances each fit one transaction.
//!
//! **Several tables, grouped statically** (`CampusTables`): table 0 holds the shared
//! accounts; meter `i` (its registry index) belongs to table `1 + i / METERS_PER_TABLE`, so a
//! campus of any size has as many tables as it needs and a transaction names only the tables
//! of its meters. A group's table that fills up (ownership changes add addresses; a table is
//! never pruned) is rebuilt: a new table with what the group needs now replaces it. After an
//! extend fails, the table is read again from the chain (an extend may have landed unseen),
//! and the other tables go on.
//!
//! The keeper creates its tables itself and extends them as meters appear; an address
//! extended in slot `s` can be used from slot `s + 1`. After a restart it finds its tables
//! again on chain from the addresses in its state file (or creates new ones).
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
/// Meters per group table: 8 addresses each (192 of 256), leaving room for ownership changes
/// (5 new addresses each) before the table is rebuilt.
pub const METERS_PER_TABLE: usize = 24;

#[derive(Clone, Debug, Default)]
pub struct CampusTable {
    /// The table's address, once created (or given).
    pub address: Option<Pubkey>,
    /// What it holds, in order.
    pub addresses: Vec<Pubkey>,
}

/// Every address the keeper wants in its table, for `meters` and the market's quote mint.
pub fn wanted(meters: &[(Lfdi, Pubkey)], quote_mint: Option<Pubkey>) -> Vec<Pubkey> {
    let mut out = shared();
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

/// The accounts every part of the keeper names: table 0's.
pub fn shared() -> Vec<Pubkey> {
    vec![
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
    ]
}

/// A registered meter, as the tables group it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableMeter {
    pub lfdi: Lfdi,
    pub owner: Pubkey,
    /// The registry's index: the meter's group is `index / METERS_PER_TABLE`.
    pub index: u16,
}

/// What group `meters` (all of one group) need in their table.
fn group_wanted(meters: &[TableMeter], quote_mint: Option<Pubkey>) -> Vec<Pubkey> {
    let pairs: Vec<(Lfdi, Pubkey)> = meters.iter().map(|m| (m.lfdi, m.owner)).collect();
    let shared: std::collections::HashSet<Pubkey> = shared().into_iter().collect();
    wanted(&pairs, quote_mint)
        .into_iter()
        .filter(|a| !shared.contains(a))
        .collect()
}

/// The keeper's tables: table 0 the shared accounts, table `1 + g` meter group `g`.
#[derive(Clone, Debug, Default)]
pub struct CampusTables {
    pub tables: Vec<CampusTable>,
    /// Tables replaced by a rebuild (to be deactivated and closed by the operator).
    pub retired: Vec<Pubkey>,
    /// The recent slot the last table was created with: a table's address derives from its
    /// authority and that slot, so two tables need two slots.
    last_created: u64,
}

impl CampusTables {
    /// The tables' addresses, by position (None: not created yet): what the state file keeps.
    pub fn addresses(&self) -> Vec<Option<Pubkey>> {
        self.tables.iter().map(|t| t.address).collect()
    }

    /// Loads the tables at `addresses` (by position); one that cannot be read is left to be
    /// created again, with a warning.
    pub async fn load<C: Chain>(chain: &mut C, addresses: &[Option<Pubkey>]) -> CampusTables {
        let mut tables = Vec::with_capacity(addresses.len());
        for address in addresses {
            let table = match address {
                Some(a) => match CampusTable::load(chain, *a).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(address = %a, error = %e, "remembered lookup table unusable; a new one will be created");
                        CampusTable::default()
                    }
                },
                None => CampusTable::default(),
            };
            tables.push(table);
        }
        CampusTables {
            tables,
            retired: Vec::new(),
            last_created: 0,
        }
    }

    /// Every table, for a transaction (the compiler uses those that hold its accounts).
    pub fn all(&self) -> Vec<AddressLookupTableAccount> {
        self.tables.iter().filter_map(|t| t.lookup()).collect()
    }

    /// The tables holding any of `instructions`' accounts.
    pub fn for_instructions(
        &self,
        instructions: &[solana_instruction::Instruction],
    ) -> Vec<AddressLookupTableAccount> {
        let keys: std::collections::HashSet<Pubkey> = instructions
            .iter()
            .flat_map(|ix| ix.accounts.iter().map(|m| m.pubkey).chain([ix.program_id]))
            .collect();
        self.tables
            .iter()
            .filter(|t| t.addresses.iter().any(|a| keys.contains(a)))
            .filter_map(|t| t.lookup())
            .collect()
    }

    /// Creates and extends the tables so that each holds what its part needs: the shared
    /// accounts, and each group's meters' accounts (`meters` from the registry, with the
    /// market's quote mint once there is a market). A group whose table is full is rebuilt.
    /// A table that fails is reported and read again from the chain; the others go on.
    /// Returns the number of tables that failed.
    pub async fn ensure<C: Chain>(
        &mut self,
        chain: &mut C,
        meters: &[TableMeter],
        quote_mint: Option<Pubkey>,
    ) -> Result<usize> {
        let groups = meters
            .iter()
            .map(|m| usize::from(m.index) / METERS_PER_TABLE + 1)
            .max()
            .unwrap_or(0);
        if self.tables.len() < groups + 1 {
            self.tables.resize_with(groups + 1, CampusTable::default);
        }
        let mut failed = 0;
        let mut last_slot = 0;
        for position in 0..self.tables.len() {
            let wanted = if position == 0 {
                shared()
            } else {
                let members: Vec<TableMeter> = meters
                    .iter()
                    .filter(|m| usize::from(m.index) / METERS_PER_TABLE + 1 == position)
                    .copied()
                    .collect();
                group_wanted(&members, quote_mint)
            };
            let table = &mut self.tables[position];
            let missing = wanted
                .iter()
                .filter(|a| !table.addresses.contains(a))
                .count();
            if missing == 0 {
                continue;
            }
            if table.addresses.len() + missing > TABLE_CAPACITY {
                // Full: a new table with what the group needs now. The old one serves the
                // group's transactions until the new one is built; a new one that fails
                // part way is retired and tried again next pass.
                let mut fresh = CampusTable::default();
                match fresh
                    .extend_with(chain, &wanted, &mut self.last_created)
                    .await
                {
                    Ok(slot) => {
                        tracing::info!(
                            position,
                            old = ?table.address,
                            new = ?fresh.address,
                            "lookup table full: rebuilt with the group's current accounts"
                        );
                        if let Some(old) = table.address {
                            self.retired.push(old);
                        }
                        *table = fresh;
                        last_slot = last_slot.max(slot);
                    }
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(position, error = %e, "lookup table not rebuilt; the full one serves meanwhile");
                        if let Some(partial) = fresh.address {
                            self.retired.push(partial);
                        }
                    }
                }
                continue;
            }
            match table
                .extend_with(chain, &wanted, &mut self.last_created)
                .await
            {
                Ok(slot) => last_slot = last_slot.max(slot),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(position, error = %e, "lookup table not extended; read again from the chain");
                    if let Some(address) = table.address {
                        match CampusTable::load(chain, address).await {
                            Ok(fresh) => *table = fresh,
                            Err(e) => {
                                tracing::warn!(%address, error = %e, "lookup table unreadable; a new one will be created");
                                self.retired.push(address);
                                *table = CampusTable::default();
                            }
                        }
                    }
                }
            }
        }
        if last_slot > 0 {
            chain.wait_for_slot_after(last_slot).await?;
        }
        Ok(failed)
    }
}

impl CampusTable {
    /// Creates the table if needed and adds what of `wanted` it lacks (it has room);
    /// returns the slot of the last change (0 if none).
    async fn extend_with<C: Chain>(
        &mut self,
        chain: &mut C,
        wanted: &[Pubkey],
        last_created: &mut u64,
    ) -> Result<u64> {
        let missing: Vec<Pubkey> = wanted
            .iter()
            .filter(|a| !self.addresses.contains(a))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let payer = chain.payer().insecure_clone();
        let payer_key = solana_signer::Signer::pubkey(&payer);
        let policy = SendPolicy::default();
        let mut last_slot = 0;
        let address = match self.address {
            Some(a) => a,
            None => {
                let mut slot = chain.clock().await?.slot;
                if slot.saturating_sub(1) <= *last_created {
                    // Another table was created from this slot: the next one.
                    chain.wait_for_slot_after(slot).await?;
                    slot = chain.clock().await?.slot;
                }
                // The recent slot must be in the SlotHashes sysvar: an earlier slot.
                let recent = slot.saturating_sub(1);
                *last_created = recent;
                let (create, address) = alt::create_lookup_table(payer_key, payer_key, recent);
                let confirmed = send_and_confirm(chain, &[create], &[], &[], policy)
                    .await
                    .map_err(|e| anyhow!("create a lookup table: {e}"))?;
                last_slot = confirmed.slot;
                tracing::info!(%address, "lookup table created");
                self.address = Some(address);
                self.addresses.clear();
                address
            }
        };
        for chunk in missing.chunks(EXTEND_CHUNK) {
            let extend =
                alt::extend_lookup_table(address, payer_key, Some(payer_key), chunk.to_vec());
            let confirmed = send_and_confirm(chain, &[extend], &[], &[], policy)
                .await
                .map_err(|e| anyhow!("extend lookup table {address}: {e}"))?;
            last_slot = confirmed.slot;
            self.addresses.extend_from_slice(chunk);
        }
        tracing::info!(
            %address,
            added = missing.len(),
            total = self.addresses.len(),
            "lookup table extended"
        );
        Ok(last_slot)
    }
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
}
