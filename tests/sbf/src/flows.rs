//! The flows measured, program by program, with the ceilings:
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

pub fn run_all(b: &mut Bench) -> Result<(), String> {
    let mut campus = registry_flows(b)?;
    oracle_flows(b, &mut campus)?;
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
