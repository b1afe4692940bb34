//! The real bridge's attestor against the real programs, with meters that misbehave: bursts
//! faster than the oracle's interval, claims beyond capacity, stale register times, readings
//! from before registration, registers posted at different times, a meter suspended on chain
//! that the bridge still thinks active, and one suspended at the bridge. Every batch the
//! bridge signs is applied: none halts the oracle, and the only reading the chain skips is
//! the one the bridge could not know about (the on-chain suspension).
use anchor_lang::prelude::Pubkey;
use base64::Engine;
use bridge::config::BridgeConfig;
use bridge::store::SignedBatch;
use certs::{ensure_pki, Layout, Pki};
use gridtokenx_tests::oracle_ix::{self, meter_state_address};
use gridtokenx_tests::registry_ix;
use gridtokenx_tests::{events, TestEnv};
use oracle::attestation::ed25519;
use oracle::events::{BatchApplied, ReadingSkipped};
use oracle::{MeterState, OracleError};
use registry::identity::Lfdi;
use registry::MeterStatus;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sdk::CampusConfig;
use sep2::{
    self, DateTimeInterval, MirrorMeterReading, MirrorMeterReadingList, MirrorUsagePoint,
    Reading as XmlReading,
};
use simulator::client::{client_config, MeterClient, Suites};
use solana_instruction::Instruction;
use solana_signer::Signer;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct Site {
    pki: Pki,
    bridge: bridge::server::RunningBridge,
    ca: CertificateDer<'static>,
}

impl Site {
    fn lfdi(&self, code: &str) -> Lfdi {
        self.pki
            .meters
            .iter()
            .find(|m| m.code == code)
            .unwrap()
            .lfdi
    }

    fn client(&self, code: &str) -> MeterClient {
        let layout = &self.pki.layout;
        let cert = CertificateDer::from_pem_file(layout.meter_cert(code)).unwrap();
        let key = PrivateKeyDer::from_pem_file(layout.meter_key(code)).unwrap();
        MeterClient::new(
            client_config(self.ca.clone(), cert, key, Suites::Default).unwrap(),
            self.bridge.meters_addr,
        )
    }
}

fn register(mrid: &str, flow: u8, wh: i64, end: i64, with_type: bool) -> MirrorMeterReading {
    MirrorMeterReading {
        mrid: mrid.into(),
        reading: Some(XmlReading {
            value: Some(wh),
            time_period: Some(DateTimeInterval {
                duration: 60,
                start: end - 60,
            }),
            ..XmlReading::default()
        }),
        reading_type: with_type.then(|| simulator::meter::cumulative_reading_type(flow)),
        ..MirrorMeterReading::default()
    }
}

/// A meter posting its site mirror and then rounds of registers.
struct Meter {
    client: MeterClient,
    /// Hex prefix of the meter's mRIDs (mRIDs are hex and must be distinct per device).
    prefix: String,
    location: Option<String>,
}

impl Meter {
    /// Posts import and export registers measured at `end` (or only the ones given).
    async fn post(
        &mut self,
        lfdi_hex: &str,
        import: Option<i64>,
        export: Option<i64>,
        end: i64,
    ) -> u16 {
        let (mi, me) = (format!("{}01", self.prefix), format!("{}02", self.prefix));
        let first = self.location.is_none();
        let mut readings = Vec::new();
        if let Some(wh) = import {
            readings.push(register(&mi, 1, wh, end, first));
        }
        if let Some(wh) = export {
            readings.push(register(&me, 19, wh, end, first));
        }
        match &self.location {
            None => {
                let mup = MirrorUsagePoint {
                    xmlns: sep2::with_ns(),
                    mrid: format!("{}0A", self.prefix),
                    description: Some("site".into()),
                    role_flags: "03".into(),
                    service_category_kind: 0,
                    status: 1,
                    device_lfdi: lfdi_hex.into(),
                    mirror_meter_readings: readings,
                    ..MirrorUsagePoint::default()
                };
                let reply = self
                    .client
                    .post("/mup", sep2::to_xml("MirrorUsagePoint", &mup))
                    .await
                    .unwrap();
                self.location = reply.location.clone();
                reply.status
            }
            Some(location) => {
                let list = MirrorMeterReadingList {
                    xmlns: sep2::with_ns(),
                    readings,
                };
                self.client
                    .post(location, sep2::to_xml("MirrorMeterReadingList", &list))
                    .await
                    .unwrap()
                    .status
            }
        }
    }
}

