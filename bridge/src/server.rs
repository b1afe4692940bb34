//! Running the bridge: the mutual-TLS IEEE 2030.5 listener, the keeper's local interface and
//! the attestor, with a shared shutdown signal.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::attestor::{self, Attestor, AttestorSettings};
use crate::config::BridgeConfig;
use crate::directory::Directory;
use crate::keeper_api;
use crate::service::{Reply, Service, Settings, MAX_BODY};
use crate::store::{Pruned, Store};
use crate::tls::{self, DeviceCertVerifier};

/// A started bridge.
pub struct RunningBridge {
    pub meters_addr: SocketAddr,
    pub keeper_addr: SocketAddr,
    pub service: Arc<Service>,
    pub attestor: Arc<Attestor>,
    pub keeper_token: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningBridge {
    /// Stops accepting, lets the tasks finish, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // Connection tasks drop their handles as they finish; the store closes with the last.
        for _ in 0..500 {
            if Arc::strong_count(&self.service) == 1 && Arc::strong_count(&self.attestor) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn read_certificates(
    config: &BridgeConfig,
    campus: &migrations::CampusConfig,
) -> Result<Vec<(String, Vec<u8>)>> {
    let layout = certs::Layout::new(&config.pki_dir);
    campus
        .buildings
        .iter()
        .map(|b| {
            let path = layout.meter_cert(&b.code);
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("device certificate {}", path.display()))?;
            Ok((b.code.clone(), certs::pem_to_der(&pem, &path)?))
        })
        .collect()
}

/// Opens the store, loads (or creates) the attestor key and keeper token, and starts serving.
pub async fn start(config: &BridgeConfig) -> Result<RunningBridge> {
    config.validate()?;
    let campus = migrations::CampusConfig::load(&config.campus_config)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create {}", config.data_dir.display()))?;
    let directory = Arc::new(Directory::from_campus(
        &campus,
        &read_certificates(config, &campus)?,
    )?);
    let store = Arc::new(Store::open(&config.store_path())?);

    let layout = certs::Layout::new(&config.pki_dir);
    let ca_pem = std::fs::read_to_string(layout.ca_cert())
        .with_context(|| format!("campus CA {}", layout.ca_cert().display()))?;
    let ca_der = certs::pem_to_der(&ca_pem, &layout.ca_cert())?;
    let chain = CertificateDer::pem_file_iter(layout.bridge_cert())
        .with_context(|| format!("bridge certificate {}", layout.bridge_cert().display()))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(layout.bridge_key())
        .with_context(|| format!("bridge key {}", layout.bridge_key().display()))?;
    let mut roots = vec![ca_der];
    for path in &config.trusted_roots {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("trusted root {}", path.display()))?;
        roots.push(certs::pem_to_der(&pem, path)?);
    }
    let verifier = Arc::new(DeviceCertVerifier::new(roots, directory.clone())?);
    let certified = tls::certified_key(chain, key)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(certified.clone(), verifier)?));
    let keeper_acceptor = match config.keeper_tls {
        true => Some(TlsAcceptor::from(Arc::new(tls::keeper_server_config(
            certified,
        )?))),
        false => None,
    };

    let service = Arc::new(Service {
        store: store.clone(),
        directory: directory.clone(),
        settings: Settings {
            post_rate_s: config.post_rate_s,
            max_future_skew_s: config.max_future_skew_s,
            tolerance_bps: config.tolerance_bps,
            registered_at: std::fs::metadata(config.store_path())
                .and_then(|m| m.created())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or_else(now),
            clock: crate::clock::CampusClock::new(&config.time_zone)?,
        },
    });
    let attestor = Arc::new(Attestor {
        store: store.clone(),
        directory,
        key: attestor::load_or_create_key(&config.attestor_key_path(), store.batches_signed()?)?,
        settings: AttestorSettings {
            oracle_program: oracle::ID,
            campus: attestor::campus_address(),
            cluster: config.cluster()?,
            limits: config.limits(),
            max_readings: config.max_readings_per_batch,
        },
    });
    let keeper_token = keeper_api::load_or_create_token(&config.keeper_token_path())?;

    let meters = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let keeper = TcpListener::bind(config.keeper_listen)
        .await
        .with_context(|| format!("listen on {}", config.keeper_listen))?;
    let (meters_addr, keeper_addr) = (meters.local_addr()?, keeper.local_addr()?);
    let (shutdown, watcher) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(serve_meters(
            meters,
            acceptor,
            service.clone(),
            watcher.clone(),
            ConnectionLimits {
                max_connections: fit_open_file_limit(config.max_connections),
                handshake_timeout: Duration::from_secs(config.handshake_timeout_s),
                max_handshakes_per_ip: config.max_handshakes_per_ip,
                idle_timeout: config.idle_timeout(),
                body_timeout: Duration::from_secs(config.body_timeout_s),
            },
        )),
        tokio::spawn(keeper_api::serve(
            keeper,
            keeper_acceptor,
            attestor.clone(),
            keeper_token.clone(),
            watcher.clone(),
        )),
        tokio::spawn(run_attestor(
            attestor.clone(),
            Duration::from_secs(u64::from(config.attest_interval_s)),
            watcher.clone(),
        )),
        tokio::spawn(run_pruning(
            store.clone(),
            i64::from(config.retention_days) * 86_400,
            watcher,
        )),
    ];
    tracing::info!(%meters_addr, %keeper_addr, keeper_tls = config.keeper_tls, attestor = %base64::Engine::encode(&attestor::B64, attestor.public_key()), "bridge started");
    Ok(RunningBridge {
        meters_addr,
        keeper_addr,
        service,
        attestor,
        keeper_token,
        shutdown,
        tasks,
    })
}

