//! The oracle program under random reading sequences: random cadence, gaps, register jumps
//! (forward and backward), timestamps ahead of and behind the clock, suspensions and
//! reactivations through the registry, and batches landing out of order (held back by the
//! keeper and sent later, within the oracle's window) or replayed. Whatever the sequence,
//! the program never halts (every batch applies, exactly once: a replay is refused and
//! changes nothing) and the export it verifies never exceeds generation plus battery
//! discharge power over the time the meter was active, nor generation over that time plus
//! what the battery could hold plus what was imported (the energy balance).
use gridtokenx_tests::fixtures;
use gridtokenx_tests::oracle_ix::{self, meter_state_address};
use gridtokenx_tests::registry_ix::{self, default_capacity, test_lfdi};
use gridtokenx_tests::TestEnv;
use oracle::attestation::Reading;
use oracle::MeterState;
use proptest::prelude::*;
use registry::MeterStatus;
use solana_keypair::Keypair;
use solana_signer::Signer;

#[derive(Clone, Debug)]
enum Step {
    Reading {
        wait_s: u32,
        offset_s: i32,
        import_inc: i64,
        export_inc: i64,
        /// Held back: sent after a later batch (at a later step that releases, or at the
        /// end, newest first).
        hold: bool,
        /// After sending, replays an earlier batch.
        replay: bool,
    },
    Suspend {
        wait_s: u32,
    },
    Reactivate {
        wait_s: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (
            (0u32..3_000, -120i32..90, -500i64..120_000, -500i64..120_000),
            (0u8..4, 0u8..6),
        )
            .prop_map(|((wait_s, offset_s, import_inc, export_inc), (hold, replay))| {
                Step::Reading {
                    wait_s,
                    offset_s,
                    import_inc,
                    export_inc,
                    hold: hold == 0,
                    replay: replay == 0,
                }
            }),
        1 => (1u32..10_000).prop_map(|wait_s| Step::Suspend { wait_s }),
        1 => (1u32..10_000).prop_map(|wait_s| Step::Reactivate { wait_s }),
    ]
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    let lfdi = test_lfdi(1);
    fixtures::meter(&mut env, lfdi).await;
    let attestor = Keypair::new();
    let payer = env.payer();
    env.send(
        &[oracle_ix::initialize_oracle(
            payer,
            vec![attestor.pubkey()],
            1,
        )],
        &[],
    )
    .await
    .unwrap();
    env.send(&[oracle_ix::init_meter_state(payer, &lfdi)], &[])
        .await
        .unwrap();

