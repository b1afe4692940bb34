//! The console's listener: what it answers before and after a snapshot, to unknown paths
//! and other methods, and the event stream; and its settings.
use std::net::SocketAddr;
use std::time::Duration;

use console::model::*;
use console::ConsoleConfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_lowercase(),
        body.to_string(),
    )
}

fn snapshot(version: u64) -> Snapshot {
    Snapshot {
        version,
        campus: Campus {
            name: "Test".into(),
            meters: 2,
            ..Campus::default()
        },
        buildings: vec![
            Building {
                code: "ENG".into(),
                verified_export_wh: 1_234,
                ..Building::default()
            },
            Building {
                code: "DORM_001".into(),
                ..Building::default()
            },
            Building {
                code: "#3".into(),
                ..Building::default()
            },
        ],
        ..Snapshot::default()
    }
}

#[tokio::test]
async fn answers_from_the_published_snapshot_and_refuses_what_it_does_not_serve() {
    let running = console::server::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = running.addr;
    // Before the first snapshot: the page and health answer, the API and readiness do not.
    assert_eq!(request(addr, "GET", "/health").await.0, 200);
    assert_eq!(request(addr, "GET", "/ready").await.0, 503);
    let (status, _, body) = request(addr, "GET", "/api/v1/snapshot").await;
    assert_eq!(status, 503);
    assert!(body.contains("has not read the chain yet"), "{body}");
    let (status, head, body) = request(addr, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(body.contains("<script src=\"/app.js\">"));
    assert_eq!(request(addr, "GET", "/app.js").await.0, 200);
    assert_eq!(request(addr, "GET", "/style.css").await.0, 200);

    running.publisher.publish(&snapshot(7)).unwrap();
    assert_eq!(running.publisher.version(), 7);
    assert_eq!(request(addr, "GET", "/ready").await.0, 200);
    let (status, head, body) = request(addr, "GET", "/api/v1/snapshot").await;
    assert_eq!(status, 200);
    assert!(head.contains("x-snapshot-version: 7"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["campus"]["name"], "Test");
    assert_eq!(v["buildings"][0]["verified_export_wh"], 1_234);
    // Each part on its own route; a building by its code, any case, a trailing slash.
    for part in [
        "campus",
        "buildings",
        "intervals",
        "orders",
        "fills",
        "meters",
        "batches",
        "proposals",
    ] {
        let (status, _, body) = request(addr, "GET", &format!("/api/v1/{part}")).await;
        assert_eq!(status, 200, "{part}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            v[part],
            "{part}"
        );
    }
    let (status, _, body) = request(addr, "GET", "/api/v1/buildings/dorm_001/").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
        "DORM_001"
    );
    // Unknown things, other methods.
    let (status, _, body) = request(addr, "GET", "/api/v1/buildings/NOPE").await;
    assert_eq!(status, 404);
    assert!(body.contains("no building \\\"NOPE\\\""), "{body}");
    assert_eq!(request(addr, "GET", "/api/v1/everything").await.0, 404);
    assert_eq!(request(addr, "GET", "/api/v1/campus/extra").await.0, 404);
    assert_eq!(request(addr, "GET", "/etc/passwd").await.0, 404);
    // A meter without a code is named by its index, `#3`, which travels escaped.
    let (status, _, body) = request(addr, "GET", "/api/v1/buildings/%233").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"code\":\"#3\""), "{body}");
    // HEAD: the head without the body.
    let (status, head, body) = request(addr, "HEAD", "/api/v1/campus").await;
    assert_eq!(status, 200);
    assert!(head.contains("x-snapshot-version: 7"), "{head}");
    assert!(body.is_empty(), "{body}");
    let (status, head, body) = request(addr, "POST", "/api/v1/snapshot").await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, head"), "{head}");
    assert!(body.contains("read-only"), "{body}");
    assert_eq!(
        request(addr, "DELETE", "/api/v1/buildings/ENG").await.0,
        405
    );
    // A new snapshot replaces the old at once.
    running.publisher.publish(&snapshot(8)).unwrap();
    let (_, head, _) = request(addr, "GET", "/api/v1/campus").await;
    assert!(head.contains("x-snapshot-version: 8"), "{head}");
}

#[tokio::test]
async fn the_event_stream_sends_the_snapshot_now_and_on_every_publication() {
    let running = console::server::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    running.publisher.publish(&snapshot(1)).unwrap();
    let mut s = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    s.write_all(b"GET /api/v1/events HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(s).lines();
    // The browser is told how soon to reconnect when the stream ends.
    let mut head = Vec::new();
    loop {
        let line = lines.next_line().await.unwrap().unwrap();
        if line.starts_with("retry:") {
            assert_eq!(line, "retry: 2000");
            break;
        }
        head.push(line);
        assert!(head.len() < 20, "no retry line: {head:?}");
    }
    assert!(
        head.iter()
            .any(|l| l.to_lowercase() == "content-type: text/event-stream"),
        "{head:?}"
    );
    let mut next_data = async || loop {
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            return serde_json::from_str::<serde_json::Value>(data).unwrap();
        }
        assert!(
            !line.to_lowercase().starts_with("content-type") || line.contains("text/event-stream"),
            "{line}"
        );
    };
    assert_eq!(next_data().await["version"], 1);
    running.publisher.publish(&snapshot(2)).unwrap();
    let second = next_data().await;
    assert_eq!(second["version"], 2);
    assert_eq!(second["buildings"][0]["code"], "ENG");
}

#[test]
fn settings_come_from_the_file_then_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("console.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\nrpc_url = \"http://10.0.0.5:8899\"\nrefresh_s = 5\n",
    )
    .unwrap();
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let c =
        ConsoleConfig::load(Some(&file), env(&[("GRIDTOKENX_CONSOLE_REFRESH_S", "3")])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(c.rpc_url, "http://10.0.0.5:8899");
    assert_eq!(c.refresh_s, 3);
    assert_eq!(c.silent_after_s, 1_800);
    assert!(c.bridge_client().unwrap().is_none());
    assert!(c.names().unwrap().is_empty());
    // Defaults without a file: loopback.
    let d = ConsoleConfig::load(None, env(&[])).unwrap();
    assert!(d.listen.ip().is_loopback());
    // Mistakes are named.
    let err = |pairs: &[(&str, &str)]| {
        format!("{:#}", ConsoleConfig::load(None, env(pairs)).unwrap_err())
    };
    assert!(err(&[("GRIDTOKENX_CONSOLE_REFRESH_S", "0")]).contains("refresh_s must be at least 1"));
    assert!(err(&[("GRIDTOKENX_CONSOLE_LISTNE", "x")]).contains("listne"));
    assert!(err(&[("GRIDTOKENX_CONSOLE_BRIDGE", "127.0.0.1:9644")])
        .contains("bridge and bridge_token_file go together"));
    assert!(err(&[("GRIDTOKENX_CONSOLE_PKI_DIR", "/x")])
        .contains("campus_config and pki_dir go together"));
    // A bridge token that is not there.
    let c = ConsoleConfig::load(
        None,
        env(&[
            ("GRIDTOKENX_CONSOLE_BRIDGE", "127.0.0.1:9644"),
            ("GRIDTOKENX_CONSOLE_BRIDGE_TOKEN_FILE", "/nonexistent/token"),
        ]),
    )
    .unwrap();
    assert!(format!("{:#}", c.bridge_client().unwrap_err()).contains("/nonexistent/token"));
}

#[test]
fn the_example_settings_load() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console.example.toml");
    let c = ConsoleConfig::load(Some(&path), Vec::new()).unwrap();
    assert!(c.listen.ip().is_loopback());
}
