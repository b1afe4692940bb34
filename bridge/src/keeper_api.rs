//! The keeper's interface to the bridge: HTTP/1.1, every request carrying
//! `Authorization: Bearer <token>` (the token file in the data directory, mode 0600). Plain
//! HTTP on a loopback address; with `keeper_tls`, TLS 1.3 with the bridge's server
//! certificate, on any address (the keeper checks the certificate against the campus CA).
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/status` | `{"attestor": <base64 key>, "oracle_program", "campus"}` |
//! | `GET /v1/batches?limit=N` | `{"batches": [SignedBatch...]}`: unacknowledged, oldest first |
//! | `POST /v1/batches/{sequence}/ack` | 204 once the batch is confirmed on-chain; 404 unknown |
//! | `PUT /v1/meters` `{"meters": [MeterRecord...]}` | the registry's meters (every one): `{"added", "changed", "unregistered"}`; 400 malformed, 413 over 4 MiB |
//!
//! Unacknowledged batches are served again after a restart: they live in the store.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::attestor::{Attestor, B64};
use crate::directory::{RegisteredMeter, SyncReport};
use crate::server::{FailureLog, InFlightPerIp};
use registry::MeterCapacity;

/// Loads the keeper token, creating a random one (mode 0600) on first start.
/// Shortest keeper token accepted (the bridge makes 64 hex digits, 256 bits).
pub const MIN_TOKEN_LEN: usize = 32;

/// Keeper connections served at once (the keeper needs one or two).
pub const MAX_KEEPER_CONNECTIONS: usize = 16;

pub fn load_or_create_token(path: &Path) -> Result<String> {
    if path.exists() {
        let token =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let token = token.trim().to_string();
        anyhow::ensure!(
            token.len() >= MIN_TOKEN_LEN,
            "keeper token {} is shorter than {MIN_TOKEN_LEN} characters: delete it and the \
             bridge makes a new one",
            path.display()
        );
        return Ok(token);
    }
    let bytes: [u8; 32] = rand::random();
    let token = crate::xml::hex(&bytes);
    crate::write_secret(path, &token)?;
    Ok(token)
}

/// Largest `PUT /v1/meters` body (10,000 meters take about 2 MiB).
pub const MAX_METERS_BODY: usize = 4 << 20;

/// A meter as the registry on chain has it, on the wire (`PUT /v1/meters`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MeterRecord {
    /// Hex, either case.
    pub lfdi: String,
    pub index: u16,
    pub active: bool,
    /// The registry's `status_changed_at`, Unix seconds.
    pub since: i64,
    pub generation_w: u64,
    pub storage_wh: u64,
    pub max_import_w: u64,
    pub max_discharge_w: u64,
}

#[derive(serde::Deserialize)]
struct MetersBody {
    meters: Vec<MeterRecord>,
}

impl MeterRecord {
    fn registered(&self) -> Option<RegisteredMeter> {
        Some(RegisteredMeter {
            lfdi: migrations::identity::parse_lfdi_hex(&self.lfdi)?,
            index: self.index,
            capacity: MeterCapacity {
                generation_w: self.generation_w,
                storage_wh: self.storage_wh,
                max_import_w: self.max_import_w,
                max_discharge_w: self.max_discharge_w,
            },
            active: self.active,
            since: self.since,
        })
    }
}

async fn sync_meters(attestor: &Attestor, body: Incoming) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt;
    let bytes = match http_body_util::Limited::new(body, MAX_METERS_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return empty(StatusCode::PAYLOAD_TOO_LARGE),
    };
    let parsed: Result<MetersBody, _> = serde_json::from_slice(&bytes);
    let Ok(parsed) = parsed else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": "expected {\"meters\": [...]}" }),
        );
    };
    let mut registered = Vec::with_capacity(parsed.meters.len());
    for record in &parsed.meters {
        match record.registered() {
            Some(r) => registered.push(r),
            None => {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "error": "an lfdi is not 40 hex digits" }),
                )
            }
        }
    }
    let report = attestor.directory.sync(&registered);
    if report != SyncReport::default() {
        tracing::info!(
            added = report.added,
            changed = report.changed,
            unregistered = report.unregistered,
            "meters synced from the registry"
        );
    }
    json(
        StatusCode::OK,
        serde_json::to_value(report).expect("serializable"),
    )
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("valid response")
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("valid response")
}

/// Compares without stopping at the first difference.
/// Constant-time comparison (the token's length is not secret: 64 hex digits).
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

/// What every request of one keeper connection shares.
struct Connection {
    attestor: Arc<Attestor>,
    token: Arc<String>,
    peer: std::net::SocketAddr,
    failures: Arc<FailureLog>,
}

async fn handle(
    c: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let authorised = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same_token(given.as_bytes(), c.token.as_bytes()));
    if !authorised {
        c.failures.failed(
            c.peer,
            "keeper request without a valid token",
            req.uri().path(),
        );
        // And the connection closes: a peer without the token holds no slot.
        let mut reply = empty(StatusCode::UNAUTHORIZED);
        reply.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return Ok(reply);
    }
    let attestor = &c.attestor;
    let segments: Vec<&str> = req
        .uri()
        .path()
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .collect();
    let reply = match (req.method().as_str(), segments.as_slice()) {
        ("GET", ["v1", "status"]) => json(
            StatusCode::OK,
            serde_json::json!({
                "attestor": B64.encode(attestor.public_key()),
                "oracle_program": attestor.settings.oracle_program.to_string(),
                "campus": attestor.settings.campus.to_string(),
            }),
        ),
        ("GET", ["v1", "batches"]) => {
            let limit = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("limit=")))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(100);
            let a = attestor.clone();
            match tokio::task::spawn_blocking(move || a.store.read()?.unacknowledged(limit)).await {
                Ok(Ok(batches)) => json(StatusCode::OK, serde_json::json!({ "batches": batches })),
                _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        ("PUT", ["v1", "meters"]) => sync_meters(attestor, req.into_body()).await,
        ("POST", ["v1", "batches", sequence, "ack"]) => match sequence.parse::<u64>() {
            Ok(sequence) => {
                let a = attestor.clone();
                match attestor.store.direct(move || a.acknowledge(sequence)).await {
                    Ok(Ok(true)) => {
                        tracing::info!(sequence, "batch acknowledged by the keeper");
                        empty(StatusCode::NO_CONTENT)
                    }
                    Ok(Ok(false)) => empty(StatusCode::NOT_FOUND),
                    _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
            Err(_) => empty(StatusCode::NOT_FOUND),
        },
        (_, ["v1", "status"])
        | (_, ["v1", "batches"])
        | (_, ["v1", "meters"])
        | (_, ["v1", "batches", _, "ack"]) => empty(StatusCode::METHOD_NOT_ALLOWED),
        _ => empty(StatusCode::NOT_FOUND),
    };
    Ok(reply)
}

/// Serves the keeper interface on `listener`: over TLS with `acceptor` (`keeper_tls`), else
/// plain HTTP (loopback only, as the configuration enforces).
pub async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    attestor: Arc<Attestor>,
    token: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let token = Arc::new(token);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_KEEPER_CONNECTIONS));
    let per_ip = Arc::new(InFlightPerIp::default());
    let failures = Arc::new(FailureLog::default());
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore open"),
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(10);
                    a
                }
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "keeper interface: accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let connection = Arc::new(Connection {
            attestor: attestor.clone(),
            token: token.clone(),
            peer,
            failures: failures.clone(),
        });
        let (acceptor, per_ip) = (acceptor.clone(), per_ip.clone());
        tokio::spawn(async move {
            let _permit = permit;
            // One address holds at most a few of the slots, handshake and all.
            let Some(_slot) = per_ip.try_take(peer.ip(), KEEPER_CONNECTIONS_PER_IP) else {
                connection.failures.failed(
                    peer,
                    "keeper interface: too many connections from this address",
                    "closed",
                );
                return;
            };
            match acceptor {
                None => serve_connection(stream, connection).await,
                Some(acceptor) => {
                    match tokio::time::timeout(KEEPER_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => serve_connection(tls, connection).await,
                        Ok(Err(e)) => connection.failures.failed(
                            peer,
                            "keeper interface: TLS handshake refused",
                            &e.to_string(),
                        ),
                        Err(_) => connection.failures.failed(
                            peer,
                            "keeper interface: TLS handshake timed out",
                            "timeout",
                        ),
                    }
                }
            }
        });
    }
}

/// Serves one keeper connection (plain or TLS) until it closes or idles out.
async fn serve_connection<IO>(io: IO, connection: Arc<Connection>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(connection.clone(), req));
    let _ = crate::server::http1_builder(KEEPER_IDLE_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// Connections one peer address may hold (the keeper opens one per request).
pub const KEEPER_CONNECTIONS_PER_IP: usize = 4;

/// A keeper's TLS handshake must finish within this.
const KEEPER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A keeper connection idle (or sending its request head) this long is closed: the keeper
/// opens a connection per request and sends it at once.
const KEEPER_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
