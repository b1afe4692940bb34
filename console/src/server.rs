//! The console's HTTP/1.1 listener: the JSON API, the server-sent events and the page.
//!
//! Every answer comes from memory: each snapshot is rendered once, when it is published,
//! into the bytes of every route ([`Rendered`]); a request clones a reference to them.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/snapshot` | the whole [`Snapshot`] |
//! | `GET /api/v1/campus` | its `campus` |
//! | `GET /api/v1/buildings`, `/api/v1/buildings/{code}` | buildings, one building |
//! | `GET /api/v1/intervals`, `/orders`, `/fills`, `/meters`, `/batches`, `/proposals` | each part |
//! | `GET /api/v1/events` | `text/event-stream`: a `snapshot` event (the whole snapshot) now and on every refresh |
//! | `GET /`, `/app.js`, `/style.css` | the campus page |
//! | `GET /health` | 200 while serving; `GET /ready`: 200 once a snapshot is published, else 503 |
//!
//! Before the first snapshot the API answers 503; another method 405; any other path 404.
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::model::Snapshot;

/// Connections served at once (a browser keeps a few, the benchmark tens).
pub const MAX_CONNECTIONS: usize = 512;
/// Event streams open at once (each holds a connection); more get 503 and poll.
pub const MAX_STREAMS: usize = 128;
/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A comment on idle event streams, so that proxies keep them open.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// An event stream ends after this (the browser reconnects, `retry`), and a connection
/// is closed after [`CONNECTION_LIFETIME`]: a client that stops reading holds its slot no
/// longer.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);
const CONNECTION_LIFETIME: Duration = Duration::from_secs(360);

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// A snapshot rendered for every route.
#[derive(Debug, Default)]
pub struct Rendered {
    pub version: u64,
    parts: HashMap<&'static str, Bytes>,
    buildings: HashMap<String, Bytes>,
    /// Buildings' LFDIs by code (upper case), for the history's routes.
    lfdis: HashMap<String, [u8; 20]>,
    /// The market's interval now, when it started, and its length: an interval's start.
    market: (u64, i64, u32),
    /// The `snapshot` event for `/api/v1/events`.
    event: Bytes,
}

impl Rendered {
    pub fn new(s: &Snapshot) -> Result<Rendered> {
        let json = |v: &dyn erased::Json| -> Result<Bytes> { Ok(Bytes::from(v.to_json()?)) };
        let snapshot = serde_json::to_vec(s)?;
        let mut event = Vec::with_capacity(snapshot.len() + 32);
        event.extend_from_slice(format!("id: {}\nevent: snapshot\ndata: ", s.version).as_bytes());
        // Compact JSON has no newline: one `data:` line.
        event.extend_from_slice(&snapshot);
        event.extend_from_slice(b"\n\n");
        let mut parts = HashMap::new();
        parts.insert("snapshot", Bytes::from(snapshot));
        parts.insert("campus", json(&s.campus)?);
        parts.insert("buildings", json(&s.buildings)?);
        parts.insert("intervals", json(&s.intervals)?);
        parts.insert("orders", json(&s.orders)?);
        parts.insert("fills", json(&s.fills)?);
        parts.insert("meters", json(&s.meters)?);
        parts.insert("batches", json(&s.batches)?);
        parts.insert("proposals", json(&s.proposals)?);
        let mut buildings = HashMap::new();
        let mut lfdis = HashMap::new();
        for b in &s.buildings {
            buildings.insert(b.code.to_uppercase(), json(b)?);
            if let Ok(lfdi) = keeper_protocol::hex::decode_array::<20>(&b.lfdi) {
                lfdis.insert(b.code.to_uppercase(), lfdi);
            }
        }
        let m = &s.campus.market;
        Ok(Rendered {
            version: s.version,
            parts,
            buildings,
            lfdis,
            market: (m.current_interval, m.current_starts_at, m.interval_s),
            event: Bytes::from(event),
        })
    }
}

mod erased {
    /// A serializable value behind a reference (one closure for every part).
    pub trait Json {
        fn to_json(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec(self)
        }
    }
}

