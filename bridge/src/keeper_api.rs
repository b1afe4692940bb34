//! The keeper's interface to the bridge (routes and messages: the `keeper_protocol` crate,
//! which the keeper uses too): HTTP/1.1, every request carrying `Authorization: Bearer
//! <token>` (the token file in the data directory, mode 0600). Plain HTTP on a loopback
//! address; with `keeper_tls`, TLS 1.3 with the bridge's server certificate, on any address
//! (the keeper checks the certificate against the campus CA).
//!
//! Unacknowledged batches are served again after a restart: they live in the store.
mod market;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::attestor::{Attestor, Resigned, B64};
use crate::directory::{RegisteredMeter, SyncReport};
use crate::metrics::BridgeMetrics;
use crate::net::{http1_builder, Accepted, BoundedListener, FailureLog, InFlightPerIp};
use crate::store::Acknowledged;
use keeper_protocol::{
    AttestationStatus, BatchList, BatchPage, BridgeStatus, ChainFloor, ChainReport, Conflict,
    DeniedList, DeniedMeter, DenyRequest, ExportAck, ExportStatus, ExportedReading, MeterList,
    MeterRecord, ReadingPage, Route, MAX_CHAIN_BODY, MAX_DENY_BODY, MAX_EXPORT_ACK_BODY,
    MAX_EXPORT_PAGE, MAX_METERS_BODY, MIN_TOKEN_LEN,
};
use registry::MeterCapacity;

/// Keeper connections served at once (the keeper needs one or two).
pub const MAX_KEEPER_CONNECTIONS: usize = 16;

/// Loads the keeper token, creating a random one (mode 0600) on first start.
pub fn load_or_create_token(path: &Path) -> Result<String> {
    if path.exists() {
        let token = crate::read_secret(path)?;
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
    let token = keeper_protocol::hex::encode(&bytes);
    crate::write_secret(path, &token)?;
    Ok(token)
}

/// A record of the registry as the directory takes it; `None` for a malformed LFDI.
pub(crate) fn as_registered(record: &MeterRecord) -> Option<RegisteredMeter> {
    Some(RegisteredMeter {
        lfdi: keeper_protocol::hex::decode_array(&record.lfdi).ok()?,
        index: record.index,
        capacity: MeterCapacity {
            generation_w: record.generation_w,
            storage_wh: record.storage_wh,
            max_import_w: record.max_import_w,
            max_discharge_w: record.max_discharge_w,
        },
        active: record.active,
        since: record.since,
    })
}

/// A request's JSON body of at most `max` bytes, and its bytes; or the answer to give: 413
/// over `max`, 400 naming what was `expected`.
async fn read_json<T: serde::de::DeserializeOwned>(
    body: Incoming,
    max: usize,
    expected: &str,
) -> Result<(T, Bytes), Response<Full<Bytes>>> {
    use http_body_util::BodyExt;
    let bytes = match http_body_util::Limited::new(body, max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(empty(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok((value, bytes)),
        Err(_) => Err(json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": format!("expected {expected}") }),
        )),
    }
}

async fn sync_meters(attestor: &Attestor, body: Incoming) -> Response<Full<Bytes>> {
    let (parsed, bytes) =
        match read_json::<MeterList>(body, MAX_METERS_BODY, "{\"meters\": [...]}").await {
            Ok(read) => read,
            Err(answer) => return answer,
        };
    let mut registered = Vec::with_capacity(parsed.meters.len());
    for record in &parsed.meters {
        match as_registered(record) {
            Some(r) => registered.push(r),
            None => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": "an lfdi is not 40 hex digits" }),
                )
            }
        }
    }
    // Kept first, so that a restart applies it again (a suspended meter stays out); an
    // unchanged push (every minute) is not written again.
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        h.finish()
    };
    let kept = *attestor
        .directory
        .kept_push
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if kept != Some(digest) {
        let (store, records) = (attestor.store.clone(), parsed.meters);
        match attestor
            .store
            .run_dedicated(move || store.save_registry(&records))
            .await
        {
            Ok(Ok(())) => {}
            _ => return empty(StatusCode::INTERNAL_SERVER_ERROR),
        }
        *attestor
            .directory
            .kept_push
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(digest);
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
    json(StatusCode::OK, &report)
}