    let mut active = true;
    let (mut import, mut export): (i64, i64) = (1_000_000, 2_000_000);
    // Time covered by accepted deltas: the span over which anything was verified.
    let mut span_s = 0u64;
    let mut sequence = 0u64;
    // Active periods begun: each starts with a battery assumed full.
    let mut baselines = 0u64;
    // Batches held back, and those sent (for replays).
    let mut held: Vec<(u64, Vec<solana_instruction::Instruction>)> = Vec::new();
    let mut sent: Vec<(u64, Vec<solana_instruction::Instruction>)> = Vec::new();
    for step in steps {
        match step {
            Step::Suspend { wait_s } | Step::Reactivate { wait_s } => {
                env.advance_clock(i64::from(wait_s)).await;
                let to = if matches!(step, Step::Suspend { .. }) {
                    MeterStatus::Suspended
                } else {
                    MeterStatus::Active
                };
                if (to == MeterStatus::Active) != active {
                    env.send(&[registry_ix::set_meter_status(payer, &lfdi, to)], &[])
                        .await
                        .unwrap();
                    active = to == MeterStatus::Active;
                }
            }
            Step::Reading {
                wait_s,
                offset_s,
                import_inc,
                export_inc,
                hold,
                replay,
            } => {
                env.advance_clock(i64::from(wait_s)).await;
                import = (import + import_inc).max(0);
                export = (export + export_inc).max(0);
                let now = env.now().await;
                let reading = Reading {
                    timestamp: (now + i64::from(offset_s)) as u32,
                    import_wh: import as u64,
                    export_wh: export as u64,
                    quality: 0,
                };
                sequence += 1;
                let ixs =
                    oracle_ix::attested_batch(payer, sequence, &[reading], &[lfdi], &[&attestor])
                        .to_vec();
                if hold {
                    held.push((sequence, ixs));
                    continue;
                }
                // This batch, then (a step in three) the ones held back, oldest first.
                let mut due = vec![(sequence, ixs)];
                if sequence.is_multiple_of(3) {
                    due.append(&mut held);
                }
                for (s, ixs) in due {
                    send_one(&mut env, &lfdi, s, &ixs, &mut baselines, &mut span_s).await?;
                    sent.push((s, ixs));
                }
                if replay {
                    let (s, ixs) = sent[sent.len() / 2].clone();
                    let before: MeterState = env.zero_copy(meter_state_address(&lfdi)).await;
                    let result = env.send(&ixs, &[]).await;
                    prop_assert_eq!(
                        gridtokenx_tests::custom_error(&result),
                        Some(oracle::OracleError::BatchReplayed.into()),
                        "replay of batch {}",
                        s
                    );
                    let after: MeterState = env.zero_copy(meter_state_address(&lfdi)).await;
                    prop_assert_eq!(before.reading_count, after.reading_count);
                    prop_assert_eq!(before.verified_export_wh, after.verified_export_wh);
                }
            }
        }
    }
    // What is still held lands at the end, newest first.
    while let Some((s, ixs)) = held.pop() {
        send_one(&mut env, &lfdi, s, &ixs, &mut baselines, &mut span_s).await?;
    }
    // Every batch applied exactly once: the window's start is the last one.
    let config: oracle::OracleConfig = env.zero_copy(oracle_ix::config_address()).await;
    prop_assert_eq!(config.last_sequence, sequence);
    let state: MeterState = env.zero_copy(meter_state_address(&lfdi)).await;
    let capacity = default_capacity();
    let tolerance = oracle_ix::default_limits().tolerance_bps;
    prop_assert!(
        oracle::rules::within_bound(
            state.verified_export_wh,
            capacity.max_export_w(),
            span_s,
            tolerance
        )
        .unwrap(),
        "verified export {} Wh over {} s",
        state.verified_export_wh,
        span_s
    );
    prop_assert!(oracle::rules::within_bound(
        state.verified_import_wh,
        capacity.max_import_w,
        span_s,
        tolerance
    )
    .unwrap());
    // The energy balance: export beyond the panels' capacity over that time came from a
    // battery no larger than its capacity per active period, or from import.
    let beyond_generation = state
        .verified_export_wh
        .saturating_sub(capacity.storage_wh * baselines)
        .saturating_sub(state.verified_import_wh);
    prop_assert!(
        oracle::rules::within_bound(beyond_generation, capacity.generation_w, span_s, tolerance)
            .unwrap(),
        "verified export {} Wh, import {} Wh, {} baselines, over {} s",
        state.verified_export_wh,
        state.verified_import_wh,
        baselines,
        span_s
    );
    prop_assert!(
        oracle::rules::within_bound(
            state.verified_renewable_wh,
            capacity.generation_w,
            span_s,
            tolerance
        )
        .unwrap(),
        "renewable {} Wh over {} s",
        state.verified_renewable_wh,
        span_s
    );
    Ok(())
}

/// Sends one batch: it must apply, whatever it carries and whenever it lands.
async fn send_one(
    env: &mut TestEnv,
    lfdi: &registry::identity::Lfdi,
    sequence: u64,
    ixs: &[solana_instruction::Instruction],
    baselines: &mut u64,
    span_s: &mut u64,
) -> Result<(), TestCaseError> {
    let before: MeterState = env.zero_copy(meter_state_address(lfdi)).await;
    env.send(ixs, &[])
        .await
        .map_err(|e| TestCaseError::fail(format!("batch {sequence} failed: {e:?}")))?;
    let after: MeterState = env.zero_copy(meter_state_address(lfdi)).await;
    *baselines += after.baselines - before.baselines;
    if after.verified_export_wh != before.verified_export_wh
        || after.verified_import_wh != before.verified_import_wh
    {
        *span_s += (after.last_timestamp - before.last_timestamp) as u64;
    }
    Ok(())
}

proptest! {
    // Each case starts a bank; a few dozen cases cover the program path (the rules
    // themselves are exercised with thousands of cases in the oracle crate).
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn verified_export_stays_within_capacity_and_no_batch_halts_the_oracle(
        steps in proptest::collection::vec(step(), 1..25),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(steps))?;
    }
}
