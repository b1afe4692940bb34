//! Oracle program: attested batches, their verification, and every rejection.
use anchor_lang::error::ErrorCode;
use gridtokenx_tests::fixtures::{self, SOL};
use gridtokenx_tests::oracle_ix::{self, config_address, meter_state_address};
use gridtokenx_tests::registry_ix::{self, meter_address, test_lfdi};
use gridtokenx_tests::{assert_error, TestEnv};
use oracle::attestation::{ed25519, Reading};
use oracle::{MeterState, OracleConfig, OracleError, ReadingLimits};
use registry::identity::Lfdi;
use registry::MeterStatus;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A campus with `n` meters, their oracle states, and an oracle with three attestors.
struct Campus {
    env: TestEnv,
    attestors: Vec<Keypair>,
    lfdis: Vec<Lfdi>,
    /// The cluster time when the campus was set up.
    t0: u32,
}

impl Campus {
    async fn new(n: u8, quorum: u8) -> Campus {
        let mut env = TestEnv::start().await;
        fixtures::campus(&mut env).await;
        let lfdis: Vec<Lfdi> = (0..n).map(test_lfdi).collect();
        for lfdi in &lfdis {
            fixtures::meter(&mut env, *lfdi).await;
        }
        let attestors: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
        let keys = attestors.iter().map(|k| k.pubkey()).collect();
        let payer = env.payer();
        env.send(&[oracle_ix::initialize_oracle(payer, keys, quorum)], &[])
            .await
            .unwrap();
        for lfdi in &lfdis {
            env.send(&[oracle_ix::init_meter_state(payer, lfdi)], &[])
                .await
                .unwrap();
        }
        let t0 = env.now().await as u32;
        Campus {
            env,
            attestors,
            lfdis,
            t0,
        }
    }

    /// Reading of meter `i` (index `i`) at `t0 + dt`.
    fn reading(&self, i: usize, dt: u32, import_wh: u64, export_wh: u64) -> Reading {
        Reading {
            meter_index: i as u16,
            timestamp: self.t0 + dt,
            import_wh,
            export_wh,
            quality: 0,
        }
    }

    /// Submits `readings` (for meters `0..readings.len()` unless given) signed by attestor 0.
    async fn submit(
        &mut self,
        sequence: u64,
        readings: &[Reading],
    ) -> Result<(), solana_program_test::BanksClientError> {
        let lfdis: Vec<Lfdi> = readings
            .iter()
            .map(|r| self.lfdis[usize::from(r.meter_index)])
            .collect();
        let ixs = oracle_ix::attested_batch(
            self.env.payer(),
            sequence,
            readings,
            &lfdis,
            &[&self.attestors[0]],
        );
        self.env.send(&ixs, &[]).await
    }

    async fn state(&mut self, i: usize) -> MeterState {
        let lfdi = self.lfdis[i];
        self.env.account(meter_state_address(&lfdi)).await
    }

    async fn config(&mut self) -> OracleConfig {
        self.env.account(config_address()).await
    }

    /// Baseline: one reading per meter at t0.
    async fn baseline(&mut self) {
        let readings: Vec<Reading> = (0..self.lfdis.len())
            .map(|i| self.reading(i, 0, 1_000_000, 2_000_000))
            .collect();
        self.submit(1, &readings).await.expect("baseline batch");
    }

    /// Moves the clock 15 minutes on.
    async fn quarter_hour(&mut self) {
        self.env.advance_clock(900).await;
    }
}

// ---- initialize_oracle and admin ----

#[tokio::test]
async fn initialize_oracle_stores_configuration() {
    let mut c = Campus::new(1, 2).await;
    let config = c.config().await;
    assert_eq!(config.authority, c.env.payer());
    assert_eq!(config.campus, registry_ix::campus_address());
    assert_eq!(
        config.attestors,
        c.attestors.iter().map(|k| k.pubkey()).collect::<Vec<_>>()
    );
    assert_eq!(config.quorum, 2);
    assert_eq!(config.limits, oracle_ix::default_limits());
    assert_eq!(config.last_sequence, 0);
    assert!(!config.paused);
}