/// `POST /v1/deny` (`deny`) or `POST /v1/allow`: changes the local deny list, kept in the
/// store before it applies (a denied meter's handshakes and requests are refused at once;
/// a connection it holds gets 403 on its next request).
async fn deny(attestor: &Arc<Attestor>, deny: bool, body: Incoming) -> Response<Full<Bytes>> {
    let expected = "{\"meter\": \"<building code or LFDI>\", \"reason\": \"...\"}";
    let request = match read_json::<DenyRequest>(body, MAX_DENY_BODY, expected).await {
        Ok((request, _)) => request,
        Err(answer) => return answer,
    };
    let _one_at_a_time = attestor.directory.deny_edits.lock().await;
    let Some(meter) = attestor.directory.find(request.meter.trim()) else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("no meter {:?} (a building code or a 40-digit LFDI)", request.meter) }),
        );
    };
    let mut list = attestor.directory.denied();
    let present = list.iter().any(|d| d.lfdi == meter.lfdi_hex);
    let entry = DeniedMeter {
        lfdi: meter.lfdi_hex.clone(),
        code: meter.code.clone(),
        reason: sep2::bounded(request.reason.trim().to_string()),
        since: crate::server::now(),
    };
    match (deny, present) {
        (true, true) => {
            let kept = list.into_iter().find(|d| d.lfdi == meter.lfdi_hex);
            return json(StatusCode::OK, &kept);
        }
        (false, false) => {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": format!("meter {} is not denied", meter.code) }),
            )
        }
        (true, false) => list.push(entry.clone()),
        (false, true) => list.retain(|d| d.lfdi != meter.lfdi_hex),
    }
    let (store, kept) = (attestor.store.clone(), list.clone());
    match attestor
        .store
        .run_dedicated(move || store.save_denied(&kept))
        .await
    {
        Ok(Ok(())) => {}
        _ => return empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
    attestor.directory.set_denied(list);
    if deny {
        tracing::warn!(meter = %meter.code, lfdi = %meter.lfdi_hex, reason = %entry.reason, "meter denied locally: refused until allowed again");
        json(StatusCode::OK, &entry)
    } else {
        tracing::warn!(meter = %meter.code, lfdi = %meter.lfdi_hex, "local denial lifted: the registry's status applies again");
        empty(StatusCode::NO_CONTENT)
    }
}

