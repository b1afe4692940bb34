//! What both of the bridge's listeners (the meters' IEEE 2030.5 port and the keeper
//! interface) need from the network: an accept loop bounded by a connection limit that backs
//! off on accept errors, per-address counters, failure logs that cannot flood, the open-file
//! limit, and the HTTP/1 connection builder with its timer.
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// What one meter connection may hold and for how long.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub max_handshakes_per_ip: usize,
    pub max_connections_per_device: usize,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
}

/// Accepts connections, at most `max` at a time: each comes with a permit that its task
/// holds until the connection ends. An accept error (out of file descriptors, say) is
/// logged and retried after a pause that doubles up to a second, instead of spinning.
pub struct BoundedListener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    backoff: Duration,
    /// Names the listener in logs.
    what: &'static str,
}

/// One accepted connection and its slot under the listener's limit.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub permit: OwnedSemaphorePermit,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(10);

impl BoundedListener {
    pub fn new(listener: TcpListener, max: usize, what: &'static str) -> BoundedListener {
        BoundedListener {
            listener,
            permits: Arc::new(Semaphore::new(max)),
            max,
            backoff: FIRST_BACKOFF,
            what,
        }
    }

    /// The next connection, once a slot is free; `None` once `shutdown` is signalled.
    pub async fn accept(&mut self, shutdown: &mut watch::Receiver<bool>) -> Option<Accepted> {
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.changed() => return None,
        };
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        self.backoff = FIRST_BACKOFF;
                        return Some(Accepted { stream, peer, permit });
                    }
                    Err(e) => {
                        tracing::warn!(listener = self.what, error = %e, retry_in_ms = self.backoff.as_millis() as u64, "accept failed");
                        tokio::time::sleep(self.backoff).await;
                        self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
                    }
                },
                _ = shutdown.changed() => return None,
            }
        }
    }

    /// Waits (at most `timeout`) until every connection has given its slot back: then no
    /// request is in flight.
    pub async fn drain(&self, timeout: Duration) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(timeout, self.permits.acquire_many(all)).await;
    }
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

/// Turns on TCP keepalive, so that half-open connections (a peer gone without a FIN) are
/// found, and turns off Nagle's delay for small answers.
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(60))
            .with_interval(Duration::from_secs(10))
            .with_retries(3),
    );
}

/// What is in flight per key: TLS handshakes per peer address on the meters' listener,
/// connections per device certificate (LFDI) once it is known, whole connections per
/// address on the keeper interface.
pub struct InFlight<K> {
    in_flight: Mutex<std::collections::HashMap<K, usize>>,
}

impl<K> Default for InFlight<K> {
    fn default() -> Self {
        InFlight {
            in_flight: Mutex::new(std::collections::HashMap::new()),
        }
    }
}

pub type InFlightPerIp = InFlight<IpAddr>;

/// A slot of one key, given back on drop.
pub struct Slot<'a, K: std::hash::Hash + Eq + Copy> {
    table: &'a InFlight<K>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Copy> InFlight<K> {
    pub fn try_take(&self, key: K, max: usize) -> Option<Slot<'_, K>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { table: self, key })
    }
}

impl<K: std::hash::Hash + Eq + Copy> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        let mut map = self
            .table
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Failures (handshakes, refused requests) logged at most once a second, with a count of
/// those not logged.
#[derive(Default)]
pub struct FailureLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl FailureLog {
    pub fn failed(&self, peer: SocketAddr, what: &str, error: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < Duration::from_secs(1) => state.1 += 1,
            _ => {
                let suppressed = std::mem::take(&mut state.1);
                state.0 = Some(now);
                drop(state);
                tracing::warn!(%peer, error = %sep2::bounded(error.to_string()), suppressed, "{what}");
            }
        }
    }
}