#[tokio::test]
async fn initialize_oracle_rejects_bad_attestor_sets() {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    let payer = env.payer();
    let a = Keypair::new().pubkey();
    for (attestors, quorum) in [(vec![a], 2), (vec![a, a], 1), (vec![], 0), (vec![a], 0)] {
        let ix = oracle_ix::initialize_oracle(payer, attestors, quorum);
        assert_error(env.send(&[ix], &[]).await, OracleError::InvalidAttestors);
    }
    assert!(!env.account_exists(config_address()).await);
}

#[tokio::test]
async fn initialize_oracle_needs_the_registry_campus() {
    let mut env = TestEnv::start().await;
    let ix = oracle_ix::initialize_oracle(env.payer(), vec![Keypair::new().pubkey()], 1);
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotInitialized);
}

#[tokio::test]
async fn admin_changes_need_the_authority() {
    let mut c = Campus::new(1, 1).await;
    let impostor = c.env.funded_keypair(SOL).await;
    let who = impostor.pubkey();
    for ix in [
        oracle_ix::set_attestors(who, vec![who], 1),
        oracle_ix::set_limits(who, oracle_ix::default_limits()),
        oracle_ix::set_authority(who, who),
        oracle_ix::set_paused(who, true),
    ] {
        assert_error(
            c.env.send(&[ix], &[&impostor]).await,
            OracleError::Unauthorized,
        );
    }
    assert_eq!(c.config().await.authority, c.env.payer());
}