/// Publishes snapshots to the listener.
#[derive(Clone)]
pub struct Publisher {
    tx: Arc<watch::Sender<Option<Arc<Rendered>>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("version", &self.version())
            .finish()
    }
}

impl Publisher {
    pub fn publish(&self, snapshot: &Snapshot) -> Result<()> {
        let rendered = Rendered::new(snapshot).context("render the snapshot")?;
        self.tx.send_replace(Some(Arc::new(rendered)));
        Ok(())
    }

    /// The version last published (0: none).
    pub fn version(&self) -> u64 {
        self.tx.borrow().as_ref().map_or(0, |r| r.version)
    }
}

/// A running listener.
pub struct Running {
    pub addr: SocketAddr,
    pub publisher: Publisher,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `listen` and serves until stopped.
pub async fn start(listen: SocketAddr) -> Result<Running> {
    start_with(listen, None).await
}

/// The history database the console reads `/api/v1/history/...` from (`history_url`):
/// connected at the first request, again after the connection is lost.
pub struct History {
    url: String,
    client: tokio::sync::Mutex<Option<Arc<history::Client>>>,
}

impl History {
    pub fn new(url: impl Into<String>) -> History {
        History {
            url: url.into(),
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// The connection, made within [`HISTORY_CONNECT_TIMEOUT`]; every query on it ends
    /// within [`HISTORY_STATEMENT_TIMEOUT`].
    async fn client(&self) -> Result<Arc<history::Client>> {
        let mut held = self.client.lock().await;
        if let Some(c) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(HISTORY_CONNECT_TIMEOUT, async {
            let c = history::connect(&self.url).await?;
            c.batch_execute(&format!(
                "SET statement_timeout = {}",
                HISTORY_STATEMENT_TIMEOUT.as_millis()
            ))
            .await?;
            anyhow::Ok(c)
        })
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the history database did not answer within {HISTORY_CONNECT_TIMEOUT:?}"
            )
        })??;
        let c = Arc::new(c);
        *held = Some(c.clone());
        Ok(c)
    }

    /// Runs `query` on the connection within [`HISTORY_QUERY_TIMEOUT`]; a query that does not
    /// end in time drops the connection (the next request makes another).
    async fn query<T, F, Fut>(&self, query: F) -> Result<T>
    where
        F: FnOnce(Arc<history::Client>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let db = self.client().await?;
        match tokio::time::timeout(HISTORY_QUERY_TIMEOUT, query(db)).await {
            Ok(result) => result,
            Err(_) => {
                *self.client.lock().await = None;
                anyhow::bail!(
                    "the history database did not answer within {HISTORY_QUERY_TIMEOUT:?}"
                )
            }
        }
    }
}

/// Binds `listen` and serves until stopped, with `history` for the history's routes.
pub async fn start_with(listen: SocketAddr, history: Option<Arc<History>>) -> Result<Running> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind the console on {listen}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(None);
    let task = tokio::spawn(accept(listener, rx, history));
    Ok(Running {
        addr,
        publisher: Publisher { tx: Arc::new(tx) },
        task,
    })
}

async fn accept(
    listener: TcpListener,
    rx: watch::Receiver<Option<Arc<Rendered>>>,
    history: Option<Arc<History>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let streams = Arc::new(Semaphore::new(MAX_STREAMS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "console accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the limit, the connection waits in the kernel's queue, not in memory.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let rx = rx.clone();
        let streams = streams.clone();
        let history = history.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let rx = rx.clone();
                let streams = streams.clone();
                let history = history.clone();
                async move {
                    if req.method() == Method::GET && req.uri().path().starts_with(HISTORY) {
                        return Ok::<_, Infallible>(
                            history_answer(&req, &rx, history.as_deref()).await,
                        );
                    }
                    Ok::<_, Infallible>(answer(req, rx, &streams))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(slot);
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    reply(status, "application/json", Bytes::from(body))
}

const JSON: &str = "application/json";

/// The history's routes (PostgreSQL, when configured).
const HISTORY: &str = "/api/v1/history/";

/// Longest period `history/buildings/{code}` answers for (a quarter).
pub const MAX_HISTORY_DAYS: i64 = 93;

/// How long the console waits to connect to the history database, and lets a query run
/// (on the server, and here: a host that stops answering is given up on, and connected
/// to again at the next request).
pub const HISTORY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const HISTORY_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
const HISTORY_QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// The latest time the history routes take (the year 2100).
const MAX_HISTORY_TIME: i64 = 4_102_444_800;

/// A numeric query parameter.
fn query_i64(req: &Request<Incoming>, name: &str) -> Option<Result<i64, ()>> {
    req.uri().query()?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.parse().map_err(|_| ()))
    })
}

