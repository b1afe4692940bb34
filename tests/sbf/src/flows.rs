//! The flows measured, program by program, with the issue's ceilings:
//! `submit_readings` at most 2,000 CU per reading at 25 readings, `mint_generation` at
//! most 10,000 CU per meter, `settle_orders` at most 15,000 CU per order, every other
//! instruction (clearing a full ladder included) under 200,000 CU.
use anchor_lang::prelude::Pubkey;
use oracle::attestation::Reading;
use oracle::{OracleError, ReadingLimits};
use registry::identity::{sfdi_from_lfdi, Lfdi};
use registry::{BuildingKind, MeterCapacity, MeterStatus};
use sdk::ix::{self, compute_unit_limit};
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::bench::Bench;

pub const READING_CEILING: u64 = 2_000;
pub const INSTRUCTION_CEILING: u64 = 200_000;

/// The campus built up by the flows, program after program.
pub struct Campus {
    pub lfdis: Vec<Lfdi>,
    pub attestors: Vec<Keypair>,
    pub cluster: [u8; 32],
    pub sequence: u64,
}

fn lfdi(i: u8) -> Lfdi {
    let mut l = [0u8; 20];
    for (k, b) in l.iter_mut().enumerate() {
        *b = i.wrapping_mul(53).wrapping_add(k as u8).wrapping_add(7);
    }
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

pub const MINT_PER_METER_CEILING: u64 = 10_000;
/// Settling an order, amortised over a batch (issue 26).
pub const SETTLE_PER_ORDER_CEILING: u64 = 15_000;

pub fn run_all(b: &mut Bench) -> Result<(), String> {
    let mut campus = registry_flows(b)?;
    oracle_flows(b, &mut campus)?;
    energy_token_flows(b, &mut campus)?;
    trading_flows(b, &campus)?;
    governance_flows(b, &campus)?;
    token_program_reference(b)?;
    Ok(())
}

fn registry_flows(b: &mut Bench) -> Result<Campus, String> {
    let payer = b.payer.pubkey();
    b.measure(
        "registry: initialize_campus",
        &[ix::registry::initialize_campus(payer, "SBF Campus")],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    let lfdis: Vec<Lfdi> = (0..25).map(lfdi).collect();
    for (i, l) in lfdis.iter().enumerate() {
        let ix = ix::registry::register_meter_with(
            payer,
            payer,
            *l,
            sfdi_from_lfdi(l),
            BuildingKind::Academic,
            capacity(),
        );
        if i == 0 {
            b.measure(
                "registry: register_meter",
                &[ix],
                &[],
                &[],
                1,
                Some(INSTRUCTION_CEILING),
            )?;
        } else {
            b.run("register_meter", &[ix], &[], &[])?;
        }
    }
    Ok(Campus {
        lfdis,
        attestors: (0..3).map(|_| Keypair::new()).collect(),
        cluster: [0x5C; 32],
        sequence: 0,
    })
}

fn limits() -> ReadingLimits {
    ReadingLimits {
        max_future_skew_s: 60,
        min_interval_s: 60,
        max_age_s: 86_400,
        tolerance_bps: 1_000,
    }
}

/// A v0 batch transaction: compute-unit limit, Ed25519 verification, `submit_readings`,
/// with every account in a lookup table (as the keeper sends it).
fn batch(
    b: &mut Bench,
    c: &mut Campus,
    meters: &[usize],
    quorum: usize,
    (import, export): (u64, u64),
) -> (
    Vec<solana_instruction::Instruction>,
    Vec<solana_message::AddressLookupTableAccount>,
) {
    c.sequence += 1;
    let now = b.now() as u32;
    let lfdis: Vec<Lfdi> = meters.iter().map(|&i| c.lfdis[i]).collect();
    let readings: Vec<Reading> = meters
        .iter()
        .map(|_| Reading {
            timestamp: now,
            import_wh: import,
            export_wh: export,
            quality: 0,
        })
        .collect();
    let signers: Vec<&Keypair> = c.attestors.iter().take(quorum).collect();
    let [ed, mut submit] = ix::oracle::attested_batch(
        b.payer.pubkey(),
        &ix::oracle::domain(&c.cluster),
        c.sequence,
        &readings,
        &lfdis,
        &signers,
    );
    // The Ed25519 instruction is second, after the compute-unit limit.
    submit.data = anchor_lang::InstructionData::data(&oracle::instruction::SubmitReadings {
        ed25519_instruction_index: 1,
    });
    let mut table = vec![
        ix::oracle::config_address(),
        solana_sdk_ids::sysvar::instructions::ID,
    ];
    for l in &lfdis {
        table.push(ix::registry::meter_address(l));
        table.push(ix::oracle::meter_state_address(l));
    }
    let alt = b.lookup_table(&table);
    (vec![compute_unit_limit(1_400_000), ed, submit], vec![alt])
}

fn oracle_flows(b: &mut Bench, c: &mut Campus) -> Result<(), String> {
    let payer = b.payer.pubkey();
    let attestors: Vec<Pubkey> = c.attestors.iter().map(|k| k.pubkey()).collect();
    b.measure(
        "oracle: initialize_oracle",
        &[ix::oracle::initialize_oracle(
            payer,
            attestors.clone(),
            1,
            limits(),
            c.cluster,
        )],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    for (i, l) in c.lfdis.clone().iter().enumerate() {
        let ix = ix::oracle::init_meter_state(payer, l);
        if i == 0 {
            b.measure(
                "oracle: init_meter_state",
                &[ix],
                &[],
                &[],
                1,
                Some(INSTRUCTION_CEILING),
            )?;
        } else {
            b.run("init_meter_state", &[ix], &[], &[])?;
        }
    }
    let all: Vec<usize> = (0..25).collect();
    let (ixs, alt) = batch(b, c, &all, 1, (1_000_000, 2_000_000));
    b.measure(
        "oracle: submit_readings, 25 baselines, quorum 1",
        &ixs,
        &[],
        &alt,
        25,
        Some(READING_CEILING),
    )?;
    for (n, export) in [(25usize, 2_010_000u64), (10, 2_020_000), (1, 2_030_000)] {
        b.advance(900);
        let (ixs, alt) = batch(b, c, &all[..n], 1, (1_005_000 + export - 2_000_000, export));
        b.measure(
            &format!("oracle: submit_readings, {n} readings, quorum 1"),
            &ixs,
            &[],
            &alt,
            n as u64,
            (n == 25).then_some(READING_CEILING),
        )?;
    }
    b.run(
        "set_attestors quorum 2",
        &[ix::oracle::set_attestors(payer, attestors, 2)],
        &[],
        &[],
    )?;
    b.advance(900);
    let (ixs, alt) = batch(b, c, &all, 2, (1_040_000, 2_040_000));
    b.measure(
        "oracle: submit_readings, 25 readings, quorum 2",
        &ixs,
        &[],
        &alt,
        25,
        Some(READING_CEILING),
    )?;
    // The read_meter_state view returns what the oracle verified for a meter.
    let data = b.view(
        "read_meter_state",
        &[ix::oracle::read_meter_state(&c.lfdis[0])],
    )?;
    let view =
        <oracle::VerifiedEnergy as anchor_lang::AnchorDeserialize>::deserialize(&mut &data[..])
            .map_err(|e| format!("read_meter_state: {e}"))?;
    let state_account = b
        .svm
        .get_account(&ix::oracle::meter_state_address(&c.lfdis[0]))
        .ok_or("no meter state")?;
    let state: oracle::MeterState = bytemuck::pod_read_unaligned(
        &state_account.data[8..8 + std::mem::size_of::<oracle::MeterState>()],
    );
    if (view.lfdi, view.verified_export_wh, view.verified_import_wh) != (c.lfdis[0], 40_000, 40_000)
        || (
            view.verified_renewable_wh,
            view.stored_bound_wh,
            view.stored_grid_wh,
            view.last_timestamp,
            view.reading_count,
        ) != (
            state.verified_renewable_wh,
            state.stored_bound_wh,
            state.stored_grid_wh,
            state.last_timestamp,
            state.reading_count,
        )
    {
        return Err(format!("read_meter_state returned {view:?}"));
    }
    // A suspended meter: its reading is skipped (event), the other 24 apply.
    b.run(
        "suspend meter 3",
        &[ix::registry::set_meter_status(
            payer,
            &c.lfdis[3],
            MeterStatus::Suspended,
        )],
        &[],
        &[],
    )?;
    b.advance(900);
    let (ixs, alt) = batch(b, c, &all, 2, (1_050_000, 2_050_000));
    b.measure(
        "oracle: submit_readings, 25 readings, 1 skipped, quorum 2",
        &ixs,
        &[],
        &alt,
        25,
        Some(READING_CEILING),
    )?;
    // A replay: the last batch again (a new transaction, same sequence).
    c.sequence -= 1;
    let (ixs, alt) = batch(b, c, &all, 2, (1_050_000, 2_050_000));
    b.expect_error(
        "oracle: replayed batch",
        &ixs,
        &[],
        &alt,
        OracleError::BatchReplayed.into(),
    )?;
    // Spoofed offsets: the verified instruction shows other bytes than the signed ones.
    b.advance(900);
    let (mut ixs, alt) = batch(b, c, &all[..1], 2, (1_060_000, 2_060_000));
    let mut copy = ixs[1].clone();
    for field in [4usize, 8, 14, 18, 22, 28] {
        copy.data[field..field + 2].copy_from_slice(&3u16.to_le_bytes());
    }
    ixs.insert(1, copy);
    let genuine = ixs.remove(2);
    ixs.push(genuine);
    b.expect_error(
        "oracle: spoofed Ed25519 offsets",
        &ixs,
        &[],
        &alt,
        OracleError::Ed25519OffsetsSpoofed.into(),
    )?;
    c.sequence -= 1;
    // Out of order, the window's worst case: batch s + 1 is held back while s + 2 ..=
    // s + BATCH_WINDOW land (one reading each); then s + 1, with 25 readings, closes the gap
    // and moves the window's start over all 128.
    b.advance(900);
    let held = c.sequence;
    c.sequence += 1;
    for _ in 1..oracle::BATCH_WINDOW {
        let (ixs, alt) = batch(b, c, &all[..1], 2, (1_070_000, 2_070_000));
        b.run("early batch", &ixs, &[], &alt)?;
    }
    let last = c.sequence;
    c.sequence = held;
    let (ixs, alt) = batch(b, c, &all, 2, (1_070_000, 2_070_000));
    b.measure(
        "oracle: submit_readings, 25 readings closing a gap of 127 early batches",
        &ixs,
        &[],
        &alt,
        25,
        Some(READING_CEILING),
    )?;
    c.sequence = last;
    Ok(())
}

fn energy_token_flows(b: &mut Bench, c: &mut Campus) -> Result<(), String> {
    use sdk::ix::energy_token as token;
    let payer = b.payer.pubkey();
    b.measure(
        "energy-token: initialize_energy_token (GRID and REC mints)",
        &[token::initialize(payer)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    for (i, l) in c.lfdis.clone().iter().enumerate() {
        let ix = token::init_ledger(payer, l);
        if i == 0 {
            b.measure(
                "energy-token: init_ledger",
                &[ix],
                &[],
                &[],
                1,
                Some(INSTRUCTION_CEILING),
            )?;
        } else {
            b.run("init_ledger", &[ix], &[], &[])?;
        }
    }
    // Every meter is owned by the payer here: one GRID and one REC account.
    b.run(
        "owner token accounts",
        &[
            token::create_ata(&payer, &payer, &token::grid_mint()),
            token::create_ata(&payer, &payer, &token::rec_mint()),
        ],
        &[],
        &[],
    )?;
    let lfdis = c.lfdis.clone();
    let meters = |range: std::ops::Range<usize>| -> Vec<(Lfdi, Pubkey)> {
        range.map(|i| (lfdis[i], payer)).collect()
    };
    b.measure(
        "energy-token: mint_generation, 1 meter",
        &[
            compute_unit_limit(200_000),
            token::mint_generation(&meters(0..1)),
        ],
        &[],
        &[],
        1,
        Some(MINT_PER_METER_CEILING),
    )?;
    // 14 meters (the most one transaction's 64 accounts allow), meter 3 suspended.
    let ix = token::mint_generation(&meters(1..15));
    let table: Vec<Pubkey> = ix
        .accounts
        .iter()
        .map(|m| m.pubkey)
        .filter(|k| *k != anchor_spl::token::ID)
        .collect();
    let alt = b.lookup_table(&table);
    b.measure(
        "energy-token: mint_generation, 14 meters (1 suspended, skipped)",
        &[compute_unit_limit(400_000), ix],
        &[],
        &[alt],
        14,
        Some(MINT_PER_METER_CEILING),
    )?;
    // Meter 0 becomes a 20 MW field and verifies 2.5 MWh: RECs.
    let field = MeterCapacity {
        generation_w: 20_000_000,
        storage_wh: 0,
        max_import_w: 1_000_000,
        max_discharge_w: 0,
    };
    b.run(
        "update capacity",
        &[ix::registry::update_meter_capacity(
            payer,
            &c.lfdis[0],
            field,
        )],
        &[],
        &[],
    )?;
    // The change starts a new period: a baseline first, then 2.5 MWh in 15 minutes.
    b.advance(60);
    let (ixs, alt) = batch(b, c, &[0], 2, (1_100_000, 2_100_000));
    b.run("oracle: baseline under the new capacity", &ixs, &[], &alt)?;
    b.advance(900);
    let (ixs, alt) = batch(b, c, &[0], 2, (1_100_000, 4_600_000));
    b.run("oracle: 2.5 MWh for meter 0", &ixs, &[], &alt)?;
    b.measure(
        "energy-token: issue_rec, 1 meter (2 RECs)",
        &[token::issue_rec(&meters(0..1))],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.measure(
        "energy-token: retire_rec",
        &[token::retire_rec(
            payer,
            0,
            1,
            "Physics Department",
            "Scope 2 2026",
        )],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    let data = b.view("read_retirement", &[token::read_retirement(&payer, 0)])?;
    let record = <energy_token::RetirementReport as anchor_lang::AnchorDeserialize>::deserialize(
        &mut &data[..],
    )
    .map_err(|e| format!("read_retirement: {e}"))?;
    if (record.amount, record.beneficiary.as_str()) != (1, "Physics Department") {
        return Err(format!("read_retirement returned {record:?}"));
    }
    b.measure(
        "energy-token: mint_generation, 1 meter, 2.5 MWh",
        &[token::mint_generation(&meters(0..1))],
        &[],
        &[],
        1,
        Some(MINT_PER_METER_CEILING),
    )?;
    b.measure(
        "energy-token: redeem_for_consumption",
        &[token::redeem_for_consumption(&c.lfdis[0], payer, 50_000)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.expect_error(
        "energy-token: redeem beyond verified import",
        &[token::redeem_for_consumption(&c.lfdis[0], payer, 1_000_000)],
        &[],
        &[],
        energy_token::TokenError::RedemptionExceedsImport.into(),
    )?;
    Ok(())
}

/// What minting costs with each token program, measured the same way: why GRID is a
/// classic SPL Token mint (README "Energy token").
fn token_program_reference(b: &mut Bench) -> Result<(), String> {
    use anchor_spl::token::spl_token;
    use anchor_spl::token_2022::spl_token_2022;
    let payer = b.payer.pubkey();
    for (name, program) in [
        ("SPL Token", spl_token::ID),
        ("Token-2022", spl_token_2022::ID),
    ] {
        let mint = Keypair::new();
        let rent = b.svm.minimum_balance_for_rent_exemption(82);
        let create = anchor_lang::solana_program::system_instruction::create_account(
            &payer,
            &mint.pubkey(),
            rent,
            82,
            &program,
        );
        let init = spl_token_2022::instruction::initialize_mint2(
            &program,
            &mint.pubkey(),
            &payer,
            None,
            3,
        )
        .map_err(|e| e.to_string())?;
        let ata = sdk::ix::energy_token::ata_for(&payer, &mint.pubkey(), &program);
        let create_ata =
            sdk::ix::energy_token::create_ata_for(&payer, &payer, &mint.pubkey(), &program);
        b.run(
            &format!("{name} mint"),
            &[create, init, create_ata],
            &[&mint],
            &[],
        )?;
        let mint_to = spl_token_2022::instruction::mint_to(
            &program,
            &mint.pubkey(),
            &ata,
            &payer,
            &[],
            1_000,
        )
        .map_err(|e| e.to_string())?;
        b.measure(
            &format!("reference: {name} mint_to (whole transaction)"),
            &[mint_to],
            &[],
            &[],
            1,
            None,
        )?;
    }
    Ok(())
}

/// The market with eight traders (owners of meters 1 to 8, transferred from the payer),
/// books of 10, 50 and the maximum 128 orders, and the payouts.
/// The market: an interval's book opened, 24 buildings' orders placed (first orders, a
/// replacement, a cancellation), the interval cleared (at a cost set by the ladder, not the
/// orders: also measured with every one of the 512 steps holding orders), the 24 orders
/// settled in one transaction, the book closed, a withdrawal and a sweep of 12 balances.
fn trading_flows(b: &mut Bench, c: &Campus) -> Result<(), String> {
    use anchor_spl::token::spl_token;
    use sdk::ix::{energy_token as token, trading as market};
    use trading::{MarketParams, Side};
    let payer = b.payer.pubkey();
    // The quote token.
    let quote = Keypair::new();
    let rent = b.svm.minimum_balance_for_rent_exemption(82);
    let create = anchor_lang::solana_program::system_instruction::create_account(
        &payer,
        &quote.pubkey(),
        rent,
        82,
        &spl_token::ID,
    );
    let init =
        spl_token::instruction::initialize_mint2(&spl_token::ID, &quote.pubkey(), &payer, None, 6)
            .map_err(|e| e.to_string())?;
    b.run("quote mint", &[create, init], &[&quote], &[])?;
    let quote_mint = quote.pubkey();
    let params = MarketParams {
        interval_s: 900,
        price_tick: 1_000,
        min_price: 1_000,
        ticks: 512,
        fee_bps: 50,
        min_quantity_wh: 1,
        gate_lead_s: 0,
        horizon: 4,
    };
    let start = b.now() - b.now() % 900 - 9_000;
    b.measure(
        "trading: initialize_market (market and two vaults)",
        &[market::initialize_market(payer, quote_mint, params, start)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // 24 buildings (meters 1 to 24), each with its own owner.
    const TRADERS: usize = 24;
    let traders: Vec<Keypair> = (0..TRADERS).map(|_| Keypair::new()).collect();
    for (t, trader) in traders.iter().enumerate() {
        let lfdi = c.lfdis[t + 1];
        b.fund(&trader.pubkey());
        // The meters the earlier flows suspended trade again (the others are Active
        // already: their reactivation is refused as no change).
        let _ = b.run(
            "reactivate",
            &[ix::registry::set_meter_status(
                payer,
                &lfdi,
                MeterStatus::Active,
            )],
            &[],
            &[],
        );
        let transfer_grid = spl_token::instruction::transfer(
            &spl_token::ID,
            &token::ata(&payer, &token::grid_mint()),
            &token::ata(&trader.pubkey(), &token::grid_mint()),
            &payer,
            &[],
            20_000,
        )
        .map_err(|e| e.to_string())?;
        let fund_quote = spl_token::instruction::mint_to(
            &spl_token::ID,
            &quote_mint,
            &token::ata(&trader.pubkey(), &quote_mint),
            &payer,
            &[],
            1_000_000_000_000,
        )
        .map_err(|e| e.to_string())?;
        b.run(
            "trader accounts",
            &[
                ix::registry::transfer_meter_ownership(&lfdi, payer, trader.pubkey()),
                token::create_ata(&payer, &trader.pubkey(), &token::grid_mint()),
                token::create_ata(&payer, &trader.pubkey(), &quote_mint),
                transfer_grid,
                fund_quote,
            ],
            &[trader],
            &[],
        )?;
    }
    let k = (b.now() - start) as u64 / 900 + 1;
    b.measure(
        "trading: open_interval (a 512-step ladder)",
        &[market::open_interval(payer, k)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // Even traders buy, odd ones sell, on overlapping price ladders (some orders trade,
    // some are rationed at the price, some do not trade).
    let order = |t: usize, interval: u64, quantity: u64| {
        let buy = t % 2 == 0;
        let step = (t / 2) as u64;
        let (side, price) = if buy {
            (Side::Buy, 80_000 - 3_000 * step)
        } else {
            (Side::Sell, 45_000 + 3_000 * step)
        };
        (
            side,
            market::place_order(
                traders[t].pubkey(),
                &quote_mint,
                &c.lfdis[t + 1],
                interval,
                side,
                quantity,
                price,
            ),
        )
    };
    for t in 0..TRADERS {
        let (side, ix) = order(t, k, 500 + 37 * (t as u64 % 11));
        if t < 2 {
            let label = match side {
                Side::Buy => "trading: place_order (buy; the trader's first: creates its balance)",
                Side::Sell => "trading: place_order (sell; the trader's first)",
            };
            b.measure(
                label,
                &[ix],
                &[&traders[t]],
                &[],
                1,
                Some(INSTRUCTION_CEILING),
            )?;
        } else {
            b.run("place_order", &[ix], &[&traders[t]], &[])?;
        }
    }
    let (_, replace) = order(0, k, 900);
    b.measure(
        "trading: place_order (replacing the building's order)",
        &[replace],
        &[&traders[0]],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // Another interval: an order from a trader who has a balance already, then cancelled.
    b.run(
        "open_interval",
        &[market::open_interval(payer, k + 1)],
        &[],
        &[],
    )?;
    let (_, ix) = order(0, k + 1, 500);
    b.measure(
        "trading: place_order (buy; the trader has a balance)",
        &[ix],
        &[&traders[0]],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.measure(
        "trading: cancel_order",
        &[market::cancel_order(
            traders[0].pubkey(),
            &quote_mint,
            &c.lfdis[1],
            k + 1,
            Side::Buy,
        )],
        &[&traders[0]],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // The building's EMS trades through its delegate: authorised with a rent float, an
    // allowance approved, then a delegated order placed (its rent from the float) and
    // cancelled.
    let delegate = Keypair::new();
    b.measure(
        "trading: authorize_delegate (with a 0.05 SOL rent float)",
        &[market::authorize_delegate(
            traders[0].pubkey(),
            &c.lfdis[1],
            delegate.pubkey(),
            50_000_000,
        )],
        &[&traders[0]],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.run(
        "approve the allowance",
        &[market::approve_order_allowance(
            traders[0].pubkey(),
            &quote_mint,
            1_000_000_000,
        )],
        &[&traders[0]],
        &[],
    )?;
    b.measure(
        "trading: place_delegated_order (buy, by the building's delegate)",
        &[market::place_delegated_order(
            delegate.pubkey(),
            traders[0].pubkey(),
            &quote_mint,
            &c.lfdis[1],
            k + 1,
            Side::Buy,
            500,
            80_000,
        )],
        &[&delegate],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.measure(
        "trading: cancel_delegated_order",
        &[market::cancel_delegated_order(
            delegate.pubkey(),
            traders[0].pubkey(),
            &quote_mint,
            &c.lfdis[1],
            k + 1,
            Side::Buy,
        )],
        &[&delegate],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.measure(
        "trading: revoke_delegate",
        &[market::revoke_delegate(
            traders[0].pubkey(),
            &c.lfdis[1],
            traders[0].pubkey(),
        )],
        &[&traders[0]],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // A building changes hands with an order standing: the new owner evicts it (its escrow
    // is credited to the previous owner's balance); then the building goes back.
    let (_, ix) = order(0, k + 1, 500);
    b.run("place_order", &[ix], &[&traders[0]], &[])?;
    let lfdi = c.lfdis[1];
    let (from, to) = (&traders[0], &traders[1]);
    b.run(
        "transfer meter",
        &[ix::registry::transfer_meter_ownership(
            &lfdi,
            from.pubkey(),
            to.pubkey(),
        )],
        &[from, to],
        &[],
    )?;
    b.measure(
        "trading: evict_order (the new owner evicts the previous owner's order)",
        &[market::evict_order(
            to.pubkey(),
            &from.pubkey(),
            &lfdi,
            k + 1,
            Side::Buy,
        )],
        &[to],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.run(
        "transfer meter back",
        &[ix::registry::transfer_meter_ownership(
            &lfdi,
            to.pubkey(),
            from.pubkey(),
        )],
        &[to, from],
        &[],
    )?;
    // Interval k + 2's book with every ladder step holding buys and sells: clearing's
    // worst case (written into the account: no 1,024 buildings here).
    b.run(
        "open_interval",
        &[market::open_interval(payer, k + 2)],
        &[],
        &[],
    )?;
    fill_ladder(b, market::book_address(k + 2))?;

    // The gate closes; the open interval (no book) and then k clear.
    b.advance(900 - (b.now() - start) % 900);
    b.measure(
        "trading: clear_interval (no book)",
        &[market::clear_interval(k - 1)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    b.measure(
        &format!("trading: clear_interval, {TRADERS} orders"),
        &[market::clear_interval(k)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // Every order settled in one transaction (v0: the balances in a lookup table, the
    // orders' addresses, new every interval, in the transaction).
    let pairs: Vec<(Pubkey, Pubkey)> = (0..TRADERS)
        .map(|t| {
            let side = if t % 2 == 0 { Side::Buy } else { Side::Sell };
            (
                market::order_address(k, &c.lfdis[t + 1], side),
                traders[t].pubkey(),
            )
        })
        .collect();
    let mut table: Vec<Pubkey> = traders
        .iter()
        .map(|t| market::balance_address(&t.pubkey()))
        .collect();
    table.extend([
        market::market_address(),
        market::book_address(k),
        trading::ID,
    ]);
    let alt = b.lookup_table(&table);
    b.measure(
        &format!("trading: settle_orders, {TRADERS} orders"),
        &[
            compute_unit_limit(1_400_000),
            market::settle_orders(k, &pairs),
        ],
        &[],
        std::slice::from_ref(&alt),
        TRADERS as u64,
        Some(SETTLE_PER_ORDER_CEILING),
    )?;
    b.measure(
        "trading: close_book",
        &[market::close_book(k, payer)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // The worst-case book: clear k + 1 (its only order was cancelled), then k + 2.
    b.advance(1_800);
    b.run("clear_interval", &[market::clear_interval(k + 1)], &[], &[])?;
    b.measure(
        "trading: clear_interval, all 512 steps with orders",
        &[compute_unit_limit(1_400_000), market::clear_interval(k + 2)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // Trader 0 withdraws; a sweep pays 12 others.
    b.measure(
        "trading: withdraw (GRID and quote)",
        &[market::withdraw(traders[0].pubkey(), &quote_mint, 1, 1)],
        &[&traders[0]],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    let owners: Vec<Pubkey> = traders[1..13].iter().map(|t| t.pubkey()).collect();
    let sweep = market::sweep(&quote_mint, &owners);
    let table: Vec<Pubkey> = sweep
        .accounts
        .iter()
        .map(|a| a.pubkey)
        .filter(|k| *k != spl_token::ID)
        .collect();
    let alt = b.lookup_table(&table);
    b.measure(
        "trading: sweep, 12 balances",
        &[compute_unit_limit(400_000), sweep],
        &[],
        std::slice::from_ref(&alt),
        12,
        Some(INSTRUCTION_CEILING),
    )?;
    Ok(())
}

/// Writes buys and sells of 1 kWh at every step of the book at `address` (worst case for
/// clearing: the scan finds an order at each step).
fn fill_ladder(b: &mut Bench, address: Pubkey) -> Result<(), String> {
    let mut account = b.svm.get_account(&address).ok_or("no book")?;
    let size = std::mem::size_of::<trading::IntervalBook>();
    let mut book: trading::IntervalBook = bytemuck::pod_read_unaligned(&account.data[8..8 + size]);
    let ticks = usize::from(book.ticks);
    // Demand falls and supply rises along the ladder: they cross mid-way.
    for t in 0..ticks {
        book.demand[t] = 1_000;
        book.supply[t] = 1_000;
    }
    account.data[8..8 + size].copy_from_slice(bytemuck::bytes_of(&book));
    b.svm
        .set_account(address, account)
        .map_err(|e| format!("{e:?}"))
}

/// The council: a hand-over of the registry, a meter suspended by proposal, a guardian
/// pause, and a proposal that tries to use another program's authority (refused by the
/// runtime: the signature is scoped to the proposal's own program).
fn governance_flows(b: &mut Bench, c: &Campus) -> Result<(), String> {
    use governance::CouncilConfig;
    use sdk::ix::governance as gov;
    let payer = b.payer.pubkey();
    let members: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
    for m in &members {
        b.fund(&m.pubkey());
    }
    let guardian = Keypair::new();
    b.fund(&guardian.pubkey());
    let config = CouncilConfig {
        members: members.iter().map(|m| m.pubkey()).collect(),
        guardians: vec![guardian.pubkey()],
        threshold: 2,
        timelock_seconds: 60,
        max_guardian_pause_s: 72 * 3600,
        guardian_cooldown_s: 7 * 86_400,
    };
    b.measure(
        "governance: initialize_council",
        &[gov::initialize_council(payer, config)],
        &[],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    let registry_authority = gov::authority_for(registry::ID);
    b.run(
        "propose_authority",
        &[ix::registry::propose_authority(payer, registry_authority)],
        &[],
        &[],
    )?;
    let mut index = 0u64;
    let mut run_proposal = |b: &mut Bench,
                            label: &str,
                            target: &solana_instruction::Instruction,
                            measure: bool|
     -> Result<(), String> {
        let propose = gov::propose(members[0].pubkey(), index, target);
        if measure {
            b.measure(
                "governance: propose",
                &[propose],
                &[&members[0]],
                &[],
                1,
                Some(INSTRUCTION_CEILING),
            )?;
        } else {
            b.run("propose", &[propose], &[&members[0]], &[])?;
        }
        for (k, m) in members.iter().take(2).enumerate() {
            let approve = gov::approve(m.pubkey(), index);
            if measure && k == 1 {
                b.measure(
                    "governance: approve (reaches the threshold)",
                    &[approve],
                    &[m],
                    &[],
                    1,
                    Some(INSTRUCTION_CEILING),
                )?;
            } else {
                b.run("approve", &[approve], &[m], &[])?;
            }
        }
        b.advance(60);
        let execute = gov::execute(payer, index, target);
        if measure {
            b.measure(label, &[execute], &[], &[], 1, Some(INSTRUCTION_CEILING))?;
        } else {
            b.run(label, &[execute], &[], &[])?;
        }
        index += 1;
        Ok(())
    };
    run_proposal(
        b,
        "accept",
        &ix::registry::accept_authority(registry_authority),
        false,
    )?;
    let suspend =
        ix::registry::set_meter_status(registry_authority, &c.lfdis[20], MeterStatus::Suspended);
    run_proposal(
        b,
        "governance: execute (suspend a meter by CPI)",
        &suspend,
        true,
    )?;
    b.measure(
        "governance: guardian_pause (registry)",
        &[gov::guardian_pause(
            guardian.pubkey(),
            registry::ID,
            ix::registry::campus_address(),
        )],
        &[&guardian],
        &[],
        1,
        Some(INSTRUCTION_CEILING),
    )?;
    // A proposal calling the System program cannot spend the registry's authority.
    b.fund(&registry_authority);
    let steal = anchor_lang::solana_program::system_instruction::transfer(
        &registry_authority,
        &payer,
        1_000_000,
    );
    let mut execute = gov::execute(payer, index, &steal);
    for meta in execute
        .accounts
        .iter_mut()
        .filter(|m| m.pubkey == registry_authority)
    {
        meta.is_signer = false;
    }
    b.run(
        "propose steal",
        &[gov::propose(members[0].pubkey(), index, &steal)],
        &[&members[0]],
        &[],
    )?;
    for m in members.iter().take(2) {
        b.run(
            "approve steal",
            &[gov::approve(m.pubkey(), index)],
            &[m],
            &[],
        )?;
    }
    b.advance(60);
    b.expect_instruction_error(
        "governance: execute using another program's authority",
        &[execute],
        "PrivilegeEscalation",
    )?;
    Ok(())
}
