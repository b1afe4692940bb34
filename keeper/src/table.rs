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

use sdk::chain::{send_and_confirm, send_pipelined, Chain, SendPolicy};

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

impl CampusTables {
    /// Counts transactions (`jobs`, each a transaction's instructions) by their outcome.
    fn count(
        &self,
        jobs: &[Vec<solana_instruction::Instruction>],
        results: &[Result<sdk::chain::Confirmed, sdk::chain::SendError>],
    ) {
        if let Some(m) = &self.metrics {
            for (job, result) in jobs.iter().zip(results) {
                m.count(job, result);
            }
        }
    }
}

/// The keeper's tables: table 0 the shared accounts, table `1 + g` meter group `g`.
#[derive(Clone, Debug, Default)]
pub struct CampusTables {
    pub tables: Vec<CampusTable>,
    /// Tables replaced by a rebuild (to be deactivated and closed by the operator).
    pub retired: Vec<Pubkey>,
    /// Recent slots tables were created with: a table's address derives from its authority
    /// and that slot, so each new table needs a slot of its own.
    used_slots: std::collections::BTreeSet<u64>,
    /// Where its transactions are counted (`/metrics`), once the keeper gives it.
    pub metrics: Option<std::sync::Arc<crate::metrics::KeeperMetrics>>,
}

/// What one pass does to one table.
enum Work {
    /// A new table at `position` with `wanted` (new, or rebuilding a full one).
    Create {
        position: usize,
        wanted: Vec<Pubkey>,
    },
    /// `missing` added to the table at `position`.
    Extend {
        position: usize,
        missing: Vec<Pubkey>,
    },
}

/// Tables created per slot-hash search at most (SlotHashes holds the last 512 slots).
const CREATES_PER_ROUND: usize = 256;
/// Table transactions unconfirmed at once.
const TABLES_IN_FLIGHT: usize = 32;

