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
use crate::store::Store;
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
    let verifier = Arc::new(DeviceCertVerifier::new(ca_der, directory.clone())?);
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(chain, key, verifier)?));

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
        },
    });
    let attestor = Arc::new(Attestor {
        store: store.clone(),
        directory,
        key: attestor::load_or_create_key(&config.attestor_key_path())?,
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
            config.max_connections,
            Duration::from_secs(config.handshake_timeout_s),
        )),
        tokio::spawn(keeper_api::serve(
            keeper,
            attestor.clone(),
            keeper_token.clone(),
            watcher.clone(),
        )),
        tokio::spawn(run_attestor(
            attestor.clone(),
            Duration::from_secs(u64::from(config.attest_interval_s)),
            watcher,
        )),
    ];
    tracing::info!(%meters_addr, %keeper_addr, attestor = %base64::Engine::encode(&attestor::B64, attestor.public_key()), "bridge started");
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
        match tokio::task::spawn_blocking(move || a.attest_once(now())).await {
            Ok(Ok(Some(batch))) => tracing::info!(
                sequence = batch.sequence,
                readings = batch.readings,
                "batch signed"
            ),
            Ok(Ok(None)) => tracing::debug!("no new readings to attest"),
            Ok(Err(e)) => tracing::error!(error = %e, "attestation failed"),
            Err(e) => tracing::error!(error = %e, "attestor task panicked"),
        }
    }
}

async fn serve_meters(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
    max_connections: usize,
    handshake_timeout: Duration,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore open"),
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, service, mut shutdown) =
            (acceptor.clone(), service.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "TLS handshake timed out");
                    return;
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
            let handler = hyper::service::service_fn(move |req| handle(svc.clone(), lfdi, req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), handler);
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
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
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
    if parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY)
    {
        return Ok(response(Reply::too_large()));
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
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
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let reply = tokio::task::spawn_blocking(move || {
        service.respond(&meter, &method, &path, query.as_deref(), &body, now())
    })
    .await
    .unwrap_or(Reply {
        status: 500,
        body: None,
        location: None,
        allow: None,
    });
    Ok(response(reply))
}
