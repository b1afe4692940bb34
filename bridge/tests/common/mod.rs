//! Starting a bridge on loopback with a fresh campus PKI, and meters that talk to it.
#![allow(dead_code)]
use std::path::PathBuf;

use bridge::config::BridgeConfig;
use bridge::server::RunningBridge;
use certs::{ensure_pki, Layout, Pki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sdk::CampusConfig;
use sep2::{
    self, DateTimeInterval, MirrorMeterReading, MirrorMeterReadingList, MirrorUsagePoint, Reading,
    ReadingType,
};
use simulator::client::{client_config, MeterClient, Suites};

pub struct TestBridge {
    pub running: RunningBridge,
    pub pki: Pki,
    pub config: BridgeConfig,
    pub dir: tempfile::TempDir,
}

/// The cluster the test bridge attests for (a stand-in genesis hash).
pub fn test_cluster() -> anchor_lang::prelude::Pubkey {
    anchor_lang::prelude::Pubkey::new_from_array(*b"gridtokenx test cluster genesis.")
}

pub fn campus() -> CampusConfig {
    CampusConfig::load(&CampusConfig::in_repository()).unwrap()
}

pub fn test_config(dir: &std::path::Path) -> BridgeConfig {
    BridgeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        keeper_listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        pki_dir: dir.join("pki"),
        campus_config: CampusConfig::in_repository(),
        // Tests attest by hand.
        attest_interval_s: 3_600,
        cluster_genesis_hash: Some(test_cluster().to_string()),
        ..BridgeConfig::default()
    }
}

impl TestBridge {
    pub async fn start() -> TestBridge {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test configuration as `adjust` leaves it.
    pub async fn start_with(adjust: impl FnOnce(&mut BridgeConfig)) -> TestBridge {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let pki = ensure_pki(&Layout::new(&config.pki_dir), &campus()).unwrap();
        let running = bridge::server::start(&config).await.unwrap();
        TestBridge {
            running,
            pki,
            config,
            dir,
        }
    }

    /// Stops and starts again on the same data directory and ports.
    pub async fn restart(self) -> TestBridge {
        let TestBridge {
            running,
            pki,
            mut config,
            dir,
        } = self;
        // Same ports, so that clients find the bridge again.
        config.listen = running.meters_addr;
        config.keeper_listen = running.keeper_addr;
        running.shutdown().await;
        let running = bridge::server::start(&config).await.unwrap();
        TestBridge {
            running,
            pki,
            config,
            dir,
        }
    }

    pub fn ca(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.pki.layout.ca_cert()).unwrap()
    }

    pub fn meter(&self, code: &str) -> MeterClient {
        self.meter_with(code, Suites::Default)
    }

    pub fn meter_with(&self, code: &str, suites: Suites) -> MeterClient {
        let layout = &self.pki.layout;
        self.client(layout.meter_cert(code), layout.meter_key(code), suites)
    }

    pub fn client(&self, cert: PathBuf, key: PathBuf, suites: Suites) -> MeterClient {
        let cert = CertificateDer::from_pem_file(cert).unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        MeterClient::new(
            client_config(self.ca(), cert, key, suites).unwrap(),
            self.running.meters_addr,
        )
    }

    pub fn lfdi_hex(&self, code: &str) -> String {
        let m = self.pki.meters.iter().find(|m| m.code == code).unwrap();
        sdk::identity::lfdi_hex(&m.lfdi)
    }
}

/// The bridge binary's operator commands (`bridge deny`, `bridge dr`, ...) against a
/// running bridge: its keeper interface and directories.
pub struct Operator {
    keeper_addr: std::net::SocketAddr,
    data_dir: PathBuf,
    pki_dir: PathBuf,
}

impl Operator {
    pub fn of(b: &TestBridge) -> Operator {
        Operator {
            keeper_addr: b.running.keeper_addr,
            data_dir: b.config.data_dir.clone(),
            pki_dir: b.config.pki_dir.clone(),
        }
    }

    /// Runs `bridge ARGS`; it blocks its thread (call it in `block_in_place` while the
    /// bridge runs on the test's runtime).
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_bridge"))
            .args(args)
            .env(
                "GRIDTOKENX_BRIDGE_KEEPER_LISTEN",
                self.keeper_addr.to_string(),
            )
            .env("GRIDTOKENX_BRIDGE_DATA_DIR", &self.data_dir)
            .env("GRIDTOKENX_BRIDGE_PKI_DIR", &self.pki_dir)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    }
}

/// A command's standard output and error, together.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn now() -> i64 {
    bridge::server::now()
}

pub fn reading_type(flow: u8) -> ReadingType {
    simulator::meter::cumulative_reading_type(flow)
}

/// A MirrorMeterReading with one cumulative reading ending at `end`.
pub fn mmr(mrid: &str, flow: u8, wh: i64, end: i64, with_type: bool) -> MirrorMeterReading {
    MirrorMeterReading {
        xmlns: None,
        mrid: mrid.into(),
        description: Some(if flow == 1 {
            "import".into()
        } else {
            "export".into()
        }),
        reading: Some(Reading {
            value: Some(wh),
            time_period: Some(DateTimeInterval {
                duration: 60,
                start: end - 60,
            }),
            ..Reading::default()
        }),
        reading_type: with_type.then(|| reading_type(flow)),
        ..MirrorMeterReading::default()
    }
}

/// A site MirrorUsagePoint for `lfdi` with import and export MirrorMeterReadings.
pub fn mup_xml(
    lfdi: &str,
    mrid: &str,
    role_flags: &str,
    readings: Vec<MirrorMeterReading>,
) -> String {
    let mup = MirrorUsagePoint {
        xmlns: sep2::with_ns(),
        mrid: mrid.into(),
        description: Some("site".into()),
        role_flags: role_flags.into(),
        service_category_kind: 0,
        status: 1,
        device_lfdi: lfdi.into(),
        mirror_meter_readings: readings,
        ..MirrorUsagePoint::default()
    };
    sep2::to_xml("MirrorUsagePoint", &mup)
}

pub fn mmr_list_xml(readings: Vec<MirrorMeterReading>) -> String {
    sep2::to_xml(
        "MirrorMeterReadingList",
        &MirrorMeterReadingList {
            xmlns: sep2::with_ns(),
            readings,
        },
    )
}

/// A mutual-TLS connection of meter `code`, without HTTP on top.
pub async fn tls_connection(
    b: &TestBridge,
    code: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let layout = &b.pki.layout;
    let config = client_config(
        b.ca(),
        CertificateDer::from_pem_file(layout.meter_cert(code)).unwrap(),
        PrivateKeyDer::from_pem_file(layout.meter_key(code)).unwrap(),
        Suites::Default,
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(b.running.meters_addr)
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

/// Sends `request` (raw HTTP/1.1, "Connection: close" added) as meter `code` and returns
/// the raw response.
pub async fn raw_request(b: &TestBridge, code: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = tls_connection(b, code).await;
    let request = request.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a DER certificate as PEM.
pub fn write_pem(path: &std::path::Path, der: &[u8]) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    std::fs::write(
        path,
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        ),
    )
    .unwrap();
}