/// `GET /api/v1/history/buildings/{code or LFDI}?from=&to=` (Unix seconds; the last 30
/// days by default): the building's energy per market interval; `GET
/// /api/v1/history/intervals/{k}`: interval k's clearing and trades.
async fn history_answer(
    req: &Request<Incoming>,
    rx: &watch::Receiver<Option<Arc<Rendered>>>,
    history: Option<&History>,
) -> Response<Body> {
    let Some(history) = history else {
        return error(
            StatusCode::NOT_FOUND,
            "no history database: set the console's history_url (PostgreSQL, filled by the exporter)",
        );
    };
    let Some(path) = percent_decode(req.uri().path()) else {
        return error(StatusCode::BAD_REQUEST, "the path is not UTF-8");
    };
    let rest = path[HISTORY.len()..].trim_end_matches('/');
    let rendered = rx.borrow().clone();
    let (current, starts, interval_s) = rendered.as_ref().map(|r| r.market).unwrap_or((0, 0, 0));
    let interval_s = if interval_s == 0 {
        900
    } else {
        i64::from(interval_s)
    };
    let body = match rest.split_once('/') {
        Some(("buildings", who)) => {
            let who = who.to_uppercase();
            let lfdi = match keeper_protocol::hex::decode_array::<20>(&who) {
                Ok(l) => l,
                Err(_) => match rendered.as_ref().and_then(|r| r.lfdis.get(&who)) {
                    Some(l) => *l,
                    None => {
                        return error(
                            StatusCode::NOT_FOUND,
                            &format!(
                            "no building {who:?}: a code from /api/v1/buildings or a 40-digit LFDI"
                        ),
                        )
                    }
                },
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let (from, to) = match (query_i64(req, "from"), query_i64(req, "to")) {
                (Some(Err(())), _) | (_, Some(Err(()))) => {
                    return error(StatusCode::BAD_REQUEST, "from and to are Unix seconds")
                }
                (f, t) => {
                    let to = t.and_then(Result::ok).unwrap_or(now);
                    (
                        f.and_then(Result::ok)
                            .unwrap_or(to.saturating_sub(30 * 86_400)),
                        to,
                    )
                }
            };
            if !(0..=MAX_HISTORY_TIME).contains(&from) || !(0..=MAX_HISTORY_TIME).contains(&to) {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("from and to are Unix seconds from 0 to {MAX_HISTORY_TIME}"),
                );
            }
            if from >= to || to - from > MAX_HISTORY_DAYS * 86_400 {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("from must be before to, at most {MAX_HISTORY_DAYS} days apart"),
                );
            }
            let result = history
                .query(|db| async move {
                    history::query::building_energy(&db, &lfdi, from, to, interval_s).await
                })
                .await;
            match result {
                Ok(intervals) => serde_json::json!({
                    "lfdi": keeper_protocol::hex::encode(&lfdi),
                    "from": from,
                    "to": to,
                    "interval_s": interval_s,
                    "intervals": intervals,
                }),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "history query failed");
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the history database did not answer",
                    );
                }
            }
        }
        Some(("intervals", k)) => {
            let Some(k) = k.parse::<u64>().ok().filter(|k| i64::try_from(*k).is_ok()) else {
                return error(StatusCode::BAD_REQUEST, "an interval is its number");
            };
            // Its start, from the interval now running; none (every day searched) when the
            // console has read no market yet or the number is beyond reckoning.
            let around = (starts > 0)
                .then(|| {
                    let ahead = (k as i64).checked_sub(current as i64)?;
                    starts.checked_add(ahead.checked_mul(interval_s)?)
                })
                .flatten()
                .filter(|t| (0..=MAX_HISTORY_TIME).contains(t));
            let result = history
                .query(|db| async move { history::query::interval_trades(&db, k, around).await })
                .await;
            match result {
                Ok(trades) => serde_json::json!(trades),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "history query failed");
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the history database did not answer",
                    );
                }
            }
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "no such history: history/buildings/{code}?from=&to=, history/intervals/{k}",
            )
        }
    };
    reply(StatusCode::OK, JSON, Bytes::from(body.to_string()))
}

