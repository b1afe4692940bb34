//! Kill -9 the bridge in the middle of a stream of posts, restart it, and find every reading
//! it acknowledged in the store.
mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bridge::normalize::Flow;
use bridge::store::Store;
use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_bridge(dir: &std::path::Path, port: u16, keeper_port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bridge"))
        .env("GRIDTOKENX_BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("GRIDTOKENX_BRIDGE_METRICS_LISTEN", "127.0.0.1:0")
        .env(
            "GRIDTOKENX_BRIDGE_KEEPER_LISTEN",
            format!("127.0.0.1:{keeper_port}"),
        )
        .env(
            "GRIDTOKENX_BRIDGE_DATA_DIR",
            dir.join("data").to_str().unwrap(),
        )
        .env(
            "GRIDTOKENX_BRIDGE_CAMPUS_CONFIG",
            sdk::CampusConfig::in_repository().to_str().unwrap(),
        )
        .env(
            "GRIDTOKENX_BRIDGE_PKI_DIR",
            dir.join("pki").to_str().unwrap(),
        )
        // The attestor writes too while readings stream in.
        .env("GRIDTOKENX_BRIDGE_ATTEST_INTERVAL_S", "1")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bridge binary")
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "bridge did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_reading_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::ensure_pki(&certs::Layout::new(dir.path().join("pki")), &campus()).unwrap();
    let cfg = test_config(dir.path());
    let ca = rustls::pki_types::CertificateDer::from(
        std::fs::read(pki.layout.ca_cert())
            .map(|pem| {
                certs::pem_to_der(&String::from_utf8(pem).unwrap(), &pki.layout.ca_cert()).unwrap()
            })
            .unwrap(),
    );
    let lfdi = sdk::identity::lfdi_hex(&pki.meters[0].lfdi);
    let t0 = now() - 1_000_000;

    let mut acknowledged: Vec<(i64, i64)> = Vec::new();
    let mut next = 1i64;
    let mut site: Option<String> = None;
    for round in 0..3 {
        let (port, keeper_port) = (free_port(), free_port());
        let mut child = spawn_bridge(dir.path(), port, keeper_port);
        wait_listening(port).await;
        let config = {
            use rustls::pki_types::pem::PemObject;
            let cert =
                rustls::pki_types::CertificateDer::from_pem_file(pki.layout.meter_cert("ENG"))
                    .unwrap();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.layout.meter_key("ENG"))
                .unwrap();
            simulator::client::client_config(
                ca.clone(),
                cert,
                key,
                simulator::client::Suites::Default,
            )
            .unwrap()
        };
        let mut eng = simulator::client::MeterClient::new(
            config,
            format!("127.0.0.1:{port}").parse().unwrap(),
        );
        let location = match &site {
            Some(l) => l.clone(),
            None => {
                let body = mup_xml(
                    &lfdi,
                    "0A01",
                    "03",
                    vec![mmr("E1", 1, 0, t0, true), mmr("E2", 19, 0, t0, true)],
                );
                let r = eng.post("/mup", body).await.unwrap();
                assert_eq!(r.status, 201);
                site = r.location.clone();
                r.location.unwrap()
            }
        };
        // Kill at a different moment each round, while posts are in flight.
        let kill_after = Duration::from_millis(300 + 250 * round);
        let started = Instant::now();
        let killer = tokio::spawn(async move {
            tokio::time::sleep(kill_after).await;
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        });
        loop {
            let t = t0 + next * 60;
            let body = mmr_list_xml(vec![
                mmr("E1", 1, next * 10, t, false),
                mmr("E2", 19, next * 5, t, false),
            ]);
            match eng.post(&location, body).await {
                Ok(r) if r.status == 204 => {
                    acknowledged.push((t, next * 10));
                    next += 1;
                }
                Ok(r) => panic!("unexpected {} {}", r.status, r.body),
                Err(_) => break,
            }
            assert!(started.elapsed() < Duration::from_secs(30));
        }
        killer.await.unwrap();
        // A reading in flight at the kill may or may not have been stored; the next round
        // starts by posting it again, which the bridge accepts once either way.
        let store = Store::open(&cfg.store_path()).expect("store reopens after kill -9");
        let stored: std::collections::HashMap<i64, u64> = store
            .read()
            .unwrap()
            .readings()
            .unwrap()
            .into_iter()
            .filter(|r| r.reading.flow == Flow::Import)
            .map(|r| (i64::from(r.reading.timestamp), r.reading.wh))
            .collect();
        for (t, wh) in &acknowledged {
            assert_eq!(
                stored.get(t),
                Some(&(*wh as u64)),
                "acknowledged reading at {t} lost"
            );
        }
        assert!(
            acknowledged.len() as u64 > round,
            "posts were acknowledged before the kill"
        );
    }
    println!(
        "{} readings acknowledged across 3 kill -9 cycles",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > 10,
        "only {} readings acknowledged",
        acknowledged.len()
    );

    // And a last start serves normally and stops cleanly on SIGTERM.
    let (port, keeper_port) = (free_port(), free_port());
    let child = spawn_bridge(dir.path(), port, keeper_port);
    wait_listening(port).await;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
}
