//! One interval of the campus market at scale on the embedded chain (issue 26): `meters`
//! buildings (10,000 by default), half of them buying and half selling, each placing its
//! order in its own transaction signed by its owner; the interval cleared once its gate has
//! closed; every order settled in batches (v0 transactions whose balances come from lookup
//! tables, as a keeper's would); the book closed. Measures the transactions and the wall
//! time of each phase and checks the outcome: every order settled, the vaults holding exactly
//! what the market owes.
//!
//! **What is set up by writing accounts, not by transactions** (documented in
//! docs/benchmarks.md): the registry's meters (Active, one owner each, the test capacity),
//! the owners' wallets (lamports), their token accounts (GRID for sellers, quote for buyers,
//! with balances written in: GRID's supply does not count them) and the lookup tables of
//! the owners' balance addresses. Registering 10,000 meters and minting their GRID is the
//! registry's and the energy token's business, measured elsewhere; what is measured here is
//! the market: opening, placing, clearing, settling and closing.
use std::time::{Duration, Instant};

use anchor_lang::prelude::{Pubkey, Rent};
use anchor_lang::solana_program::program_pack::Pack;
use anyhow::{anyhow, ensure, Context, Result};
use registry::identity::{sfdi_from_lfdi, Lfdi};
use registry::{BuildingKind, Meter, MeterCapacity, MeterStatus};
use sdk::ix::{energy_token as token_ix, registry as registry_ix, trading as market_ix};
use solana_account::Account;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::{v0, AddressLookupTableAccount, VersionedMessage};
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::Transaction;
use trading::{MarketParams, Side};

use crate::embedded::{program_test, EmbeddedChain};

/// Addresses per lookup table (the program's maximum).
const TABLE_SIZE: usize = 256;
const SOL: u64 = 1_000_000_000;

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct ScaleReport {
    pub meters: usize,
    pub buys: usize,
    pub sells: usize,
    pub place_transactions: usize,
    pub place_time: Duration,
    pub clear_transactions: usize,
    pub clear_time: Duration,
    pub settle_transactions: usize,
    pub settle_time: Duration,
    pub close_time: Duration,
    pub largest_settlement_bytes: usize,
    pub price: u64,
    pub volume_wh: u64,
    pub setup_time: Duration,
}

impl ScaleReport {
    pub fn market_transactions(&self) -> usize {
        // open_interval and close_book: one each.
        1 + self.place_transactions + self.clear_transactions + self.settle_transactions + 1
    }

    pub fn market_time(&self) -> Duration {
        self.place_time + self.clear_time + self.settle_time + self.close_time
    }
}

