//! Running the bridge: `start` opens the store, loads the PKI and keys, and starts the
//! mutual-TLS IEEE 2030.5 listener, the keeper's interface (`keeper_api`) and the periodic
//! attestation and pruning (`periodic`), all stopped by one shutdown signal. Each meter
//! connection is served here: handshake, device, then its requests.
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
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::attestor::{self, Attestor, AttestorSettings};
use crate::config::BridgeConfig;
use crate::directory::Directory;
use crate::keeper_api;
use crate::metrics::{self, BridgeEndpoints, BridgeMetrics};
use crate::net::{
    self, fit_open_file_limit, http1_builder, Accepted, BoundedListener, ConnectionLimits,
    FailureLog, InFlight, InFlightPerIp,
};
use crate::periodic::{self, FirstRun};
use crate::service::{Reply, Service, Settings, MAX_BODY};
use crate::store::{Pruned, Store};
use crate::tls::{self, DeviceCertVerifier};

/// A started bridge.
pub struct RunningBridge {
    pub meters_addr: SocketAddr,
    pub keeper_addr: SocketAddr,
    /// Where `/metrics`, `/ready` and `/health` are served.
    pub metrics_addr: SocketAddr,
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
    campus: &sdk::CampusConfig,
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
    let campus = sdk::CampusConfig::load(&config.campus_config)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create {}", config.data_dir.display()))?;
    let certificates = read_certificates(config, &campus)?;
    let directory = Arc::new(Directory::from_campus(&campus, &certificates)?);
    let bridge_metrics = Arc::new(BridgeMetrics::default());
    // The device certificates' expiry from the PKI directory: known before (or without) a
    // meter presenting its certificate (an expired one cannot connect to show it).
    for (code, der) in &certificates {
        if let Some(t) = metrics::not_after(der) {
            bridge_metrics.device_certificate(code, t);
        }
    }
    let store = Arc::new(Store::open(&config.store_path())?);
    store.keep_export_queue(config.export_queue, config.export_max_waiting);
    // The registry as the keeper last pushed it, and the local deny list: not the campus
    // file's bootstrap after a restart.
    if let Some(records) = store.registry()? {
        let registered: Vec<_> = records
            .iter()
            .filter_map(keeper_api::as_registered)
            .collect();
        let report = directory.sync(&registered);
        tracing::info!(
            meters = registered.len(),
            unregistered = report.unregistered,
            "meter directory: the registry as last pushed by the keeper"
        );
    }
    directory.set_denied(store.denied()?);
    let tls = TlsSetup::load(config, directory.clone())?;
    let service = Arc::new(Service {
        store: store.clone(),
        directory: directory.clone(),
        settings: service_settings(config, &campus)?,
        metrics: bridge_metrics.clone(),
    });
    let attestor = Arc::new(Attestor::new(
        store.clone(),
        directory,
        attestor::load_or_create_key(&config.attestor_key_path(), store.batches_signed()?)?,
        attestor_settings(config)?,
    ));
    let keeper_token = keeper_api::load_or_create_token(&config.keeper_token_path())?;