/// Every hour, prunes what is older than the retention window.
async fn run_pruning(store: Arc<Store>, retention_s: i64, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        // One commit per direct job, so that attestation and acknowledgements get the write
        // lock between them however much there is to prune (after downtime, a shorter
        // retention).
        let cutoff = now() - retention_s;
        let mut all = Pruned::default();
        let outcome = loop {
            let s = store.clone();
            match store.direct(move || s.prune_some(cutoff)).await {
                Ok(Ok(p)) if p.total() > 0 && !*shutdown.borrow() => all.add(p),
                Ok(Ok(p)) => {
                    all.add(p);
                    break Ok(all);
                }
                Ok(Err(e)) | Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(p) if p.total() > 0 => tracing::info!(
                readings = p.readings,
                measurements = p.measurements,
                batches = p.batches,
                "pruned what is older than the retention window"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
    }
}

async fn run_attestor(
    attestor: Arc<Attestor>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let a = attestor.clone();
        match attestor.store.direct(move || a.attest_once(now())).await {
            Ok(Ok(Some(batch))) => tracing::info!(
                sequence = batch.sequence,
                readings = batch.readings,
                "batch signed"
            ),
            Ok(Ok(None)) => tracing::debug!("no new readings to attest"),
            Ok(Err(e)) => tracing::error!(error = %e, "attestation failed"),
            Err(e) => tracing::error!(error = %e, "attestation did not complete"),
        }
    }
}

/// What one meter connection may hold and for how long.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub max_handshakes_per_ip: usize,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
}

/// Descriptors kept for the store, the listeners, logs and the keeper interface.
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-file limit towards the hard one so that `wanted` connections fit,
/// and returns the connections that do fit (with a warning if fewer than `wanted`).
pub fn fit_open_file_limit(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!("cannot read the open-file limit; max_connections {wanted} unchecked");
        return wanted;
    }
    let needed = wanted as u64 + RESERVED_FILES;
    if limit.rlim_cur < needed && limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: needed.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        }
    }
    if limit.rlim_cur >= needed {
        return wanted;
    }
    let fits = limit.rlim_cur.saturating_sub(RESERVED_FILES).max(1) as usize;
    tracing::warn!(
        max_connections = wanted,
        open_file_limit = limit.rlim_cur,
        serving = fits,
        "the open-file limit is below max_connections: serving fewer connections (raise LimitNOFILE / ulimit -n)"
    );
    fits
}

/// An HTTP/1 connection builder with hyper's timer: a connection that sends no request head
/// for `idle` (between requests, or a slow-loris head) is closed.
pub fn http1_builder(idle: Duration) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle);
    builder
}

/// What is in flight per peer address: TLS handshakes on the meters' listener, whole
/// connections on the keeper interface.
#[derive(Default)]
pub(crate) struct InFlightPerIp {
    in_flight: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// A slot of one peer address, given back on drop.
pub(crate) struct IpSlot<'a> {
    table: &'a InFlightPerIp,
    ip: std::net::IpAddr,
}

impl InFlightPerIp {
    pub(crate) fn try_take(&self, ip: std::net::IpAddr, max: usize) -> Option<IpSlot<'_>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot { table: self, ip })
    }
}

impl Drop for IpSlot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .table
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Failures (handshakes, refused requests) logged at most once a second, with a count of
/// those not logged.
#[derive(Default)]
pub(crate) struct FailureLog {
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl FailureLog {
    pub(crate) fn failed(&self, peer: SocketAddr, what: &str, error: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < Duration::from_secs(1) => state.1 += 1,
            _ => {
                let suppressed = std::mem::take(&mut state.1);
                state.0 = Some(now);
                drop(state);
                tracing::warn!(%peer, error = %crate::xml::bounded(error.to_string()), suppressed, "{what}");
            }
        }
    }
}