/// The slots in the SlotHashes sysvar, newest first: those a new table may name.
async fn recent_slots<C: Chain>(chain: &mut C) -> Result<Vec<u64>> {
    let account = chain
        .account(solana_sdk_ids::sysvar::slot_hashes::ID)
        .await?
        .ok_or_else(|| anyhow!("no SlotHashes sysvar"))?;
    let data = &account.data;
    let count = data
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| anyhow!("SlotHashes sysvar too short"))?;
    let mut slots = Vec::new();
    for i in 0..count.min(512) as usize {
        let at = 8 + i * 40;
        let Some(bytes) = data.get(at..at + 8) else {
            break;
        };
        slots.push(u64::from_le_bytes(bytes.try_into().expect("8 bytes")));
    }
    Ok(slots)
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
            used_slots: Default::default(),
            metrics: None,
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
    ///
    /// Every table's transactions are sent pipelined: first the new tables (each created
    /// with a recent slot of its own from the SlotHashes sysvar, and its first addresses in
    /// the same transaction), then every other extend. Then every table touched is read
    /// back from the chain, so the keeper's view is the chain's whatever landed (extends of
    /// one table may land in any order; one that failed may have landed unseen). A table
    /// that fails is reported and the others go on. Returns the number of tables that
    /// failed.
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
        let mut members: Vec<Vec<TableMeter>> = vec![Vec::new(); self.tables.len()];
        for m in meters {
            members[usize::from(m.index) / METERS_PER_TABLE + 1].push(*m);
        }
        let mut work = Vec::new();
        for (position, table) in self.tables.iter().enumerate() {
            let wanted = if position == 0 {
                shared()
            } else {
                group_wanted(&members[position], quote_mint)
            };
            let missing: Vec<Pubkey> = wanted
                .iter()
                .filter(|a| !table.addresses.contains(a))
                .copied()
                .collect();
            if missing.is_empty() {
                continue;
            }
            if table.address.is_none() || table.addresses.len() + missing.len() > TABLE_CAPACITY {
                // New, or full: a new table with what the group needs now. A full one
                // serves the group's transactions until the new one is built.
                work.push(Work::Create { position, wanted });
            } else {
                work.push(Work::Extend { position, missing });
            }
        }
        if work.is_empty() {
            return Ok(0);
        }
        let payer = solana_signer::Signer::pubkey(chain.payer());
        let policy = SendPolicy::default();
        let mut failed = std::collections::BTreeSet::new();
        let mut last_slot = 0;
        // Positions whose new table was created this pass: (position, address).
        let mut created: Vec<(usize, Pubkey)> = Vec::new();
        // The rest of each new table's addresses, extended after it exists.
        let mut extends: Vec<(usize, Pubkey, Vec<Pubkey>)> = Vec::new();
        for w in &work {
            if let Work::Extend { position, missing } = w {
                let address = self.tables[*position].address.expect("an existing table");
                extends.push((*position, address, missing.clone()));
            }
        }
        let mut creates: Vec<(usize, &Vec<Pubkey>)> = work
            .iter()
            .filter_map(|w| match w {
                Work::Create { position, wanted } => Some((*position, wanted)),
                Work::Extend { .. } => None,
            })
            .collect();
        while !creates.is_empty() {
            let slots = recent_slots(chain).await?;
            if let Some(&oldest) = slots.last() {
                self.used_slots = self.used_slots.split_off(&oldest);
            }
            let free: Vec<u64> = slots
                .into_iter()
                .filter(|s| !self.used_slots.contains(s))
                .take(CREATES_PER_ROUND.min(creates.len()))
                .collect();
            if free.is_empty() {
                // Every recent slot names one of our tables already: the next slot.
                let slot = chain.clock().await?.slot;
                chain.wait_for_slot_after(slot).await?;
                continue;
            }
            let round: Vec<(usize, &Vec<Pubkey>)> = creates.drain(..free.len()).collect();
            let mut jobs = Vec::with_capacity(round.len());
            let mut addresses = Vec::with_capacity(round.len());
            for ((_, wanted), slot) in round.iter().zip(&free) {
                self.used_slots.insert(*slot);
                let (create, address) = alt::create_lookup_table(payer, payer, *slot);
                let first = wanted.len().min(EXTEND_CHUNK);
                let extend =
                    alt::extend_lookup_table(address, payer, Some(payer), wanted[..first].to_vec());
                jobs.push(vec![create, extend]);
                addresses.push(address);
            }
            let results = send_pipelined(chain, &jobs, &[], policy, TABLES_IN_FLIGHT).await;
            self.count(&jobs, &results);
            for (((position, wanted), address), result) in
                round.into_iter().zip(addresses).zip(results)
            {
                match result {
                    Ok(confirmed) => {
                        last_slot = last_slot.max(confirmed.slot);
                        tracing::info!(position, %address, "lookup table created");
                        created.push((position, address));
                        let rest = wanted[wanted.len().min(EXTEND_CHUNK)..].to_vec();
                        if !rest.is_empty() {
                            extends.push((position, address, rest));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(position, error = %e.reason(), "lookup table not created; tried again next pass");
                        failed.insert(position);
                    }
                }
            }
        }
        let mut jobs = Vec::new();
        let mut job_positions = Vec::new();
        for (position, address, missing) in &extends {
            for chunk in missing.chunks(EXTEND_CHUNK) {
                jobs.push(vec![alt::extend_lookup_table(
                    *address,
                    payer,
                    Some(payer),
                    chunk.to_vec(),
                )]);
                job_positions.push(*position);
            }
        }
        let results = send_pipelined(chain, &jobs, &[], policy, TABLES_IN_FLIGHT).await;
        self.count(&jobs, &results);
        for (position, result) in job_positions.iter().zip(results) {
            match result {
                Ok(confirmed) => last_slot = last_slot.max(confirmed.slot),
                Err(e) => {
                    if failed.insert(*position) {
                        tracing::warn!(position, error = %e.reason(), "lookup table not extended; read again from the chain");
                    }
                }
            }
        }
        if last_slot > 0 {
            chain.wait_for_slot_after(last_slot).await?;
        }
        // Read back every table touched: created ones replace the group's table (a full
        // one is retired) once they hold what the group needs; extended ones take the
        // chain's contents.
        let mut touched: Vec<(usize, Pubkey, bool)> = created
            .iter()
            .map(|&(position, address)| (position, address, true))
            .collect();
        touched.extend(
            extends
                .iter()
                .filter(|(position, address, _)| !created.contains(&(*position, *address)))
                .map(|&(position, address, _)| (position, address, false)),
        );
        let keys: Vec<Pubkey> = touched.iter().map(|&(_, address, _)| address).collect();
        let accounts = chain.accounts(&keys).await?;
        for ((position, address, new), account) in touched.into_iter().zip(accounts) {
            let read = account
                .ok_or_else(|| anyhow!("lookup table {address} does not exist"))
                .and_then(|a| {
                    AddressLookupTable::deserialize(&a.data)
                        .map(|t| t.addresses.to_vec())
                        .map_err(|e| anyhow!("{address} is not a lookup table: {e}"))
                });
            let table = &mut self.tables[position];
            match read {
                Ok(addresses) if new && failed.contains(&position) => {
                    // Part built: retired; the group's table (if any) serves meanwhile.
                    tracing::warn!(position, %address, held = addresses.len(), "new lookup table incomplete; retired, built again next pass");
                    self.retired.push(address);
                }
                Ok(addresses) => {
                    if new {
                        if let Some(old) = table.address {
                            tracing::info!(position, %old, new = %address, "lookup table full: rebuilt with the group's current accounts");
                            self.retired.push(old);
                        }
                    }
                    tracing::info!(position, %address, total = addresses.len(), "lookup table extended");
                    *table = CampusTable {
                        address: Some(address),
                        addresses,
                    };
                }
                Err(e) => {
                    failed.insert(position);
                    tracing::warn!(position, %address, error = %e, "lookup table unreadable");
                    self.retired.push(address);
                    if !new {
                        *table = CampusTable::default();
                    }
                }
            }
        }
        Ok(failed.len())
    }
}