    let meters = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let keeper = TcpListener::bind(config.keeper_listen)
        .await
        .with_context(|| format!("listen on {}", config.keeper_listen))?;
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("metrics_listen {}", config.metrics_listen))?;
    let (meters_addr, keeper_addr) = (meters.local_addr()?, keeper.local_addr()?);
    let metrics_addr = metrics_listener.local_addr()?;
    if !metrics_addr.ip().is_loopback() {
        tracing::warn!(%metrics_addr, "metrics_listen is not a loopback address: /metrics and /ready are served without a token to that network");
    }
    let endpoints = Arc::new(BridgeEndpoints {
        metrics: bridge_metrics.clone(),
        service: service.clone(),
        attestor: attestor.clone(),
        data_dir: config.data_dir.clone(),
        store_path: config.store_path(),
        ca_not_after: tls.ca_not_after,
        server_not_after: tls.server_not_after,
        cluster_set: config.cluster_genesis_hash.is_some(),
        attest_interval_s: config.attest_interval_s,
        min_interval_s: config.min_interval_s,
        post_rate_s: config.post_rate_s,
        started_at: now(),
    });
    let (shutdown, watcher) = watch::channel(false);
    let attest_every = Duration::from_secs(u64::from(config.attest_interval_s));
    let retention_s = i64::from(config.retention_days) * 86_400;
    let mut tasks = vec![
        tokio::spawn(serve_meters(
            meters,
            tls.meters,
            service.clone(),
            watcher.clone(),
            connection_limits(config),
        )),
        tokio::spawn(keeper_api::serve(
            keeper,
            tls.keeper,
            attestor.clone(),
            service.settings.tariff,
            bridge_metrics.clone(),
            keeper_token.clone(),
            watcher.clone(),
        )),
        tokio::spawn(telemetry::serve(
            metrics_listener,
            endpoints,
            watcher.clone(),
        )),
        tokio::spawn(periodic::run(
            "attestation",
            attest_every,
            FirstRun::AfterOnePeriod,
            watcher.clone(),
            {
                let (attestor, counted) = (attestor.clone(), bridge_metrics.clone());
                move || attest(attestor.clone(), counted.clone())
            },
        )),
        tokio::spawn(periodic::run(
            "pruning",
            PRUNE_EVERY,
            FirstRun::AtStart,
            watcher.clone(),
            {
                let (store, shutdown) = (store.clone(), watcher.clone());
                move || prune(store.clone(), retention_s, shutdown.clone())
            },
        )),
    ];
    if config.export_queue {
        tasks.push(tokio::spawn(periodic::run(
            "export queue cap",
            EXPORT_CAP_EVERY,
            FirstRun::AtStart,
            watcher.clone(),
            {
                let store = store.clone();
                move || keep_export_cap(store.clone())
            },
        )));
    }
    tracing::info!(%meters_addr, %keeper_addr, %metrics_addr, keeper_tls = config.keeper_tls, attestor = %base64::Engine::encode(&attestor::B64, attestor.public_key()), "bridge started");
    Ok(RunningBridge {
        meters_addr,
        keeper_addr,
        metrics_addr,
        service,
        attestor,
        keeper_token,
        shutdown,
        tasks,
    })
}

/// The bridge's TLS: the meters' listener (mutual TLS with the device verifier) and, with
/// `keeper_tls`, the keeper interface's (the same server certificate).
struct TlsSetup {
    meters: TlsAcceptor,
    keeper: Option<TlsAcceptor>,
    /// notAfter of the campus CA and of the bridge's certificate (metrics).
    ca_not_after: Option<i64>,
    server_not_after: Option<i64>,
}

impl TlsSetup {
    /// Reads the campus CA, the bridge's certificate chain and key and the extra trusted
    /// roots from the PKI directory and the configuration.
    fn load(config: &BridgeConfig, directory: Arc<Directory>) -> Result<TlsSetup> {
        let layout = certs::Layout::new(&config.pki_dir);
        let ca_pem = std::fs::read_to_string(layout.ca_cert())
            .with_context(|| format!("campus CA {}", layout.ca_cert().display()))?;
        let ca_der = certs::pem_to_der(&ca_pem, &layout.ca_cert())?;
        let chain = CertificateDer::pem_file_iter(layout.bridge_cert())
            .with_context(|| format!("bridge certificate {}", layout.bridge_cert().display()))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(layout.bridge_key())
            .with_context(|| format!("bridge key {}", layout.bridge_key().display()))?;
        let ca_not_after = metrics::not_after(&ca_der);
        let server_not_after = chain.first().and_then(|c| metrics::not_after(c));
        let mut roots = vec![ca_der];
        for path in &config.trusted_roots {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("trusted root {}", path.display()))?;
            roots.push(certs::pem_to_der(&pem, path)?);
        }
        let verifier = Arc::new(DeviceCertVerifier::new(roots, directory)?);
        let certified = tls::certified_key(chain, key)?;
        let meters = TlsAcceptor::from(Arc::new(tls::server_config(certified.clone(), verifier)?));
        let keeper = match config.keeper_tls {
            true => Some(TlsAcceptor::from(Arc::new(tls::keeper_server_config(
                certified,
            )?))),
            false => None,
        };
        Ok(TlsSetup {
            meters,
            keeper,
            ca_not_after,
            server_not_after,
        })
    }
}

fn service_settings(config: &BridgeConfig, campus: &sdk::CampusConfig) -> Result<Settings> {
    Ok(Settings {
        post_rate_s: config.post_rate_s,
        max_future_skew_s: config.max_future_skew_s,
        tolerance_bps: config.tolerance_bps,
        // The store's creation stands for the devices' registration time (`/edev/{i}/rg`).
        registered_at: std::fs::metadata(config.store_path())
            .and_then(|m| m.created())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or_else(now),
        clock: crate::clock::CampusClock::new(
            config
                .time_zone
                .as_deref()
                .unwrap_or(&campus.site.time_zone),
        )?,
        retention_s: i64::from(config.retention_days) * 86_400,
        tariff: crate::market::TariffSettings {
            pen: config.mrid_pen,
            currency: config.tariff_currency,
            quote_decimals: config.quote_decimals,
        },
    })
}