#[tokio::test]
async fn admin_changes_apply_and_are_validated() {
    let mut c = Campus::new(1, 1).await;
    let payer = c.env.payer();
    let new_attestor = Keypair::new().pubkey();
    c.env
        .send(
            &[oracle_ix::set_attestors(payer, vec![new_attestor], 1)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(c.config().await.attestors, vec![new_attestor]);
    let ix = oracle_ix::set_attestors(payer, vec![new_attestor], 2);
    assert_error(c.env.send(&[ix], &[]).await, OracleError::InvalidAttestors);

    let limits = ReadingLimits {
        max_future_skew_s: 30,
        min_interval_s: 300,
        tolerance_bps: 500,
    };
    c.env
        .send(&[oracle_ix::set_limits(payer, limits)], &[])
        .await
        .unwrap();
    assert_eq!(c.config().await.limits, limits);
    let bad = ReadingLimits {
        min_interval_s: 0,
        ..limits
    };
    assert_error(
        c.env.send(&[oracle_ix::set_limits(payer, bad)], &[]).await,
        OracleError::InvalidParams,
    );

    let ix = oracle_ix::set_authority(payer, anchor_lang::prelude::Pubkey::default());
    assert_error(c.env.send(&[ix], &[]).await, OracleError::InvalidAuthority);
    let successor = Keypair::new().pubkey();
    c.env
        .send(&[oracle_ix::set_authority(payer, successor)], &[])
        .await
        .unwrap();
    assert_eq!(c.config().await.authority, successor);
}

// ---- init_meter_state ----

#[tokio::test]
async fn init_meter_state_starts_empty_and_only_once() {
    let mut c = Campus::new(2, 1).await;
    let state = c.state(1).await;
    assert_eq!(state.lfdi, c.lfdis[1]);
    assert_eq!(state.meter_index, 1);
    assert_eq!(state.reading_count, 0);
    let someone = c.env.funded_keypair(SOL).await;
    let ix = oracle_ix::init_meter_state(someone.pubkey(), &c.lfdis[1]);
    assert_error(
        c.env.send(&[ix], &[&someone]).await,
        OracleError::MeterStateExists,
    );
}

#[tokio::test]
async fn init_meter_state_needs_a_registered_meter() {
    let mut c = Campus::new(1, 1).await;
    let ix = oracle_ix::init_meter_state(c.env.payer(), &test_lfdi(42));
    assert_error(
        c.env.send(&[ix], &[]).await,
        ErrorCode::AccountNotInitialized,
    );
    assert!(
        !c.env
            .account_exists(meter_state_address(&test_lfdi(42)))
            .await
    );
}

// ---- submit_readings: success ----

#[tokio::test]
async fn first_batch_sets_baselines() {
    let mut c = Campus::new(3, 1).await;
    c.baseline().await;
    for i in 0..3 {
        let s = c.state(i).await;
        assert_eq!(s.reading_count, 1);
        assert_eq!(s.last_timestamp, i64::from(c.t0));
        assert_eq!((s.import_wh, s.export_wh), (1_000_000, 2_000_000));
        assert_eq!(s.verified_export_wh().unwrap(), 0);
        assert_eq!(s.last_sequence, 1);
    }
    assert_eq!(c.config().await.last_sequence, 1);
}

#[tokio::test]
async fn later_batches_add_verified_energy() {
    let mut c = Campus::new(2, 1).await;
    c.baseline().await;
    c.quarter_hour().await;
    // 15 min: meter 0 imports 5 kWh, meter 1 exports 10 kWh.
    let readings = [
        c.reading(0, 900, 1_005_000, 2_000_000),
        c.reading(1, 900, 1_000_000, 2_010_000),
    ];
    c.submit(2, &readings).await.unwrap();
    let s0 = c.state(0).await;
    assert_eq!(s0.verified_import_wh().unwrap(), 5_000);
    assert_eq!(s0.verified_export_wh().unwrap(), 0);
    let s1 = c.state(1).await;
    assert_eq!(s1.verified_export_wh().unwrap(), 10_000);
    assert_eq!(s1.last_sequence, 2);
    assert_eq!(c.config().await.last_sequence, 2);
}

#[tokio::test]
async fn quorum_counts_distinct_attestors() {
    let mut c = Campus::new(1, 2).await;
    let payer = c.env.payer();
    let readings = [c.reading(0, 0, 1, 1)];
    let lfdis = [c.lfdis[0]];
    let (a, b) = (&c.attestors[0], &c.attestors[1]);
    for signers in [vec![a], vec![a, a]] {
        let ixs = oracle_ix::attested_batch(payer, 1, &readings, &lfdis, &signers);
        assert_error(c.env.send(&ixs, &[]).await, OracleError::QuorumNotMet);
    }
    let ixs = oracle_ix::attested_batch(payer, 1, &readings, &lfdis, &[a, b]);
    c.env.send(&ixs, &[]).await.unwrap();
    assert_eq!(c.config().await.last_sequence, 1);
}

// ---- submit_readings: signatures and messages ----

/// The precompile's own error for a signature that does not verify (PrecompileError::InvalidSignature).
const PRECOMPILE_INVALID_SIGNATURE: u32 = 2;

#[tokio::test]
async fn forged_signature_is_rejected_by_the_precompile() {
    let mut c = Campus::new(1, 1).await;
    let message = oracle_ix::batch_message(1, &[c.reading(0, 0, 1, 1)]);
    let forged =
        ed25519::instruction_data(&message, &[(c.attestors[0].pubkey().to_bytes(), [7u8; 64])]);
    let ed = Instruction {
        program_id: solana_sdk_ids::ed25519_program::ID,
        accounts: vec![],
        data: forged,
    };
    let submit = oracle_ix::submit_readings(c.env.payer(), 0, &c.lfdis[..1]);
    assert_error(
        c.env.send(&[ed, submit], &[]).await,
        PRECOMPILE_INVALID_SIGNATURE,
    );
    assert_eq!(c.state(0).await.reading_count, 0);
}

#[tokio::test]
async fn altered_message_is_rejected_by_the_precompile() {
    let mut c = Campus::new(1, 1).await;
    let [mut ed, submit] = oracle_ix::attested_batch(
        c.env.payer(),
        1,
        &[c.reading(0, 0, 1, 1)],
        &c.lfdis[..1],
        &[&c.attestors[0]],
    );
    // Raise the export counter in the signed bytes: the last-but-one byte of the reading.
    let at = ed.data.len() - 2;
    ed.data[at] = 0xFF;
    assert_error(
        c.env.send(&[ed, submit], &[]).await,
        PRECOMPILE_INVALID_SIGNATURE,
    );
    assert_eq!(c.config().await.last_sequence, 0);
}

#[tokio::test]
async fn signature_by_a_non_attestor_is_rejected() {
    let mut c = Campus::new(1, 1).await;
    let outsider = Keypair::new();
    let ixs = oracle_ix::attested_batch(
        c.env.payer(),
        1,
        &[c.reading(0, 0, 1, 1)],
        &c.lfdis[..1],
        &[&outsider],
    );
    assert_error(c.env.send(&ixs, &[]).await, OracleError::UnknownAttestor);
    // Even next to a valid attestor signature.
    let ixs = oracle_ix::attested_batch(
        c.env.payer(),
        1,
        &[c.reading(0, 0, 1, 1)],
        &c.lfdis[..1],
        &[&c.attestors[0], &outsider],
    );
    assert_error(c.env.send(&ixs, &[]).await, OracleError::UnknownAttestor);
}

#[tokio::test]
async fn valid_signature_over_a_different_message_is_rejected() {
    let mut c = Campus::new(1, 2).await;
    let payer = c.env.payer();
    let m1 = oracle_ix::batch_message(1, &[c.reading(0, 0, 1, 1)]);
    let m2 = oracle_ix::batch_message(1, &[c.reading(0, 0, 1, 999)]);
    // Two valid signatures, each over its own message, in one Ed25519 instruction.
    let sig = |k: &Keypair, m: &[u8]| -> [u8; 64] { k.sign_message(m).into() };
    let mut data = ed25519::instruction_data(
        &m1,
        &[(
            c.attestors[0].pubkey().to_bytes(),
            sig(&c.attestors[0], &m1),
        )],
    );
    let second = ed25519::instruction_data(
        &m2,
        &[(
            c.attestors[1].pubkey().to_bytes(),
            sig(&c.attestors[1], &m2),
        )],
    );
    data = merge_ed25519(&data, &second);
    let ed = Instruction {
        program_id: solana_sdk_ids::ed25519_program::ID,
        accounts: vec![],
        data,
    };
    let submit = oracle_ix::submit_readings(payer, 0, &c.lfdis[..1]);
    assert_error(
        c.env.send(&[ed, submit], &[]).await,
        OracleError::MessageMismatch,
    );
}

/// Joins two single-signature Ed25519 instructions into one with two signatures.
fn merge_ed25519(a: &[u8], b: &[u8]) -> Vec<u8> {
    let rec = |d: &[u8]| d[2..16].to_vec();
    let body = |d: &[u8]| d[16..].to_vec();
    let (body_a, body_b) = (body(a), body(b));
    // Bodies shift by one extra 14-byte record; b's body also shifts past a's body.
    let shift = |r: Vec<u8>, by: usize| -> Vec<u8> {
        let mut r = r;
        for field in [0usize, 4, 8] {
            let v = u16::from_le_bytes([r[field], r[field + 1]]) as usize + by;
            r[field..field + 2].copy_from_slice(&(v as u16).to_le_bytes());
        }
        r
    };
    let mut out = vec![2u8, 0];
    out.extend(shift(rec(a), 14));
    out.extend(shift(rec(b), 14 + body_a.len()));
    out.extend(body_a);
    out.extend(body_b);
    out
}

#[tokio::test]
async fn batch_for_another_campus_or_program_is_rejected() {
    let mut c = Campus::new(1, 1).await;
    let payer = c.env.payer();
    let readings = [c.reading(0, 0, 1, 1)];
    let other = [9u8; 32];
    let cases = [
        (
            oracle::attestation::encode_batch(&oracle::ID.to_bytes(), &other, 1, &readings)
                .unwrap(),
            OracleError::WrongCampus,
        ),
        (
            oracle::attestation::encode_batch(
                &other,
                &registry_ix::campus_address().to_bytes(),
                1,
                &readings,
            )
            .unwrap(),
            OracleError::WrongProgram,
        ),
    ];
    for (message, expected) in cases {
        let ed = oracle_ix::ed25519_instruction(&message, &[&c.attestors[0]]);
        let submit = oracle_ix::submit_readings(payer, 0, &c.lfdis[..1]);
        assert_error(c.env.send(&[ed, submit], &[]).await, expected);
    }
    let mut garbage = oracle_ix::batch_message(1, &readings);
    garbage[0] ^= 0x20;
    let ed = oracle_ix::ed25519_instruction(&garbage, &[&c.attestors[0]]);
    let submit = oracle_ix::submit_readings(payer, 0, &c.lfdis[..1]);
    assert_error(
        c.env.send(&[ed, submit], &[]).await,
        OracleError::MalformedBatch,
    );
}

#[tokio::test]
async fn spoofed_ed25519_offsets_are_rejected() {
    let mut c = Campus::new(1, 1).await;
    let payer = c.env.payer();
    let honest = oracle_ix::batch_message(1, &[c.reading(0, 0, 1, 1)]);
    let valid = oracle_ix::ed25519_instruction(&honest, &[&c.attestors[0]]);
    // Instruction 0 claims the honest signature but shows a batch with a huge export; its
    // offsets send the precompile to instruction 2, a genuine copy, which verifies.
    let mut spoofed = valid.clone();
    let forged = oracle_ix::batch_message(1, &[c.reading(0, 0, 1, 900_000_000)]);
    let msg_at = spoofed.data.len() - honest.len();
    spoofed.data[msg_at..].copy_from_slice(&forged);
    for field in [4usize, 8, 14] {
        spoofed.data[field..field + 2].copy_from_slice(&2u16.to_le_bytes());
    }
    let submit = oracle_ix::submit_readings(payer, 0, &c.lfdis[..1]);
    assert_error(
        c.env.send(&[spoofed, submit, valid], &[]).await,
        OracleError::Ed25519OffsetsSpoofed,
    );
    assert_eq!(c.state(0).await.reading_count, 0);
}

#[tokio::test]
async fn index_not_pointing_at_an_ed25519_instruction_is_rejected() {
    let mut c = Campus::new(1, 1).await;
    let [ed, _] = oracle_ix::attested_batch(
        c.env.payer(),
        1,
        &[c.reading(0, 0, 1, 1)],
        &c.lfdis[..1],
        &[&c.attestors[0]],
    );
    // Index 1 is the oracle instruction itself; index 5 does not exist.
    for index in [1u8, 5] {
        let submit = oracle_ix::submit_readings(c.env.payer(), index, &c.lfdis[..1]);
        assert_error(
            c.env.send(&[ed.clone(), submit], &[]).await,
            OracleError::NotEd25519Instruction,
        );
    }
}

// ---- submit_readings: sequence ----

#[tokio::test]
async fn replayed_and_out_of_order_batches_are_rejected() {
    let mut c = Campus::new(1, 1).await;
    c.baseline().await;
    c.quarter_hour().await;
    // Sequence 1 again, even with new readings: replay.
    let r = [c.reading(0, 900, 1_000_100, 2_000_000)];
    assert_error(c.submit(1, &r).await, OracleError::BatchReplayed);
    // Sequence 3 before 2: out of order.
    assert_error(c.submit(3, &r).await, OracleError::BatchOutOfOrder);
    c.submit(2, &r).await.unwrap();
    assert_eq!(c.config().await.last_sequence, 2);
}

// ---- submit_readings: meters ----

#[tokio::test]
async fn readings_of_suspended_meters_are_rejected() {
    let mut c = Campus::new(2, 1).await;
    let payer = c.env.payer();
    let lfdi = c.lfdis[1];
    c.env
        .send(
            &[registry_ix::set_meter_status(
                payer,
                &lfdi,
                MeterStatus::Suspended,
            )],
            &[],
        )
        .await
        .unwrap();
    let readings = [c.reading(0, 0, 1, 1), c.reading(1, 0, 1, 1)];
    assert_error(c.submit(1, &readings).await, OracleError::MeterNotActive);
    // Nothing of the batch applied, not even the active meter's reading.
    assert_eq!(c.state(0).await.reading_count, 0);
}

#[tokio::test]
async fn readings_need_registered_meters_and_their_states() {
    let mut c = Campus::new(2, 1).await;
    let payer = c.env.payer();
    let readings = [c.reading(0, 0, 1, 1)];
    let [ed, submit] =
        oracle_ix::attested_batch(payer, 1, &readings, &c.lfdis[..1], &[&c.attestors[0]]);

    // The meter's oracle state where the registry meter should be.
    let mut fake_meter = submit.clone();
    fake_meter.accounts[3].pubkey = meter_state_address(&c.lfdis[0]);
    assert_error(
        c.env.send(&[ed.clone(), fake_meter], &[]).await,
        OracleError::MeterNotRegistered,
    );

    // Another meter's state.
    let mut wrong_state = submit.clone();
    wrong_state.accounts[4].pubkey = meter_state_address(&c.lfdis[1]);
    assert_error(
        c.env.send(&[ed.clone(), wrong_state], &[]).await,
        OracleError::MeterStateMissing,
    );

    // Another registered meter than the reading's index.
    let mut wrong_meter = submit.clone();
    wrong_meter.accounts[3].pubkey = meter_address(&c.lfdis[1]);
    assert_error(
        c.env.send(&[ed.clone(), wrong_meter], &[]).await,
        OracleError::MeterIndexMismatch,
    );

    // Accounts missing.
    let mut short = submit.clone();
    short.accounts.pop();
    assert_error(
        c.env.send(&[ed, short], &[]).await,
        OracleError::AccountsMismatch,
    );
}

// ---- submit_readings: plausibility ----

#[tokio::test]
async fn timestamps_must_advance_by_the_interval_and_not_lead_the_clock() {
    let mut c = Campus::new(1, 1).await;
    c.baseline().await;
    c.quarter_hour().await;
    let same_time = [c.reading(0, 0, 1_000_000, 2_000_000)];
    assert_error(
        c.submit(2, &same_time).await,
        OracleError::TimestampNotIncreasing,
    );
    let too_soon = [c.reading(0, 59, 1_000_000, 2_000_000)];
    assert_error(c.submit(2, &too_soon).await, OracleError::IntervalTooShort);
    // Clock is at t0 + 900; skew allows up to t0 + 960.
    let future = [c.reading(0, 961, 1_000_000, 2_000_000)];
    assert_error(c.submit(2, &future).await, OracleError::TimestampInFuture);
    let at_limit = [c.reading(0, 960, 1_000_000, 2_000_000)];
    c.submit(2, &at_limit).await.unwrap();
}

#[tokio::test]
async fn counters_must_not_decrease_or_exceed_capacity() {
    let mut c = Campus::new(1, 1).await;
    c.baseline().await;
    c.quarter_hour().await;
    // Capacity: 80 kW import, 50 kW + 30 kWh export; 15 min, +10 %: 22 kWh, 46.75 kWh.
    let cases = [
        (
            c.reading(0, 900, 999_999, 2_000_000),
            OracleError::CounterDecreased,
        ),
        (
            c.reading(0, 900, 1_000_000, 1_999_999),
            OracleError::CounterDecreased,
        ),
        (
            c.reading(0, 900, 1_022_001, 2_000_000),
            OracleError::ImplausibleImport,
        ),
        (
            c.reading(0, 900, 1_000_000, 2_046_751),
            OracleError::ImplausibleExport,
        ),
    ];
    for (reading, expected) in cases {
        assert_error(c.submit(2, &[reading]).await, expected);
    }
    let before = c.state(0).await;
    assert_eq!(before.reading_count, 1);
    let at_bounds = [c.reading(0, 900, 1_022_000, 2_046_750)];
    c.submit(2, &at_bounds).await.unwrap();
}

#[tokio::test]
async fn paused_oracle_refuses_batches_until_unpaused() {
    let mut c = Campus::new(1, 1).await;
    let payer = c.env.payer();
    c.env
        .send(&[oracle_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    let readings = [c.reading(0, 0, 1, 1)];
    assert_error(c.submit(1, &readings).await, OracleError::Paused);
    c.env
        .send(&[oracle_ix::set_paused(payer, false)], &[])
        .await
        .unwrap();
    c.submit(1, &readings).await.unwrap();
}

#[tokio::test]
async fn guardian_can_pause_the_oracle_under_governance() {
    let mut c = Campus::new(1, 1).await;
    let council = fixtures::council(&mut c.env).await;
    let payer = c.env.payer();
    let governance = gridtokenx_tests::governance_ix::authority_address();
    c.env
        .send(&[oracle_ix::set_authority(payer, governance)], &[])
        .await
        .unwrap();
    let ix = gridtokenx_tests::governance_ix::guardian_pause(
        council.guardian.pubkey(),
        oracle::ID,
        config_address(),
    );
    c.env.send(&[ix], &[&council.guardian]).await.unwrap();
    assert!(c.config().await.paused);
    assert_error(
        c.submit(1, &[c.reading(0, 0, 1, 1)]).await,
        OracleError::Paused,
    );
}

// ---- size ----

/// A whole campus (25 meters, one reading each) in one v0 transaction with a lookup table.
async fn campus_batch_transaction(
    quorum: usize,
) -> (Campus, solana_transaction::versioned::VersionedTransaction) {
    let mut c = Campus::new(25, quorum as u8).await;
    let mut table = vec![config_address(), solana_sdk_ids::sysvar::instructions::ID];
    for lfdi in &c.lfdis {
        table.push(meter_address(lfdi));
        table.push(meter_state_address(lfdi));
    }
    let alt = c.env.plant_lookup_table(table.clone());
    let readings: Vec<Reading> = (0..25)
        .map(|i| c.reading(i, 0, 1_000_000, 2_000_000))
        .collect();
    let signers: Vec<&Keypair> = c.attestors.iter().take(quorum).collect();
    let ixs = oracle_ix::attested_batch(c.env.payer(), 1, &readings, &c.lfdis, &signers);
    let tx = c.env.v0_transaction(&ixs, &[], alt, &table);
    (c, tx)
}

#[tokio::test]
async fn whole_campus_batch_fits_one_transaction_and_applies() {
    let (mut c, tx) = campus_batch_transaction(1).await;
    let size = gridtokenx_tests::versioned_transaction_size(&tx);
    assert!(
        size <= gridtokenx_tests::MAX_TRANSACTION_SIZE,
        "campus batch is {size} bytes"
    );
    assert_eq!(size, 1_132);
    c.env.send_v0(tx).await.unwrap();
    for i in 0..25 {
        assert_eq!(c.state(i).await.reading_count, 1);
    }
    assert_eq!(c.config().await.last_sequence, 1);
}

/// Bytes of a v0 transaction submitting `n` readings signed by `quorum` attestors, with the
/// config, the instructions sysvar and every meter and meter state in a lookup table.
fn batch_transaction_size(env: &TestEnv, n: u8, quorum: usize) -> usize {
    let lfdis: Vec<Lfdi> = (0..n).map(test_lfdi).collect();
    let mut table = vec![config_address(), solana_sdk_ids::sysvar::instructions::ID];
    for lfdi in &lfdis {
        table.push(meter_address(lfdi));
        table.push(meter_state_address(lfdi));
    }
    let readings: Vec<Reading> = (0..n)
        .map(|i| Reading {
            meter_index: u16::from(i),
            timestamp: u32::MAX,
            import_wh: u64::MAX,
            export_wh: u64::MAX,
            quality: 0,
        })
        .collect();
    let attestors: Vec<Keypair> = (0..quorum).map(|_| Keypair::new()).collect();
    let signers: Vec<&Keypair> = attestors.iter().collect();
    let ixs = oracle_ix::attested_batch(env.payer(), 1, &readings, &lfdis, &signers);
    let alt = anchor_lang::prelude::Pubkey::new_unique();
    gridtokenx_tests::versioned_transaction_size(&env.v0_transaction(&ixs, &[], alt, &table))
}

#[tokio::test]
async fn readings_per_transaction_by_quorum() {
    let env = TestEnv::start().await;
    let max_readings = |quorum: usize| {
        (1..=u8::MAX)
            .take_while(|&n| {
                batch_transaction_size(&env, n, quorum) <= gridtokenx_tests::MAX_TRANSACTION_SIZE
            })
            .last()
            .unwrap_or(0)
    };
    // Documented in README: 28 readings with one attestor signature, 24 with two, 20 with three.
    assert_eq!(
        [max_readings(1), max_readings(2), max_readings(3)],
        [28, 24, 20]
    );
    // Each reading costs 27 bytes (23 of message, 2 account indices, 2 table indices);
    // each signature 110 (offsets 14, key 32, signature 64).
    assert_eq!(
        batch_transaction_size(&env, 26, 1) - batch_transaction_size(&env, 25, 1),
        27
    );
    assert_eq!(
        batch_transaction_size(&env, 25, 2) - batch_transaction_size(&env, 25, 1),
        110
    );
}

// ---- read helpers for the energy-token and trading programs ----

/// Runs `check` on an `AccountInfo` made from a bank account, at `key` with `owner`.
fn with_info<T>(
    key: anchor_lang::prelude::Pubkey,
    owner: anchor_lang::prelude::Pubkey,
    mut data: Vec<u8>,
    check: impl FnOnce(&anchor_lang::prelude::AccountInfo) -> T,
) -> T {
    let mut lamports = 1u64;
    let info = anchor_lang::prelude::AccountInfo::new(
        &key,
        false,
        false,
        &mut lamports,
        &mut data,
        &owner,
        false,
    );
    check(&info)
}

fn anchor_code<T: std::fmt::Debug>(r: anchor_lang::Result<T>) -> u32 {
    match r {
        Err(anchor_lang::error::Error::AnchorError(e)) => e.error_code_number,
        other => panic!("expected an Anchor error, got {other:?}"),
    }
}

#[tokio::test]
async fn meter_state_read_helper_checks_owner_seeds_and_identity() {
    let mut c = Campus::new(2, 1).await;
    c.baseline().await;
    let (lfdi, other) = (c.lfdis[0], c.lfdis[1]);
    let address = meter_state_address(&lfdi);
    let data = c
        .env
        .ctx
        .banks_client
        .get_account(address)
        .await
        .unwrap()
        .unwrap()
        .data;

    let state = with_info(address, oracle::ID, data.clone(), |i| {
        MeterState::load_checked(i, &lfdi)
    })
    .unwrap();
    assert_eq!(state.import_wh, 1_000_000);
    let wrong_owner = with_info(address, registry::ID, data.clone(), |i| {
        MeterState::load_checked(i, &lfdi)
    });
    assert_eq!(
        anchor_code(wrong_owner),
        u32::from(ErrorCode::AccountOwnedByWrongProgram)
    );
    let wrong_address = with_info(meter_state_address(&other), oracle::ID, data.clone(), |i| {
        MeterState::load_checked(i, &other)
    });
    assert_eq!(
        anchor_code(wrong_address),
        u32::from(ErrorCode::ConstraintSeeds)
    );
    let wrong_meter = with_info(address, oracle::ID, data.clone(), |i| {
        MeterState::load_checked(i, &other)
    });
    assert_eq!(
        anchor_code(wrong_meter),
        u32::from(ErrorCode::ConstraintSeeds)
    );
    let config_data = c
        .env
        .ctx
        .banks_client
        .get_account(config_address())
        .await
        .unwrap()
        .unwrap()
        .data;
    let not_a_state = with_info(address, oracle::ID, config_data, |i| {
        MeterState::load_checked(i, &lfdi)
    });
    assert_eq!(
        anchor_code(not_a_state),
        u32::from(ErrorCode::AccountDiscriminatorMismatch)
    );
}

#[tokio::test]
async fn registry_meter_read_helper_checks_owner_and_seeds() {
    let c = Campus::new(2, 1).await;
    let address = meter_address(&c.lfdis[0]);
    let data = c
        .env
        .ctx
        .banks_client
        .get_account(address)
        .await
        .unwrap()
        .unwrap()
        .data;
    let meter = with_info(address, registry::ID, data.clone(), |i| {
        registry::Meter::load_checked(i)
    })
    .unwrap();
    assert_eq!(meter.lfdi, c.lfdis[0]);
    let wrong_owner = with_info(address, oracle::ID, data.clone(), |i| {
        registry::Meter::load_checked(i)
    });
    assert_eq!(
        anchor_code(wrong_owner),
        u32::from(ErrorCode::AccountOwnedByWrongProgram)
    );
    let elsewhere = meter_address(&c.lfdis[1]);
    let moved = with_info(elsewhere, registry::ID, data, |i| {
        registry::Meter::load_checked(i)
    });
    assert_eq!(anchor_code(moved), u32::from(ErrorCode::ConstraintSeeds));
}

#[tokio::test]
async fn governance_changes_the_attestors_through_a_proposal() {
    let mut c = Campus::new(1, 1).await;
    let council = fixtures::council(&mut c.env).await;
    let payer = c.env.payer();
    let governance = gridtokenx_tests::governance_ix::authority_address();
    c.env
        .send(&[oracle_ix::set_authority(payer, governance)], &[])
        .await
        .unwrap();
    // The bootstrap key no longer can.
    let new_bridge = Keypair::new();
    let direct = oracle_ix::set_attestors(payer, vec![new_bridge.pubkey()], 1);
    assert_error(c.env.send(&[direct], &[]).await, OracleError::Unauthorized);

    let change = oracle_ix::set_attestors(governance, vec![new_bridge.pubkey()], 1);
    fixtures::approved_proposal(&mut c.env, &council, 0, &change).await;
    c.env.advance_clock(i64::from(fixtures::TIMELOCK)).await;
    c.env
        .send(
            &[gridtokenx_tests::governance_ix::execute(payer, 0, &change)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(c.config().await.attestors, vec![new_bridge.pubkey()]);

    // The old attestor is refused, the new one accepted.
    let t = c.env.now().await as u32;
    let reading = Reading {
        meter_index: 0,
        timestamp: t,
        import_wh: 1,
        export_wh: 1,
        quality: 0,
    };
    assert_error(c.submit(1, &[reading]).await, OracleError::UnknownAttestor);
    let ixs = oracle_ix::attested_batch(payer, 1, &[reading], &c.lfdis, &[&new_bridge]);
    c.env.send(&ixs, &[]).await.unwrap();
}