/// What [`CampusTables::reclaim`] closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    pub closed: u64,
    pub lamports: u64,
}

impl CampusTables {
    /// Retired tables (`retired`) are the keeper's to recover: each is deactivated, and
    /// closed (its rent to the payer) once its deactivation slot has left the SlotHashes
    /// sysvar (512 slots, about 3.5 minutes on a cluster), a pass at a time; one gone
    /// from the chain is forgotten. A table that cannot be deactivated or closed yet stays
    /// for the next pass.
    pub async fn reclaim<C: Chain>(&mut self, chain: &mut C) -> Result<Reclaimed> {
        let mut reclaimed = Reclaimed::default();
        if self.retired.is_empty() {
            return Ok(reclaimed);
        }
        let payer = solana_signer::Signer::pubkey(chain.payer());
        let slot = chain.clock().await?.slot;
        let recent = recent_slots(chain).await?;
        let accounts = chain.accounts(&self.retired).await?;
        let mut keep = Vec::new();
        for (address, account) in self.retired.clone().into_iter().zip(accounts) {
            let Some(account) = account else {
                continue;
            };
            let Ok(table) = AddressLookupTable::deserialize(&account.data) else {
                tracing::warn!(%address, "retired lookup table unreadable; forgotten");
                continue;
            };
            if table.meta.authority != Some(payer) {
                tracing::warn!(%address, "retired lookup table belongs to another authority; forgotten");
                continue;
            }
            let deactivated = table.meta.deactivation_slot;
            let ix = if deactivated == u64::MAX {
                alt::deactivate_lookup_table(address, payer)
            } else if deactivated < slot && !recent.contains(&deactivated) {
                // Gone from SlotHashes: no transaction can use it any more.
                alt::close_lookup_table(address, payer, payer)
            } else {
                keep.push(address);
                continue;
            };
            let closing = deactivated != u64::MAX;
            let result = send_and_confirm(
                chain,
                std::slice::from_ref(&ix),
                &[],
                &[],
                SendPolicy::default(),
            )
            .await;
            self.count(&[vec![ix]], std::slice::from_ref(&result));
            match result {
                Ok(_) if closing => {
                    tracing::info!(%address, lamports = account.lamports, "retired lookup table closed");
                    reclaimed.closed += 1;
                    reclaimed.lamports += account.lamports;
                }
                Ok(_) => {
                    tracing::info!(%address, "retired lookup table deactivated");
                    keep.push(address);
                }
                Err(e) => {
                    tracing::warn!(%address, error = %e.reason(), "retired lookup table not reclaimed yet");
                    keep.push(address);
                }
            }
        }
        self.retired = keep;
        Ok(reclaimed)
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
