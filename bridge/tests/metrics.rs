//! The bridge's `/metrics`, `/ready` and `/health`: what the meters' traffic shows there,
//! and the per-device connection limit and the retention check it counts.
mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on the metrics listener: (status, body).
async fn scrape(b: &TestBridge, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(b.running.metrics_addr)
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

/// The value of the sample named exactly `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn readings_refusals_routes_buildings_and_certificates_are_counted() {
    let b = TestBridge::start().await;
    let (status, ready) = scrape(&b, "/ready").await;
    assert_eq!((status, ready.as_str()), (200, "ready\n"));
    assert_eq!(scrape(&b, "/health").await.0, 200);

    let t0 = now() - 600;
    let mut eng = b.meter("ENG");
    let site = mup_xml(
        &b.lfdi_hex("ENG"),
        "0A01",
        "03",
        vec![mmr("E1", 1, 10_000, t0, true), mmr("E2", 19, 500, t0, true)],
    );
    let location = eng.post("/mup", site).await.unwrap().location.unwrap();
    let next = mmr_list_xml(vec![
        mmr("E1", 1, 10_100, t0 + 300, false),
        mmr("E2", 19, 600, t0 + 300, false),
    ]);
    assert_eq!(eng.post(&location, next.clone()).await.unwrap().status, 204);
    // The same post again (a lost reply): accepted, not counted twice.
    assert_eq!(eng.post(&location, next).await.unwrap().status, 204);
    // A register that went down, and a reading older than the retention window: 400.
    let down = mmr_list_xml(vec![mmr("E1", 1, 9_000, t0 + 400, false)]);
    assert_eq!(eng.post(&location, down).await.unwrap().status, 400);
    let ancient = now() - 31 * 86_400;
    let old = mmr_list_xml(vec![mmr("E1", 1, 9_000, ancient, false)]);
    let refused = eng.post(&location, old).await.unwrap();
    assert_eq!(refused.status, 400);
    assert_eq!(
        eng.post(&location, "<nope".into()).await.unwrap().status,
        400
    );

    let (status, text) = scrape(&b, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        sample(&text, "gridtokenx_bridge_readings_accepted_total"),
        Some(4.0),
        "{text}"
    );
    for (reason, n) in [
        ("register_decreased", 1.0),
        ("older_than_retention", 1.0),
        ("invalid_document", 1.0),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!("gridtokenx_bridge_posts_refused_total{{reason=\"{reason}\"}}")
            ),
            Some(n),
            "{reason}: {text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "gridtokenx_bridge_http_requests_total{route=\"/mup/{id}\",status=\"400\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "gridtokenx_bridge_http_requests_total{route=\"/mup\",status=\"201\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "gridtokenx_bridge_http_request_duration_seconds_count"
        ),
        Some(6.0)
    );
    assert_eq!(
        sample(
            &text,
            "gridtokenx_bridge_last_reading_timestamp_seconds{building=\"ENG\"}"
        ),
        Some((t0 + 300) as f64)
    );
    // A building that never posted shows the bridge's start: counted silent all the same.
    let phys = sample(
        &text,
        "gridtokenx_bridge_last_reading_timestamp_seconds{building=\"PHYS\"}",
    )
    .unwrap();
    assert!(phys > (now() - 60) as f64 && phys <= now() as f64);
    assert!(
        sample(&text, "gridtokenx_bridge_store_batch_jobs_count").unwrap() >= 3.0,
        "{text}"
    );
    assert!(sample(&text, "gridtokenx_bridge_store_size_bytes").unwrap() > 0.0);
    assert!(sample(&text, "gridtokenx_bridge_store_filesystem_avail_bytes").unwrap() > 0.0);
    assert_eq!(sample(&text, "gridtokenx_bridge_store_failed"), Some(0.0));
    // The generated PKI's CA and server certificate, and (issued for years) no device's.
    let ca = sample(
        &text,
        "gridtokenx_certificate_not_after_timestamp_seconds{role=\"ca\",subject=\"campus\"}",
    )
    .unwrap();
    assert!(ca > (now() + 86_400 * 300) as f64, "{ca}");
    assert!(sample(
        &text,
        "gridtokenx_certificate_not_after_timestamp_seconds{role=\"server\",subject=\"bridge\"}"
    )
    .is_some());
    assert!(!text.contains("role=\"device\""));
    assert!(text.contains("gridtokenx_build_info{component=\"bridge\",version=\""));
    telemetry::assert_promtool_accepts(&text);
    // Every family has its HELP and TYPE, and every counter ends in _total.
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 4, "{line}");
        assert!(text.contains(&format!("# HELP {} ", parts[2])), "{line}");
        if parts[3] == "counter" {
            assert!(parts[2].ends_with("_total"), "{line}");
        }
    }
}