async fn serve_meters(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
    limits: ConnectionLimits,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(InFlightPerIp::default());
    let failures = Arc::new(FailureLog::default());
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore open"),
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(10);
                    a
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        // Half-open connections (a peer gone without a FIN) are found by TCP keepalive.
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(10))
                .with_retries(3),
        );
        let (acceptor, service, mut shutdown, handshakes, failures) = (
            acceptor.clone(),
            service.clone(),
            shutdown.clone(),
            handshakes.clone(),
            failures.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            let tls = {
                let Some(_slot) = handshakes.try_take(peer.ip(), limits.max_handshakes_per_ip)
                else {
                    failures.failed(
                        peer,
                        "too many TLS handshakes in flight from this address",
                        "closed",
                    );
                    return;
                };
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        failures.failed(peer, "TLS handshake refused", &e.to_string());
                        return;
                    }
                    Err(_) => {
                        failures.failed(peer, "TLS handshake timed out", "timeout");
                        return;
                    }
                }
            };
            let Some(lfdi) = tls::peer_lfdi(tls.get_ref().1) else {
                return;
            };
            let Some(meter) = service.directory.get(&lfdi) else {
                return;
            };
            tracing::debug!(%peer, meter = %meter.code, "meter connected");
            let svc = service.clone();
            let body_timeout = limits.body_timeout;
            let handler =
                hyper::service::service_fn(move |req| handle(svc.clone(), lfdi, req, body_timeout));
            let conn =
                http1_builder(limits.idle_timeout).serve_connection(TokioIo::new(tls), handler);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                }
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                }
            }
        });
    }
    // Every connection holds a permit: when all are back, no request is in flight.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(all)).await;
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if let Some(location) = &reply.location {
        builder = builder.header("Location", location);
    }
    if let Some(allow) = reply.allow {
        builder = builder.header("Allow", allow);
    }
    let body = match reply.body {
        Some(body) => {
            builder = builder.header("Content-Type", crate::xml::MEDIA_TYPE);
            Bytes::from(body)
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).expect("valid response")
}

async fn handle(
    service: Arc<Service>,
    lfdi: registry::identity::Lfdi,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    // The directory may have suspended the meter since it connected.
    let Some(meter) = service.directory.get(&lfdi).filter(|m| m.active) else {
        return Ok(response(Reply {
            status: 403,
            body: None,
            location: None,
            allow: None,
        }));
    };
    let (parts, body) = req.into_parts();
    if let Some(status) = unsupported_media(&parts) {
        return Ok(response(Reply::status(status)));
    }
    if parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY)
    {
        return Ok(response(Reply::too_large()));
    }
    let collected =
        tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY).collect()).await;
    let Ok(collected) = collected else {
        // A body trickled in (slow loris): 408, and the connection closes.
        let mut reply = response(Reply::status(408));
        reply.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return Ok(reply);
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Ok(response(Reply::too_large()))
        }
        Err(_) => {
            return Ok(response(Reply::bad_request(&crate::xml::XmlError::format(
                "unreadable body",
            ))))
        }
    };
    // HEAD is GET without the body.
    let head = parts.method == hyper::Method::HEAD;
    let method = if head {
        "GET".to_string()
    } else {
        parts.method.as_str().to_string()
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    // On this worker thread: the XML work is spread over the runtime's workers (one per
    // core); a write waits for the store's writer thread without holding a thread.
    let reply = service
        .respond(&meter, &method, &path, query.as_deref(), &body, now())
        .await;
    let mut reply = response(reply);
    if head {
        let length = http_body_util::BodyExt::collect(std::mem::take(reply.body_mut()))
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        reply
            .headers_mut()
            .insert(hyper::header::CONTENT_LENGTH, length.into());
    }
    Ok(reply)
}

/// Media types the bridge reads and writes: IEEE 2030.5 XML (EXI is not supported).
const XML_TYPES: [&str; 3] = ["application/sep+xml", "application/xml", "text/xml"];

/// 415 for a body in another media type (e.g. application/sep-exi), 406 for a client that
/// accepts no XML; a missing header is taken as XML.
fn unsupported_media(parts: &hyper::http::request::Parts) -> Option<u16> {
    let media = |v: &str| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if matches!(parts.method, hyper::Method::POST | hyper::Method::PUT) {
        if let Some(ct) = header(hyper::header::CONTENT_TYPE) {
            if !XML_TYPES.contains(&media(ct).as_str()) {
                return Some(415);
            }
        }
    }
    if let Some(accept) = header(hyper::header::ACCEPT) {
        let ok = accept.split(',').map(media).any(|m| {
            m == "*/*" || m == "application/*" || m == "text/*" || XML_TYPES.contains(&m.as_str())
        });
        if !ok {
            return Some(406);
        }
    }
    None
}