fn attestor_settings(config: &BridgeConfig) -> Result<AttestorSettings> {
    Ok(AttestorSettings {
        oracle_program: oracle::ID,
        campus: attestor::campus_address(),
        cluster: config.cluster()?,
        limits: config.limits(),
        max_readings: config.max_readings_per_batch,
        max_pending_batches: config.max_pending_batches,
    })
}

fn connection_limits(config: &BridgeConfig) -> ConnectionLimits {
    ConnectionLimits {
        max_connections: fit_open_file_limit(config.max_connections),
        handshake_timeout: Duration::from_secs(config.handshake_timeout_s),
        max_handshakes_per_ip: config.max_handshakes_per_ip,
        max_connections_per_device: config.max_connections_per_device,
        idle_timeout: config.idle_timeout(),
        body_timeout: Duration::from_secs(config.body_timeout_s),
    }
}

/// How often pruning runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How often the export queue's cap is kept (pruning does it too): at 10,000 meters
/// posting every second, a minute is 1.2 million readings.
const EXPORT_CAP_EVERY: Duration = Duration::from_secs(60);

async fn keep_export_cap(store: Arc<Store>) -> Result<()> {
    let s = store.clone();
    let dropped = store.run_dedicated(move || s.keep_export_cap()).await??;
    if dropped > 0 {
        tracing::error!(
            dropped,
            "the export queue was over its cap (export_max_waiting): its oldest readings were dropped before the history exporter took them"
        );
    }
    Ok(())
}

/// One pruning pass: everything older than the retention window, one commit per dedicated
/// job, so that attestation and acknowledgements get the write lock between them however
/// much there is to prune (after downtime, a shorter retention).
async fn prune(store: Arc<Store>, retention_s: i64, shutdown: watch::Receiver<bool>) -> Result<()> {
    let cutoff = now() - retention_s;
    let mut all = Pruned::default();
    loop {
        let s = store.clone();
        let pruned = store.run_dedicated(move || s.prune_some(cutoff)).await??;
        all.add(pruned);
        if pruned.total() == 0 || *shutdown.borrow() {
            break;
        }
    }
    if all.unexported_batches > 0 {
        tracing::error!(
            batches = all.unexported_batches,
            "signed batches pruned before the history exporter took them (held 30 days past the retention): they are missing from the history"
        );
    }
    if all.export_dropped > 0 {
        tracing::error!(
            dropped = all.export_dropped,
            "the export queue was over its cap (export_max_waiting): its oldest readings were dropped before the history exporter took them"
        );
    }
    if all.total() > 0 {
        tracing::info!(
            readings = all.readings,
            measurements = all.measurements,
            batches = all.batches,
            "pruned what is older than the retention window"
        );
    }
    Ok(())
}

/// One attestation round: every meter's new, acceptable reading signed, in as many batches
/// as it takes (up to the backlog bound).
async fn attest(attestor: Arc<Attestor>, counted: Arc<BridgeMetrics>) -> Result<()> {
    let a = attestor.clone();
    let round = attestor
        .store
        .run_dedicated(move || a.attest_round(now()))
        .await??;
    counted.batches_signed.add(round.batches.len() as u64);
    if round.backlog_full {
        tracing::warn!(
            pending = round.pending_batches,
            waiting = round.waiting_meters,
            oldest_unattested_s = ?round.oldest_unattested_s,
            "the keeper is behind: signing paused at max_pending_batches"
        );
    }
    if round.batches.is_empty() {
        tracing::debug!(waiting = round.waiting_meters, "no new readings to attest");
    } else {
        tracing::info!(
            batches = round.batches.len(),
            first = round.batches[0],
            readings = round.readings,
            meters = round.visited,
            waiting = round.waiting_meters,
            oldest_unattested_s = ?round.oldest_unattested_s,
            "attestation round"
        );
    }
    Ok(())
}

