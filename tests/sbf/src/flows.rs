//! The flows measured, program by program, with the issue's ceilings:
//! `submit_readings` at most 2,000 CU per reading at 25 readings, `mint_generation` at
//! most 10,000 CU per meter, `clear_interval` at the maximum order count under 400,000 CU,
//! every other instruction under 200,000 CU.
use anchor_lang::prelude::Pubkey;
use migrations::ix::{self, compute_unit_limit};
use oracle::attestation::Reading;
use oracle::{OracleError, ReadingLimits};
use registry::identity::{sfdi_from_lfdi, Lfdi};
use registry::{BuildingKind, MeterCapacity, MeterStatus};
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

pub fn run_all(b: &mut Bench) -> Result<(), String> {
    let mut campus = registry_flows(b)?;
    oracle_flows(b, &mut campus)?;
    energy_token_flows(b, &mut campus)?;
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
    Ok(())
}

fn energy_token_flows(b: &mut Bench, c: &mut Campus) -> Result<(), String> {
    use migrations::ix::energy_token as token;
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
        let ata = migrations::ix::energy_token::ata_for(&payer, &mint.pubkey(), &program);
        let create_ata =
            migrations::ix::energy_token::create_ata_for(&payer, &payer, &mint.pubkey(), &program);
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