/// `%XX` escapes decoded (a building code such as `#3` travels as `%233`); `None` if the
/// result is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn answer(
    req: Request<Incoming>,
    rx: watch::Receiver<Option<Arc<Rendered>>>,
    streams: &Arc<Semaphore>,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the console is read-only: GET",
        );
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some(path) = percent_decode(req.uri().path()) else {
        return error(StatusCode::BAD_REQUEST, "the path is not UTF-8");
    };
    let path = path.as_str();
    match path {
        "/" | "/index.html" => {
            return reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                Bytes::from_static(INDEX_HTML.as_bytes()),
            )
        }
        "/app.js" => {
            return reply(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                Bytes::from_static(APP_JS.as_bytes()),
            )
        }
        "/style.css" => {
            return reply(
                StatusCode::OK,
                "text/css; charset=utf-8",
                Bytes::from_static(STYLE_CSS.as_bytes()),
            )
        }
        "/health" => return reply(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        _ => {}
    }
    let current = rx.borrow().clone();
    if path == "/ready" {
        return match current {
            Some(_) => reply(StatusCode::OK, "text/plain", Bytes::from_static(b"ready\n")),
            None => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                Bytes::from_static(b"no snapshot read yet\n"),
            ),
        };
    }
    let Some(api) = path.strip_prefix("/api/v1/") else {
        return error(
            StatusCode::NOT_FOUND,
            "no such page: try / or /api/v1/snapshot",
        );
    };
    let api = api.trim_end_matches('/');
    if api == "events" {
        return match streams.clone().try_acquire_owned() {
            Ok(permit) => events(rx, permit),
            Err(_) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many event streams: poll /api/v1/snapshot",
            ),
        };
    }
    let Some(rendered) = current else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the console has not read the chain yet",
        );
    };
    let body = match api.split_once('/') {
        Some(("buildings", code)) => match rendered.buildings.get(&code.to_uppercase()) {
            Some(b) => b.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("no building {code:?}: /api/v1/buildings lists them"),
                )
            }
        },
        Some(_) => return error(StatusCode::NOT_FOUND, "no such resource"),
        None => match rendered.parts.get(api) {
            Some(b) => b.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "no such resource: snapshot, campus, buildings, intervals, orders, fills, \
                     meters, batches, proposals, events",
                )
            }
        },
    };
    let mut r = reply(StatusCode::OK, JSON, body);
    if let Ok(v) = HeaderValue::from_str(&rendered.version.to_string()) {
        r.headers_mut().insert("x-snapshot-version", v);
    }
    r
}

/// `text/event-stream`: the current snapshot, then each new one, with a comment when idle;
/// for [`STREAM_LIFETIME`], holding one of the stream slots (`permit`).
fn events(
    mut rx: watch::Receiver<Option<Arc<Rendered>>>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response<Body> {
    let (tx, frames) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        let _permit = permit;
        let ends = tokio::time::Instant::now() + STREAM_LIFETIME;
        // The browser reconnects 2 s after the stream ends.
        let retry = Bytes::from_static(b"retry: 2000\n\n");
        if tx.send(Ok(Frame::data(retry))).await.is_err() {
            return;
        }
        rx.mark_changed();
        loop {
            if tokio::time::Instant::now() >= ends {
                return;
            }
            let frame = match tokio::time::timeout(KEEPALIVE, rx.changed()).await {
                Ok(Ok(())) => match rx.borrow_and_update().clone() {
                    Some(r) => r.event.clone(),
                    None => continue,
                },
                Ok(Err(_)) => return,
                Err(_) => Bytes::from_static(b": keep-alive\n\n"),
            };
            if tx.send(Ok(Frame::data(frame))).await.is_err() {
                return;
            }
        }
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(frames));
    let mut r = Response::new(BodyExt::boxed(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