async fn serve_meters(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
    limits: ConnectionLimits,
) {
    let mut listener = BoundedListener::new(listener, limits.max_connections, "meters");
    let handshakes = Arc::new(InFlightPerIp::default());
    let devices = Arc::new(InFlight::default());
    let failures = Arc::new(FailureLog::default());
    while let Some(accepted) = listener.accept(&mut shutdown).await {
        net::tune(&accepted.stream);
        let meter = MeterConnection {
            acceptor: acceptor.clone(),
            service: service.clone(),
            handshakes: handshakes.clone(),
            devices: devices.clone(),
            failures: failures.clone(),
            limits,
        };
        tokio::spawn(meter.serve(accepted, shutdown.clone()));
    }
    listener.drain(Duration::from_secs(10)).await;
}

/// What one meter connection's task shares with the listener.
struct MeterConnection {
    acceptor: TlsAcceptor,
    service: Arc<Service>,
    handshakes: Arc<InFlightPerIp>,
    /// Connections per device certificate (LFDI).
    devices: Arc<InFlight<registry::identity::Lfdi>>,
    failures: Arc<FailureLog>,
    limits: ConnectionLimits,
}

impl MeterConnection {
    /// The TLS handshake (bounded per address and in time), the device named by its
    /// certificate, then its requests until it closes, idles out or the bridge stops. The
    /// connection's slot (`accepted.permit`) is held throughout.
    async fn serve(self, accepted: Accepted, mut shutdown: watch::Receiver<bool>) {
        let Accepted {
            stream,
            peer,
            permit: _permit,
        } = accepted;
        let limits = self.limits;
        let tls = {
            let Some(_slot) = self
                .handshakes
                .try_take(peer.ip(), limits.max_handshakes_per_ip)
            else {
                self.service.metrics.handshakes_failed.inc("shed");
                self.failures.failed(
                    peer,
                    "too many TLS handshakes in flight from this address",
                    "closed",
                );
                return;
            };
            match tokio::time::timeout(limits.handshake_timeout, self.acceptor.accept(stream)).await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    self.service.metrics.handshakes_failed.inc("refused");
                    self.failures
                        .failed(peer, "TLS handshake refused", &e.to_string());
                    return;
                }
                Err(_) => {
                    self.service.metrics.handshakes_failed.inc("timeout");
                    self.failures
                        .failed(peer, "TLS handshake timed out", "timeout");
                    return;
                }
            }
        };
        let Some(lfdi) = tls::peer_lfdi(tls.get_ref().1) else {
            return;
        };
        let Some(meter) = self.service.directory.get(&lfdi) else {
            return;
        };
        // One device's certificate holds at most a few of the slots.
        let Some(_device) = self
            .devices
            .try_take(lfdi, limits.max_connections_per_device)
        else {
            self.service.metrics.connections_refused_per_device.inc();
            self.failures.failed(
                peer,
                "closed: the device already holds max_connections_per_device connections",
                &meter.code,
            );
            return;
        };
        if let Some(not_after) = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| metrics::not_after(der))
        {
            self.service
                .metrics
                .device_certificate(&meter.code, not_after);
        }
        tracing::debug!(%peer, meter = %meter.code, "meter connected");
        let service = self.service;
        let body_timeout = limits.body_timeout;
        let handler =
            hyper::service::service_fn(move |req| handle(service.clone(), lfdi, req, body_timeout));
        let conn = http1_builder(limits.idle_timeout).serve_connection(TokioIo::new(tls), handler);
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
    }
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
            builder = builder.header("Content-Type", sep2::MEDIA_TYPE);
            Bytes::from(body)
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).expect("valid response")
}

/// One request, answered and counted (route pattern, status, duration).
async fn handle(
    service: Arc<Service>,
    lfdi: registry::identity::Lfdi,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let route = metrics::route_label(req.uri().path());
    let reply = answer(&service, lfdi, req, body_timeout).await;
    service
        .metrics
        .requests
        .inc((route, reply.status().as_u16()));
    service.metrics.request_seconds.observe_since(started);
    Ok(reply)
}

async fn answer(
    service: &Arc<Service>,
    lfdi: registry::identity::Lfdi,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> Response<Full<Bytes>> {
    // The directory may have suspended the meter since it connected.
    let Some(meter) = service.directory.get(&lfdi).filter(|m| m.active) else {
        return response(Reply {
            status: 403,
            body: None,
            location: None,
            allow: None,
        });
    };
    let (parts, body) = req.into_parts();
    if let Some(status) = unsupported_media(&parts) {
        return response(Reply::status(status));
    }
    if parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY)
    {
        return response(Reply::too_large());
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
        return reply;
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return response(Reply::too_large())
        }
        Err(_) => {
            return response(Reply::bad_request(&sep2::XmlError::format(
                "unreadable body",
            )))
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
    reply
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