fn lfdi(i: usize) -> Lfdi {
    let mut l = [0u8; 20];
    l[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    l[8..12].copy_from_slice(b"SCAL");
    l
}

fn capacity() -> MeterCapacity {
    MeterCapacity {
        generation_w: 50_000,
        storage_wh: 30_000,
        max_import_w: 80_000,
        max_discharge_w: 15_000,
    }
}

/// Building `i`'s order: even buildings buy, odd ones sell, on ladders that cross (so that
/// about half the volume trades and the marginal step is rationed).
fn order_of(i: usize) -> (Side, u64, u64) {
    let step = (i / 2 % 200) as u64;
    let quantity = 500 + 13 * (i as u64 % 97);
    if i.is_multiple_of(2) {
        (Side::Buy, quantity, 150_000 - 500 * step)
    } else {
        (Side::Sell, quantity, 60_000 + 500 * step)
    }
}

fn system_account(lamports: u64) -> Account {
    Account {
        lamports,
        data: Vec::new(),
        owner: anchor_lang::system_program::ID,
        executable: false,
        rent_epoch: 0,
    }
}

fn token_account(mint: &Pubkey, owner: &Pubkey, amount: u64) -> Account {
    let state = spl_token_interface::state::Account {
        mint: *mint,
        owner: *owner,
        amount,
        state: spl_token_interface::state::AccountState::Initialized,
        ..Default::default()
    };
    let mut data = vec![0u8; spl_token_interface::state::Account::LEN];
    state.pack_into_slice(&mut data);
    Account {
        lamports: Rent::default().minimum_balance(data.len()),
        data,
        owner: anchor_spl::token::ID,
        executable: false,
        rent_epoch: 0,
    }
}

fn lookup_table(addresses: &[Pubkey], authority: Pubkey) -> Account {
    use solana_address_lookup_table_interface::state::{AddressLookupTable, LookupTableMeta};
    let table = AddressLookupTable {
        meta: LookupTableMeta {
            deactivation_slot: u64::MAX,
            last_extended_slot: 0,
            last_extended_slot_start_index: 0,
            authority: Some(authority),
            _padding: 0,
        },
        addresses: addresses.to_vec().into(),
    };
    let data = table.serialize_for_tests().expect("lookup table");
    Account {
        lamports: Rent::default().minimum_balance(data.len()),
        data,
        owner: solana_address_lookup_table_interface::program::ID,
        executable: false,
        rent_epoch: 0,
    }
}

/// Sends a legacy transaction paid by its one signer; fails with the chain's error.
async fn process(chain: &mut EmbeddedChain, tx: Transaction) -> Result<()> {
    chain
        .ctx
        .banks_client
        .process_transaction(tx)
        .await
        .map_err(|e| anyhow!("{e}"))
}

async fn process_v0(chain: &mut EmbeddedChain, tx: VersionedTransaction) -> Result<()> {
    chain
        .ctx
        .banks_client
        .process_transaction(tx)
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// Runs one interval of `meters` buildings' orders, settling `per_settlement` orders per
/// transaction; `progress` is called with a line now and then.
pub async fn run(
    meters: usize,
    per_settlement: usize,
    mut progress: impl FnMut(&str),
) -> Result<ScaleReport> {
    ensure!(meters >= 2, "at least one buyer and one seller");
    ensure!(
        (1..=24).contains(&per_settlement),
        "at most 24 orders per settlement transaction (its static accounts)"
    );
    let setup = Instant::now();
    let mut report = ScaleReport {
        meters,
        ..ScaleReport::default()
    };
    let owners: Vec<Keypair> = (0..meters).map(|_| Keypair::new()).collect();
    let quote_mint = Pubkey::new_unique();
    let grid_mint = token_ix::grid_mint();
    let mut pt = program_test();
    // The quote token's mint (no authority: nothing is minted here).
    let mint = spl_token_interface::state::Mint {
        supply: u64::MAX / 2,
        decimals: 6,
        is_initialized: true,
        ..Default::default()
    };
    let mut data = vec![0u8; spl_token_interface::state::Mint::LEN];
    mint.pack_into_slice(&mut data);
    pt.add_account(
        quote_mint,
        Account {
            lamports: Rent::default().minimum_balance(data.len()),
            data,
            owner: anchor_spl::token::ID,
            executable: false,
            rent_epoch: 0,
        },
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    for (i, owner) in owners.iter().enumerate() {
        let lfdi = lfdi(i);
        let (address, bump) =
            Pubkey::find_program_address(&[registry::seeds::METER, &lfdi], &registry::ID);
        let meter = Meter {
            lfdi,
            sfdi: sfdi_from_lfdi(&lfdi),
            owner: owner.pubkey(),
            building_kind: BuildingKind::Academic,
            capacity: capacity(),
            status: MeterStatus::Active,
            index: i as u16,
            registered_at: now - 86_400,
            status_changed_at: now - 86_400,
            capacity_changed_at: now - 86_400,
            bump,
        };
        let data = crate::anchor_account_data(&meter);
        pt.add_account(
            address,
            Account {
                lamports: Rent::default().minimum_balance(data.len()),
                data,
                owner: registry::ID,
                executable: false,
                rent_epoch: 0,
            },
        );
        pt.add_account(owner.pubkey(), system_account(SOL));
        let (side, quantity, price) = order_of(i);
        let (mint, amount) = match side {
            Side::Buy => (quote_mint, quantity * price / 1_000 + 1_000),
            Side::Sell => (grid_mint, quantity),
        };
        pt.add_account(
            token_ix::ata(&owner.pubkey(), &mint),
            token_account(&mint, &owner.pubkey(), amount),
        );
    }
    // The owners' balance addresses, 256 per lookup table (a balance is created by its
    // owner's first order; a keeper extends its tables as owners appear).
    let balances: Vec<Pubkey> = owners
        .iter()
        .map(|o| market_ix::balance_address(&o.pubkey()))
        .collect();
    let tables: Vec<AddressLookupTableAccount> = balances
        .chunks(TABLE_SIZE - 3)
        .map(|chunk| {
            let mut addresses = chunk.to_vec();
            addresses.extend([market_ix::market_address(), trading::ID, Pubkey::default()]);
            AddressLookupTableAccount {
                key: Pubkey::new_unique(),
                addresses,
            }
        })
        .collect();
    let mut chain = EmbeddedChain::start_with(pt).await;
    let payer = chain.ctx.payer.insecure_clone();
    // The tables hold the book's address too, once known; written after the start so that
    // they name the payer as their authority.
    progress(&format!(
        "setup: {meters} meters, owners and token accounts written into the bank"
    ));

    // The campus, the energy token (GRID) and the market, by their own instructions.
    let params = MarketParams {
        interval_s: 900,
        price_tick: 500,
        min_price: 500,
        ticks: 512,
        fee_bps: 50,
        min_quantity_wh: 100,
        gate_lead_s: 0,
        horizon: 4,
    };
    let clock = chain
        .ctx
        .banks_client
        .get_sysvar::<anchor_lang::prelude::Clock>()
        .await?;
    let start_time = clock.unix_timestamp - clock.unix_timestamp % 900 - 9_000;
    let blockhash = chain.ctx.banks_client.get_latest_blockhash().await?;
    let setup_ixs = [
        registry_ix::initialize_campus(payer.pubkey(), "Scale Campus"),
        token_ix::initialize(payer.pubkey()),
        market_ix::initialize_market(payer.pubkey(), quote_mint, params, start_time),
    ];
    for ix in setup_ixs {
        let tx =
            Transaction::new_signed_with_payer(&[ix], Some(&payer.pubkey()), &[&payer], blockhash);
        process(&mut chain, tx).await.context("set-up")?;
    }
    let k = (clock.unix_timestamp - start_time) as u64 / 900 + 1;
    let book = market_ix::book_address(k);
    for table in &tables {
        let mut addresses = table.addresses.clone();
        *addresses.last_mut().expect("table") = book;
        chain.ctx.set_account(
            &table.key,
            &solana_account::AccountSharedData::from(lookup_table(&addresses, payer.pubkey())),
        );
    }
    let tables: Vec<AddressLookupTableAccount> = tables
        .into_iter()
        .map(|t| {
            let mut addresses = t.addresses;
            *addresses.last_mut().expect("table") = book;
            AddressLookupTableAccount {
                key: t.key,
                addresses,
            }
        })
        .collect();
    // A slot after the tables were written, so that their addresses are usable.
    chain.set_time(clock.unix_timestamp).await?;
    report.setup_time = setup.elapsed();

    // Open the interval's book.
    let place = Instant::now();
    let blockhash = chain.ctx.banks_client.get_latest_blockhash().await?;
    let tx = Transaction::new_signed_with_payer(
        &[market_ix::open_interval(payer.pubkey(), k)],
        Some(&payer.pubkey()),
        &[&payer],
        blockhash,
    );
    process(&mut chain, tx).await.context("open_interval")?;

    // Every building places its order, in its own transaction paid and signed by its owner.
    let mut blockhash = blockhash;
    for (i, owner) in owners.iter().enumerate() {
        if i % 50 == 0 {
            blockhash = chain.ctx.banks_client.get_latest_blockhash().await?;
        }
        let (side, quantity, price) = order_of(i);
        let ix = market_ix::place_order(
            owner.pubkey(),
            &quote_mint,
            &lfdi(i),
            k,
            side,
            quantity,
            price,
        );
        let tx =
            Transaction::new_signed_with_payer(&[ix], Some(&owner.pubkey()), &[owner], blockhash);
        process(&mut chain, tx)
            .await
            .with_context(|| format!("order of building {i}"))?;
        match side {
            Side::Buy => report.buys += 1,
            Side::Sell => report.sells += 1,
        }
        if (i + 1) % 1_000 == 0 || i + 1 == meters {
            progress(&format!(
                "placed {} orders ({:.1} s)",
                i + 1,
                place.elapsed().as_secs_f64()
            ));
        }
    }
    report.place_transactions = meters;
    report.place_time = place.elapsed();

    // The gate closes: the open interval (no book) and then k clear, in order.
    let clear = Instant::now();
    chain.set_time(start_time + k as i64 * 900).await?;
    let blockhash = chain.ctx.banks_client.get_latest_blockhash().await?;
    for interval in [k - 1, k] {
        let tx = Transaction::new_signed_with_payer(
            &[market_ix::clear_interval(interval)],
            Some(&payer.pubkey()),
            &[&payer],
            blockhash,
        );
        process(&mut chain, tx)
            .await
            .with_context(|| format!("clear_interval {interval}"))?;
        report.clear_transactions += 1;
    }
    report.clear_time = clear.elapsed();
    let state: trading::IntervalBook = zero_copy_of(&mut chain, book).await?;
    report.price = state.price;
    report.volume_wh = state.volume_wh;
    progress(&format!(
        "cleared: {} Wh at {} per kWh ({:.3} s)",
        state.volume_wh,
        state.price,
        report.clear_time.as_secs_f64()
    ));

    // Settlement: `per_settlement` orders per transaction, their owners' balances from the
    // lookup table that holds them.
    let settle = Instant::now();
    let per_table = TABLE_SIZE - 3;
    for (t, table) in tables.iter().enumerate() {
        let first = t * per_table;
        let last = (first + per_table).min(meters);
        for chunk_start in (first..last).step_by(per_settlement) {
            let chunk_end = (chunk_start + per_settlement).min(last);
            let pairs: Vec<(Pubkey, Pubkey)> = (chunk_start..chunk_end)
                .map(|i| {
                    let (side, _, _) = order_of(i);
                    (
                        market_ix::order_address(k, &lfdi(i), side),
                        owners[i].pubkey(),
                    )
                })
                .collect();
            let ixs: Vec<Instruction> = vec![
                sdk::ix::compute_unit_limit(1_400_000),
                market_ix::settle_orders(k, &pairs),
            ];
            let blockhash = chain.ctx.banks_client.get_latest_blockhash().await?;
            let message = v0::Message::try_compile(
                &payer.pubkey(),
                &ixs,
                std::slice::from_ref(table),
                blockhash,
            )?;
            let tx = VersionedTransaction::try_new(VersionedMessage::V0(message), &[&payer])?;
            let size = bincode::serialized_size(&tx)? as usize;
            ensure!(
                size <= solana_packet::PACKET_DATA_SIZE,
                "a settlement of {} orders is {size} bytes",
                pairs.len()
            );
            report.largest_settlement_bytes = report.largest_settlement_bytes.max(size);
            process_v0(&mut chain, tx)
                .await
                .with_context(|| format!("settle orders {chunk_start}..{chunk_end}"))?;
            report.settle_transactions += 1;
        }
        if (t + 1) % 8 == 0 || t + 1 == tables.len() {
            progress(&format!(
                "settled {} orders ({:.1} s)",
                last,
                settle.elapsed().as_secs_f64()
            ));
        }
    }
    report.settle_time = settle.elapsed();

    // Close the book; the market keeps the rounding.
    let close = Instant::now();
    let state: trading::IntervalBook = zero_copy_of(&mut chain, book).await?;
    ensure!(
        state.open_orders == 0,
        "{} orders left unsettled",
        state.open_orders
    );
    let blockhash = chain.ctx.banks_client.get_latest_blockhash().await?;
    let tx = Transaction::new_signed_with_payer(
        &[market_ix::close_book(k, payer.pubkey())],
        Some(&payer.pubkey()),
        &[&payer],
        blockhash,
    );
    process(&mut chain, tx).await.context("close_book")?;
    report.close_time = close.elapsed();

    // The vaults hold exactly the balances, the fees and the dust.
    let market: trading::Market = zero_copy_of(&mut chain, market_ix::market_address()).await?;
    let (mut base, mut quote) = (u128::from(market.dust_wh), u128::from(market.fees));
    for address in &balances {
        let b: trading::Balance = zero_copy_of(&mut chain, *address).await?;
        base += u128::from(b.base);
        quote += u128::from(b.quote);
    }
    let vault_base = token_amount(&mut chain, market_ix::base_vault()).await?;
    let vault_quote = token_amount(&mut chain, market_ix::quote_vault()).await?;
    ensure!(
        u128::from(vault_base) == base && u128::from(vault_quote) == quote,
        "vaults {vault_base} Wh / {vault_quote} vs owed {base} Wh / {quote}"
    );
    progress("every order settled; the vaults hold exactly the balances, fees and dust");
    Ok(report)
}

async fn zero_copy_of<T: anchor_lang::ZeroCopy>(
    chain: &mut EmbeddedChain,
    address: Pubkey,
) -> Result<T> {
    let account = chain
        .ctx
        .banks_client
        .get_account(address)
        .await?
        .ok_or_else(|| anyhow!("{address} does not exist"))?;
    sdk::accounts::zero_copy::<T>(&account).ok_or_else(|| anyhow!("{address}: not the account"))
}

async fn token_amount(chain: &mut EmbeddedChain, address: Pubkey) -> Result<u64> {
    let account = chain
        .ctx
        .banks_client
        .get_account(address)
        .await?
        .ok_or_else(|| anyhow!("{address} does not exist"))?;
    Ok(spl_token_interface::state::Account::unpack(&account.data)?.amount)
}
