//! The keeper reaches a bridge on another host: the bridge serves its keeper interface over
//! TLS (`keeper_tls`) on a non-loopback address, the keeper checks the bridge's certificate
//! against the campus CA and the name it was told, and the bearer token still decides.
use std::net::SocketAddr;

use base64::Engine;
use bridge::config::BridgeConfig;
use certs::Layout;
use keeper::bridge_api::BridgeClient;
use keeper::config::KeeperConfig;
use sdk::CampusConfig;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn campus() -> CampusConfig {
    CampusConfig::load(&CampusConfig::in_repository()).unwrap()
}

#[tokio::test]
async fn the_keeper_reaches_a_bridge_off_loopback_over_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("pki"));
    let name = "bridge.campus.example";
    // The PKI as made for a bridge on one host, then its certificate re-issued to name the
    // host the keeper reaches it by.
    certs::ensure_pki(&layout, &campus()).unwrap();
    let pki = certs::ensure_pki_with(&layout, &campus(), &[name.to_string()]).unwrap();
    assert_eq!(pki.bridge, certs::Provenance::Reissued);
    let config = BridgeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        // Every interface: what a bridge serving a keeper on another host listens on.
        keeper_listen: "0.0.0.0:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        keeper_tls: true,
        data_dir: dir.path().join("data"),
        pki_dir: layout.dir.clone(),
        campus_config: CampusConfig::in_repository(),
        ..BridgeConfig::default()
    };
    let running = bridge::server::start(&config).await.unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], running.keeper_addr.port()));
    let token = running.keeper_token.clone();
    let attestor = B64.encode(running.attestor.public_key());
    let ca_pem = std::fs::read_to_string(layout.ca_cert()).unwrap();

    // The keeper as its configuration makes it: token file, campus CA, the bridge's name.
    let keeper_config = KeeperConfig {
        bridge: addr,
        bridge_token_file: config.keeper_token_path(),
        bridge_ca: Some(layout.ca_cert()),
        bridge_server_name: Some(name.to_string()),
        ..KeeperConfig::default()
    };
    keeper_config.validate().unwrap();
    let keeper = keeper_config.bridge_client().unwrap();
    assert!(keeper.is_tls());
    assert_eq!(keeper.status().await.unwrap().attestor, attestor);
    assert!(keeper.batches(10).await.unwrap().is_empty());
    // A request with a body (the registry's meters) over TLS: none known, none changed.
    let report = keeper.sync_meters(&[]).await.unwrap();
    assert_eq!((report.added, report.changed), (0, 0));

    // By address: the certificate names 127.0.0.1 too.
    let by_address = BridgeClient::with_tls(addr, token.clone(), &ca_pem, None).unwrap();
    assert_eq!(by_address.status().await.unwrap().attestor, attestor);

    // TLS does not replace the token.
    let wrong_token = BridgeClient::with_tls(addr, "x".repeat(64), &ca_pem, Some(name)).unwrap();
    let refused = format!("{:#}", wrong_token.status().await.unwrap_err());
    assert!(refused.contains("401"), "{refused}");

    // A name the certificate does not carry.
    let elsewhere =
        BridgeClient::with_tls(addr, token.clone(), &ca_pem, Some("other.campus.example")).unwrap();
    let refused = format!("{:#}", elsewhere.status().await.unwrap_err());
    assert!(refused.contains("NotValidForName"), "{refused}");
    assert!(
        refused.contains("does not name \"other.campus.example\"")
            && refused.contains("bridge_server_name"),
        "the operator is told what to change: {refused}"
    );

    // A certificate from another CA: the keeper refuses the bridge (a machine in the middle).
    let other = tempfile::tempdir().unwrap();
    let other_pki = certs::ensure_pki(&Layout::new(other.path()), &campus()).unwrap();
    let other_ca = std::fs::read_to_string(other_pki.layout.ca_cert()).unwrap();
    let stranger = BridgeClient::with_tls(addr, token.clone(), &other_ca, Some(name)).unwrap();
    let refused = format!("{:#}", stranger.status().await.unwrap_err());
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    assert!(refused.contains("bridge_ca"), "{refused}");

    // Plain HTTP to the TLS interface: the bridge takes it for a failed handshake and
    // answers no HTTP at all (no status, so nothing was served).
    let plain = BridgeClient::new(addr, token.clone());
    assert!(!plain.is_tls());
    let refused = format!("{:#}", plain.status().await.unwrap_err());
    assert!(!refused.contains("bridge status: HTTP"), "{refused}");

    // The keeper's settings never send the token in clear off loopback, however made.
    let clear = KeeperConfig {
        bridge: "10.20.0.5:8444".parse().unwrap(),
        bridge_token_file: config.keeper_token_path(),
        ..KeeperConfig::default()
    };
    let refused = format!("{:#}", clear.bridge_client().unwrap_err());
    assert!(refused.contains("bridge_ca is not set"), "{refused}");

    // The interface still serves after all of that.
    assert_eq!(keeper.status().await.unwrap().attestor, attestor);
    running.shutdown().await;
}

#[tokio::test]
async fn a_keeper_over_tls_to_a_plain_interface_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("pki"));
    certs::ensure_pki(&layout, &campus()).unwrap();
    let config = BridgeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        keeper_listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        pki_dir: layout.dir.clone(),
        campus_config: CampusConfig::in_repository(),
        ..BridgeConfig::default()
    };
    let running = bridge::server::start(&config).await.unwrap();
    let ca_pem = std::fs::read_to_string(layout.ca_cert()).unwrap();
    let tls = BridgeClient::with_tls(
        running.keeper_addr,
        running.keeper_token.clone(),
        &ca_pem,
        None,
    )
    .unwrap();
    let refused = format!("{:#}", tls.status().await.unwrap_err());
    assert!(refused.contains("TLS handshake"), "{refused}");
    // The plain client on loopback works.
    let plain = BridgeClient::new(running.keeper_addr, running.keeper_token.clone());
    assert!(plain.status().await.is_ok());
    running.shutdown().await;
}
