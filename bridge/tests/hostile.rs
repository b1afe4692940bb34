//! Hostile networks: a request head or body sent a byte at a time (slow loris), a flood of
//! TCP connections that never finish their TLS handshake, and the start-up refusals that
//! protect the store (the attestor key gone while signed batches remain, a short keeper
//! token, a keeper interface off loopback without TLS), and the keeper interface's limits
//! (a bad token closes the connection; connections per address are capped).
mod common;

use std::time::{Duration, Instant};

use bridge::config::BridgeConfig;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes (or errors); returns what it sent and when it closed.
async fn read_to_close<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
    (
        String::from_utf8_lossy(&all).into_owned(),
        started.elapsed(),
    )
}

fn short_timeouts(c: &mut BridgeConfig) {
    c.post_rate_s = 2;
    c.idle_timeout_s = 3;
    c.body_timeout_s = 2;
    c.handshake_timeout_s = 2;
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let b = TestBridge::start_with(short_timeouts).await;
    let mut tls = tls_connection(&b, "ENG").await;
    tls.write_all(b"GET /dcap HTTP/1.1\r\nHost: bridge\r\n")
        .await
        .unwrap();
    let (_, after) = read_to_close(&mut tls, Duration::from_secs(15)).await;
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(8),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout_but_lives_past_a_post_period() {
    let b = TestBridge::start_with(short_timeouts).await;
    let mut tls = tls_connection(&b, "ENG").await;
    let started = Instant::now();
    let (_, _) = read_to_close(&mut tls, Duration::from_secs(15)).await;
    let after = started.elapsed();
    assert!(
        after > Duration::from_secs(2) && after < Duration::from_secs(8),
        "idle connection closed after {after:?} (post rate 2 s, idle timeout 3 s)"
    );
}

#[tokio::test]
async fn a_body_sent_too_slowly_gets_408_and_the_connection_closes() {
    let b = TestBridge::start_with(short_timeouts).await;
    let mut tls = tls_connection(&b, "ENG").await;
    tls.write_all(
        b"POST /mup HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/sep+xml\r\nContent-Length: 1000\r\n\r\n<MirrorUsagePoint",
    )
    .await
    .unwrap();
    let (reply, after) = read_to_close(&mut tls, Duration::from_secs(15)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(after < Duration::from_secs(8), "{after:?}");
    assert_eq!(
        b.running
            .service
            .store
            .read()
            .unwrap()
            .mirror_count()
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_handshake_flood_from_one_address_is_refused_beyond_its_cap_and_meters_get_in_after() {
    let b = TestBridge::start_with(|c| {
        short_timeouts(c);
        c.max_handshakes_per_ip = 4;
    })
    .await;
    // Four connections that never say a word hold the address's handshake slots...
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(b.running.meters_addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a fifth is closed at once, without a handshake.
    let mut fifth = TcpStream::connect(b.running.meters_addr).await.unwrap();
    let (_, after) = read_to_close(&mut fifth, Duration::from_secs(5)).await;
    assert!(after < Duration::from_secs(1), "{after:?}");
    // The handshake timeout frees the slots; a meter then connects and is served.
    for h in &mut held {
        let (_, after) = read_to_close(h, Duration::from_secs(10)).await;
        assert!(after < Duration::from_secs(5), "{after:?}");
    }
    let mut eng = b.meter("ENG");
    let r = eng.request("GET", "/dcap", None).await.unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_missing_attestor_key_beside_signed_batches_stops_the_start() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let lfdi = b.lfdi_hex("ENG");
    let t = now() - 120;
    let xml = mup_xml(
        &lfdi,
        "01",
        "03",
        vec![mmr("0A", 1, 100, t, true), mmr("0B", 19, 50, t, true)],
    );
    assert_eq!(eng.post("/mup", xml).await.unwrap().status, 201);
    assert!(b.running.attestor.attest_once(now()).unwrap().is_some());
    let config = b.config.clone();
    let key = config.attestor_key_path();
    let TestBridge { running, dir, .. } = b;
    running.shutdown().await;
    std::fs::remove_file(&key).unwrap();
    let refused = match bridge::server::start(&config).await {
        Ok(_) => panic!("started without its attestor key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(refused.contains("signed batches"), "{refused}");
    assert!(!key.exists(), "no new key was made");
    drop(dir);
}

#[tokio::test]
async fn a_short_keeper_token_and_a_public_keeper_interface_without_tls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    certs::ensure_pki(&certs::Layout::new(&config.pki_dir), &campus()).unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::write(config.keeper_token_path(), "short").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        config.keeper_token_path(),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let refused = match bridge::server::start(&config).await {
        Ok(_) => panic!("started with a 5-character keeper token"),
        Err(e) => format!("{e:#}"),
    };
    assert!(refused.contains("shorter than 32"), "{refused}");

    config.keeper_listen = "0.0.0.0:8444".parse().unwrap();
    let refused = config.validate().unwrap_err().to_string();
    assert!(
        refused.contains("not a loopback address and keeper_tls is off"),
        "{refused}"
    );
    // Explicitly allowed with TLS (tests/tests/keeper_tls.rs serves it).
    config.keeper_tls = true;
    config.validate().unwrap();
}

/// One raw HTTP/1.1 request on a new connection to the keeper interface: the answer, read
/// until the bridge closes the connection.
async fn keeper_raw(b: &TestBridge, request: &str) -> String {
    let mut stream = TcpStream::connect(b.running.keeper_addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut stream, Duration::from_secs(5)).await.0
}

#[tokio::test]
async fn the_keeper_interface_closes_on_a_bad_token_and_caps_connections_per_address() {
    let b = TestBridge::start().await;
    // No token or a wrong one: 401, and the connection closes at once (a keep-alive
    // request would otherwise hold a slot until the idle timeout).
    for auth in ["", "Authorization: Bearer not-the-token\r\n"] {
        let answer = keeper_raw(
            &b,
            &format!("GET /v1/status HTTP/1.1\r\nHost: bridge\r\n{auth}\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }

    // Connections from one address: the first KEEPER_CONNECTIONS_PER_IP are held (idle),
    // the next is closed without an answer.
    let mut idle = Vec::new();
    for _ in 0..bridge::keeper_api::KEEPER_CONNECTIONS_PER_IP {
        idle.push(TcpStream::connect(b.running.keeper_addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = b.running.keeper_token.clone();
    let status = format!(
        "GET /v1/status HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let refused = keeper_raw(&b, &status).await;
    assert_eq!(refused, "", "closed without an answer");
    // One of them goes: the keeper gets in again.
    idle.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = keeper_raw(&b, &status).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