/// `POST /v1/chain`: the chain's highest settled sequence; nothing is signed at or below it
/// from now on.
async fn chain_report(attestor: &Arc<Attestor>, body: Incoming) -> Response<Full<Bytes>> {
    let report =
        match read_json::<ChainReport>(body, MAX_CHAIN_BODY, "{\"highest_sequence\": N}").await {
            Ok((report, _)) => report,
            Err(answer) => return answer,
        };
    let a = attestor.clone();
    let before = attestor
        .store
        .read()
        .and_then(|r| r.chain_floor())
        .unwrap_or(0);
    match attestor
        .store
        .run_dedicated(move || a.raise_chain_floor(report.highest_sequence))
        .await
    {
        Ok(Ok(floor)) => {
            if floor > before {
                tracing::info!(
                    floor,
                    "the chain's settled sequence: nothing is signed at or below it"
                );
            }
            json(StatusCode::OK, &ChainFloor { floor })
        }
        _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// A numeric query parameter (`name=N`), if present and a number.
fn query_number(req: &Request<Incoming>, name: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|p| {
        p.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    })
}

/// `?after=S&limit=N` of an export page (limit 1..=MAX_EXPORT_PAGE, 5,000 if absent).
fn export_window(req: &Request<Incoming>) -> (u64, usize) {
    let after = query_number(req, "after").unwrap_or(0);
    let limit = query_number(req, "limit")
        .map(|l| l.clamp(1, MAX_EXPORT_PAGE as u64) as usize)
        .unwrap_or(5_000);
    (after, limit)
}

/// The export queue for `GET /v1/status`, when the bridge keeps one.
fn export_status(attestor: &Attestor) -> Option<ExportStatus> {
    let (enabled, max_waiting) = attestor.store.export_queue();
    if !enabled {
        return None;
    }
    let q = attestor.store.read().and_then(|r| r.export_status()).ok()?;
    Some(ExportStatus {
        readings_waiting: q.waiting,
        oldest_waiting_received_at: q.oldest_received_at,
        readings_dropped: q.dropped,
        readings_exported: q.exported,
        max_waiting,
        batches_exported_through: q.batches_exported_through,
        last_batch: q.last_batch,
    })
}

/// `GET /v1/export/readings`: a page of the export queue.
async fn export_readings(
    attestor: &Arc<Attestor>,
    after: u64,
    limit: usize,
) -> Response<Full<Bytes>> {
    let store = attestor.store.clone();
    let page = attestor
        .store
        .run_dedicated(move || -> Result<ReadingPage> {
            let (page, status) = store.export_page(after, limit)?;
            let readings = page
                .into_iter()
                .map(|(seq, r)| ExportedReading {
                    seq,
                    lfdi: r.lfdi,
                    mmr: r.mmr,
                    export: r.reading.flow == crate::normalize::Flow::Export,
                    timestamp: r.reading.timestamp,
                    start: r.reading.start,
                    wh: r.reading.wh,
                    quality: r.reading.quality,
                    received_at: r.received_at,
                })
                .collect();
            Ok(ReadingPage {
                readings,
                last: status.last,
                dropped_through: status.dropped_through,
            })
        })
        .await;
    match page {
        Ok(Ok(page)) => json(StatusCode::OK, &page),
        _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// `POST /v1/export/{readings,batches}/ack`: the history database has everything through
/// the mark; readings leave the queue, batches may be pruned.
async fn export_ack(
    attestor: &Arc<Attestor>,
    readings: bool,
    body: Incoming,
) -> Response<Full<Bytes>> {
    let ack = match read_json::<ExportAck>(body, MAX_EXPORT_ACK_BODY, "{\"through\": N}").await {
        Ok((ack, _)) => ack,
        Err(answer) => return answer,
    };
    let store = attestor.store.clone();
    let marked = attestor
        .store
        .run_dedicated(move || {
            store.write_immediate(|w| {
                if readings {
                    w.export_acknowledged(ack.through)
                } else {
                    w.batches_exported(ack.through)
                }
            })
        })
        .await;
    match marked {
        Ok(Ok(_)) => empty(StatusCode::NO_CONTENT),
        _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::to_vec(value).expect("messages serialize"),
        )))
        .expect("valid response")
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("valid response")
}

/// Constant-time comparison (the token's length is not secret: 64 hex digits).
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

/// What every request of one keeper connection shares.
struct Connection {
    attestor: Arc<Attestor>,
    tariff: crate::market::TariffSettings,
    metrics: Arc<BridgeMetrics>,
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
    let Some(route) = Route::of_path(req.uri().path()) else {
        return Ok(empty(StatusCode::NOT_FOUND));
    };
    if req.method().as_str() != route.method() {
        return Ok(empty(StatusCode::METHOD_NOT_ALLOWED));
    }
    let reply = match route {
        Route::Status => json(
            StatusCode::OK,
            &BridgeStatus {
                attestor: B64.encode(attestor.public_key()),
                oracle_program: attestor.settings.oracle_program.to_string(),
                campus: attestor.settings.campus.to_string(),
                attestation: attestor.last_round().map(|r| AttestationStatus {
                    at: r.at,
                    batches_signed: r.batches.len() as u64,
                    readings_signed: r.readings as u64,
                    pending_batches: r.pending_batches,
                    backlog_full: r.backlog_full,
                    waiting_meters: r.waiting_meters as u64,
                    oldest_unattested_s: r.oldest_unattested_s,
                    refused_meters: r.refused_meters as u64,
                }),
                chain_floor: attestor
                    .store
                    .read()
                    .and_then(|r| r.chain_floor())
                    .unwrap_or(0),
                cluster: attestor
                    .settings
                    .cluster
                    .map(|c| anchor_lang::prelude::Pubkey::new_from_array(c).to_string()),
                limits: Some(keeper_protocol::Limits {
                    max_future_skew_s: attestor.settings.limits.max_future_skew_s,
                    min_interval_s: attestor.settings.limits.min_interval_s,
                    max_age_s: attestor.settings.limits.max_age_s,
                    tolerance_bps: attestor.settings.limits.tolerance_bps,
                }),
                export: export_status(attestor),
            },
        ),
        Route::ExportReadings => {
            let (after, limit) = export_window(&req);
            export_readings(attestor, after, limit).await
        }
        Route::ExportReadingsAck => export_ack(attestor, true, req.into_body()).await,
        Route::ExportBatches => {
            // Batches are about 2 KiB each: at most 1,000 a page.
            let (after, limit) = export_window(&req);
            let limit = limit.min(1_000);
            let a = attestor.clone();
            let page = tokio::task::spawn_blocking(move || -> Result<BatchPage> {
                let reader = a.store.read()?;
                Ok(BatchPage {
                    batches: reader.batches_after(after, limit)?,
                    last: reader.last_batch()?,
                })
            })
            .await;
            match page {
                Ok(Ok(page)) => json(StatusCode::OK, &page),
                _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        Route::ExportBatchesAck => export_ack(attestor, false, req.into_body()).await,
        Route::Batches => {
            let limit = query_number(&req, "limit").map_or(100, |l| l as usize);
            let a = attestor.clone();
            match tokio::task::spawn_blocking(move || a.store.read()?.unacknowledged(limit)).await {
                Ok(Ok(batches)) => json(StatusCode::OK, &BatchList { batches }),
                _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        Route::Meters => sync_meters(attestor, req.into_body()).await,
        Route::Market => market::market_report(attestor, req.into_body()).await,
        Route::FlowRequests => {
            let limit = query_number(&req, "limit")
                .map_or(100, |l| l as usize)
                .min(1_000);
            market::flow_requests(attestor, limit, c.tariff).await
        }
        Route::FlowUpdate(id) => market::flow_update(attestor, id, req.into_body()).await,
        Route::DrEvents => market::dr_events(attestor).await,
        Route::DrIssue => market::dr_issue(attestor, req.into_body(), c.tariff).await,
        Route::DrCancel(id) => market::dr_cancel(attestor, id).await,
        Route::Acknowledge(sequence) => {
            let a = attestor.clone();
            match attestor
                .store
                .run_dedicated(move || a.acknowledge(sequence))
                .await
            {
                Ok(Ok(Acknowledged::Done)) => {
                    c.metrics.batches_acknowledged.inc();
                    tracing::info!(sequence, "batch acknowledged by the keeper");
                    empty(StatusCode::NO_CONTENT)
                }
                Ok(Ok(Acknowledged::Already)) => empty(StatusCode::NO_CONTENT),
                Ok(Ok(Acknowledged::Unknown)) => empty(StatusCode::NOT_FOUND),
                Ok(Ok(Acknowledged::NotNext(next))) => {
                    c.failures.failed(
                        c.peer,
                        "keeper acknowledgement out of order refused",
                        &format!("batch {sequence}, next is {next}"),
                    );
                    json(
                        StatusCode::CONFLICT,
                        &Conflict {
                            error: format!(
                                "batch {sequence} is not the oldest awaiting acknowledgement: acknowledge batch {next} first"
                            ),
                            next: Some(next),
                            floor: None,
                        },
                    )
                }
                _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        Route::Chain => chain_report(attestor, req.into_body()).await,
        Route::Denied => json(
            StatusCode::OK,
            &DeniedList {
                denied: attestor.directory.denied(),
            },
        ),
        // The operator's commands, from the bridge's own host only: a keeper elsewhere
        // (keeper_tls) cannot lift an operator's denial.
        Route::Deny | Route::Allow if !c.peer.ip().is_loopback() => json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({ "error": "the deny list is changed from the bridge's host only" }),
        ),
        Route::Deny | Route::Allow => deny(attestor, route == Route::Deny, req.into_body()).await,
        Route::Resign(sequence) => {
            let a = attestor.clone();
            let now = crate::server::now();
            match attestor
                .store
                .run_dedicated(move || {
                    let resigned = a.resign(sequence, now)?;
                    // A retried request (its answer lost) gets the copy made the first time.
                    let copy = match &resigned {
                        Resigned::Settled(Some(copy)) => a.store.read()?.batch(*copy)?,
                        _ => None,
                    };
                    anyhow::Ok((resigned, copy))
                })
                .await
            {
                Ok(Ok((Resigned::As(copy), _))) => {
                    c.metrics.batches_resigned.inc();
                    tracing::warn!(
                        sequence,
                        copy = copy.sequence,
                        "batch signed again: the chain settled its sequence without it"
                    );
                    json(StatusCode::OK, &copy)
                }
                Ok(Ok((Resigned::Settled(Some(_)), Some(copy)))) => json(StatusCode::OK, &copy),
                Ok(Ok((Resigned::Settled(_), _))) => json(
                    StatusCode::CONFLICT,
                    &Conflict {
                        error: format!("batch {sequence} is acknowledged: nothing to sign again"),
                        next: None,
                        floor: None,
                    },
                ),
                Ok(Ok((Resigned::Unknown, _))) => empty(StatusCode::NOT_FOUND),
                Ok(Ok((Resigned::AboveFloor(floor), _))) => json(
                    StatusCode::CONFLICT,
                    &Conflict {
                        error: format!(
                            "batch {sequence} is above the chain's settled sequence {floor} as last reported: it can still apply as it is (report the chain first: POST /v1/chain)"
                        ),
                        next: None,
                        floor: Some(floor),
                    },
                ),
                _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
    };
    Ok(reply)
}

/// Serves the keeper interface on `listener`: over TLS with `acceptor` (`keeper_tls`), else
/// plain HTTP (loopback only, as the configuration enforces).
pub async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    attestor: Arc<Attestor>,
    tariff: crate::market::TariffSettings,
    metrics: Arc<BridgeMetrics>,
    token: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let token = Arc::new(token);
    let mut listener = BoundedListener::new(listener, MAX_KEEPER_CONNECTIONS, "keeper interface");
    let per_ip = Arc::new(InFlightPerIp::default());
    let failures = Arc::new(FailureLog::default());
    while let Some(Accepted {
        stream,
        peer,
        permit,
    }) = listener.accept(&mut shutdown).await
    {
        let connection = Arc::new(Connection {
            attestor: attestor.clone(),
            tariff,
            metrics: metrics.clone(),
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
    let _ = http1_builder(KEEPER_IDLE_TIMEOUT)
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