/// The two instructions a keeper sends for a signed batch.
fn instructions(env: &TestEnv, batch: &SignedBatch) -> Vec<Instruction> {
    let message = B64.decode(&batch.message).unwrap();
    let key: [u8; 32] = B64.decode(&batch.attestor).unwrap().try_into().unwrap();
    let signature: [u8; 64] = B64.decode(&batch.signature).unwrap().try_into().unwrap();
    let lfdis: Vec<Lfdi> = batch
        .meters
        .iter()
        .map(|hex| sep2::parse_hex(hex, 20).unwrap().try_into().unwrap())
        .collect();
    vec![
        Instruction {
            program_id: solana_sdk_ids::ed25519_program::ID,
            accounts: vec![],
            data: ed25519::instruction_data(&message, &[(key, signature)]),
        },
        oracle_ix::submit_readings(env.payer(), 0, &lfdis),
    ]
}

#[tokio::test]
async fn every_batch_the_bridge_signs_applies_whatever_the_meters_send() {
    let dir = tempfile::tempdir().unwrap();
    let campus = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
    let wall = bridge::server::now();

    // The chain: campus and the 25 meters, registered an hour ago (bank time).
    let mut env = TestEnv::start().await;
    let bank_now = env.now().await;
    env.advance_clock(wall - 3_600 - bank_now).await;
    let pki = ensure_pki(&Layout::new(dir.path().join("pki")), &campus).unwrap();
    gridtokenx_tests::fixtures::campus(&mut env).await;
    for b in &campus.buildings {
        let owner = env.funded_keypair(gridtokenx_tests::fixtures::SOL).await;
        let lfdi = pki.meters.iter().find(|m| m.code == b.code).unwrap().lfdi;
        let ix = registry_ix::register_meter_with(
            env.payer(),
            owner.pubkey(),
            lfdi,
            registry::identity::sfdi_from_lfdi(&lfdi),
            b.kind.into(),
            b.capacity().unwrap(),
        );
        env.send(&[ix], &[&owner]).await.unwrap();
    }
    let registered_at = env.now().await;

    // The bridge, attesting for this cluster with the chain's limits.
    let config = BridgeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        keeper_listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        pki_dir: dir.path().join("pki"),
        campus_config: CampusConfig::in_repository(),
        attest_interval_s: 3_600,
        cluster_genesis_hash: Some(Pubkey::new_from_array(oracle_ix::CLUSTER).to_string()),
        ..BridgeConfig::default()
    };
    let running = bridge::server::start(&config).await.unwrap();
    let ca = CertificateDer::from_pem_file(pki.layout.ca_cert()).unwrap();
    let site = Site {
        pki,
        bridge: running,
        ca,
    };
    let attestor = Pubkey::new_from_array(site.bridge.attestor.public_key());
    let payer = env.payer();
    env.send(
        &[oracle_ix::initialize_oracle(payer, vec![attestor], 1)],
        &[],
    )
    .await
    .unwrap();
    let mut lfdis = Vec::new();
    for b in &campus.buildings {
        let lfdi = site.lfdi(&b.code);
        env.send(&[oracle_ix::init_meter_state(payer, &lfdi)], &[])
            .await
            .unwrap();
        // What the keeper tells the bridge about each meter (here: active since registration).
        site.bridge
            .service
            .directory
            .set_active(&lfdi, true, registered_at);
        lfdis.push(lfdi);
    }
    // BIO is suspended on chain; the bridge has not heard of it yet.
    env.send(
        &[registry_ix::set_meter_status(
            payer,
            &site.lfdi("BIO"),
            MeterStatus::Suspended,
        )],
        &[],
    )
    .await
    .unwrap();

    let hex = |code: &str| sdk::identity::lfdi_hex(&site.lfdi(code));
    let meter = |code: &str| Meter {
        client: site.client(code),
        prefix: format!(
            "{:02X}",
            campus
                .buildings
                .iter()
                .position(|b| b.code == code)
                .unwrap()
                + 0x10
        ),
        location: None,
    };
    let start = wall - 3_000;
    // The chain's clock catches up with the meters' (they post from 50 minutes ago on).
    env.advance_clock(3_600).await;

    // Once: CHEM's registers are stamped two days ago (a meter with a wrong clock); MATH
    // posts a reading from before its meter was registered; CS never measures import and
    // export at the same time; HIST posts, then the bridge suspends it before attesting.
    meter("CHEM")
        .post(&hex("CHEM"), Some(1_000), Some(1_000), wall - 2 * 86_400)
        .await;
    meter("MATH")
        .post(&hex("MATH"), Some(2_000), Some(3_000), registered_at - 600)
        .await;
    let mut cs = meter("CS");
    cs.post(&hex("CS"), Some(4_000), None, start).await;
    cs.post(&hex("CS"), None, Some(4_000), start + 30).await;
    meter("HIST")
        .post(&hex("HIST"), Some(500), Some(600), start)
        .await;
    site.bridge
        .service
        .directory
        .set_active(&site.lfdi("HIST"), false, wall);

    let (mut eng, mut phys, mut art, mut bio) =
        (meter("ENG"), meter("PHYS"), meter("ART"), meter("BIO"));
    let mut applied_batches = 0u64;
    let mut skipped = Vec::new();
    for k in 0..20i64 {
        let t = start + 60 * k;
        // ENG: honest, every minute, 400 Wh exported a minute.
        let status = eng
            .post(
                &hex("ENG"),
                Some(10_000 + 100 * k),
                Some(20_000 + 400 * k),
                t,
            )
            .await;
        assert!(status == 201 || status == 204, "ENG {k}: {status}");
        // PHYS: a burst of 12 posts 5 seconds apart (36 kW, within its 57 kW).
        for j in 0..12 {
            phys.post(
                &hex("PHYS"),
                Some(5_000),
                Some(7_000 + 600 * k + 50 * j),
                t + 5 * j,
            )
            .await;
        }
        // ART: every minute claims a full battery more export than the last.
        art.post(&hex("ART"), Some(1_000), Some(1_000 + 25_000 * k), t)
            .await;
        // BIO: suspended on chain, honest readings.
        bio.post(&hex("BIO"), Some(1_000 + 10 * k), Some(1_000 + 10 * k), t)
            .await;
        // The attestor signs what it can; the keeper applies every batch.
        while let Some(batch) = site
            .bridge
            .attestor
            .attest_once(bridge::server::now())
            .unwrap()
        {
            let ixs = instructions(&env, &batch);
            let (result, logs) = env.send_with_logs(&ixs, &[]).await;
            result.unwrap_or_else(|e| {
                panic!("batch {} did not apply: {e:?}\n{logs:#?}", batch.sequence)
            });
            let applied = events::<BatchApplied>(&logs);
            assert_eq!(applied[0].sequence, batch.sequence);
            assert_eq!(sep2::hex(&applied[0].hash), batch.hash);
            skipped.extend(events::<ReadingSkipped>(&logs));
            applied_batches += 1;
            site.bridge.attestor.acknowledge(batch.sequence).unwrap();
        }
    }
    assert!(applied_batches >= 10, "{applied_batches} batches");
    let config: oracle::OracleConfig = env.zero_copy(oracle_ix::config_address()).await;
    assert_eq!(config.last_sequence, applied_batches);

    // The only skipped readings are BIO's: suspended on chain, unknown to the bridge.
    assert!(!skipped.is_empty());
    for s in &skipped {
        assert_eq!(s.lfdi, site.lfdi("BIO"));
        assert_eq!(s.reason, u32::from(OracleError::MeterNotActive));
    }

    // ENG: every minute after its first attested reading is verified.
    let eng_state = state(&mut env, &site, "ENG").await;
    assert_eq!(eng_state.baselines, 1);
    assert_eq!(eng_state.export_wh, 20_000 + 400 * 19);
    assert_eq!(eng_state.verified_export_wh, 400 * 19);
    assert_eq!(eng_state.verified_import_wh, 100 * 19);
    // PHYS: one reading a minute at most, all of its export after the first.
    let phys_state = state(&mut env, &site, "PHYS").await;
    assert_eq!(phys_state.verified_export_wh, phys_state.export_wh - 7_550);
    assert_eq!(phys_state.reading_count, 20);
    // ART: nothing beyond its baseline is plausible.
    let art_state = state(&mut env, &site, "ART").await;
    assert_eq!(
        (art_state.reading_count, art_state.verified_export_wh),
        (1, 0)
    );
    // CHEM (stale), MATH (before registration), CS (never paired), HIST (suspended at the
    // bridge), BIO (suspended on chain): nothing on chain.
    for code in ["CHEM", "MATH", "CS", "HIST", "BIO"] {
        assert_eq!(
            state(&mut env, &site, code).await.reading_count,
            0,
            "{code}"
        );
    }
    assert_eq!(lfdis.len(), 25);
    site.bridge.shutdown().await;
}

async fn state(env: &mut TestEnv, site: &Site, code: &str) -> MeterState {
    env.zero_copy(meter_state_address(&site.lfdi(code))).await
}