#[tokio::test]
async fn one_device_holds_at_most_its_connections() {
    let b = TestBridge::start_with(|c| c.max_connections_per_device = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut m = b.meter("ENG");
        assert_eq!(m.get("/dcap").await.unwrap().status, 200);
        held.push(m);
    }
    // A third connection with the same certificate is closed after its handshake.
    let mut third = b.meter("ENG");
    assert!(third.get("/dcap").await.is_err());
    // Another device is not affected.
    let mut phys = b.meter("PHYS");
    assert_eq!(phys.get("/dcap").await.unwrap().status, 200);
    let (_, text) = scrape(&b, "/metrics").await;
    assert_eq!(
        sample(&text, "gridtokenx_bridge_device_connections_refused_total"),
        Some(1.0)
    );
    // A slot comes back when a connection closes.
    drop(held.pop());
    let mut again = b.meter("ENG");
    let mut ok = false;
    for _ in 0..50 {
        if again.get("/dcap").await.is_ok_and(|r| r.status == 200) {
            ok = true;
            break;
        }
        again = b.meter("ENG");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "the slot of a closed connection is given back");
}

/// A device certificate that expires within 30 days is exposed from the start (from the PKI
/// directory, before the meter connects); a suspended meter's is not.
#[tokio::test]
async fn an_expiring_device_certificate_is_exposed_until_its_meter_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let pki = certs::ensure_pki(&certs::Layout::new(&config.pki_dir), &campus()).unwrap();
    let now_t = time::OffsetDateTime::now_utc();
    let expires = now_t + time::Duration::days(10);
    let (der, key) = certs::issue_device_certificate(
        &pki.layout,
        b"GTX-0001-RENEW",
        now_t - time::Duration::days(1),
        expires,
    )
    .unwrap();
    write_pem(&pki.layout.meter_cert("ENG"), &der);
    std::fs::write(pki.layout.meter_key("ENG"), key).unwrap();
    let running = bridge::server::start(&config).await.unwrap();
    let b = TestBridge {
        running,
        pki,
        config,
        dir,
    };
    let series =
        "gridtokenx_certificate_not_after_timestamp_seconds{role=\"device\",subject=\"ENG\"}";
    let (_, text) = scrape(&b, "/metrics").await;
    assert_eq!(sample(&text, series), Some(expires.unix_timestamp() as f64));
    assert_eq!(text.matches("role=\"device\"").count(), 1, "{text}");
    // It connects with it (the same expiry, as presented).
    assert_eq!(b.meter("ENG").get("/dcap").await.unwrap().status, 200);
    let mut operator = b.config.clone();
    operator.keeper_listen = b.running.keeper_addr;
    bridge::admin::deny(&operator, "ENG", "retired")
        .await
        .unwrap();
    let (_, text) = scrape(&b, "/metrics").await;
    assert_eq!(sample(&text, series), None);
    assert_eq!(sample(&text, "gridtokenx_bridge_meters_denied"), Some(1.0));
}

#[tokio::test]
async fn not_ready_says_why() {
    let b = TestBridge::start_with(|c| c.cluster_genesis_hash = None).await;
    let (status, body) = scrape(&b, "/ready").await;
    assert_eq!(status, 503);
    assert!(body.contains("cluster_genesis_hash is not set"), "{body}");
    assert_eq!(scrape(&b, "/health").await.0, 200);
}
