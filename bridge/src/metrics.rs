//! The bridge's Prometheus metrics and readiness (`/metrics`, `/ready`, `/health` on
//! `metrics_listen`, loopback by default; the text format and the listener are the
//! `telemetry` crate's). Counters live here and are bumped where things happen (the
//! meters' requests, the attestor's rounds, the keeper's acknowledgements, the store's
//! writer); the rest (store size, backlog, certificates) is read when Prometheus scrapes.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use telemetry::{
    Counter, CounterMap, Endpoints, Exposition, Histogram, Kind, Readiness, LATENCY_BUCKETS,
};

use crate::attestor::Attestor;
use crate::service::Service;

/// What the meters' requests and the attestor count.
#[derive(Debug)]
pub struct BridgeMetrics {
    /// Requests by route (a fixed set of patterns) and status.
    pub requests: CounterMap<(&'static str, u16)>,
    pub request_seconds: Histogram,
    /// Register readings stored (a retry of one already stored is not counted again).
    pub readings_accepted: Counter,
    /// Posts (and puts) of readings refused, by the reason of the reading or document that
    /// refused them: nothing of a refused post is stored.
    pub posts_refused: CounterMap<&'static str>,
    /// Per building (meter code), the end time of its latest accepted reading.
    last_reading: Mutex<HashMap<String, i64>>,
    /// Per building, the notAfter of the device certificate it last connected with.
    device_not_after: Mutex<HashMap<String, i64>>,
    pub batches_signed: Counter,
    pub batches_resigned: Counter,
    pub batches_acknowledged: Counter,
    /// TLS handshakes refused or timed out, by what happened.
    pub handshakes_failed: CounterMap<&'static str>,
    pub connections_refused_per_device: Counter,
    /// Flow reservation requests stored, by side.
    pub flow_requests: CounterMap<&'static str>,
    /// Demand-response responses stored, by status.
    pub dr_responses: CounterMap<&'static str>,
}

impl Default for BridgeMetrics {
    fn default() -> Self {
        BridgeMetrics {
            requests: CounterMap::default(),
            request_seconds: Histogram::new(LATENCY_BUCKETS),
            readings_accepted: Counter::default(),
            posts_refused: CounterMap::default(),
            last_reading: Mutex::default(),
            device_not_after: Mutex::default(),
            batches_signed: Counter::default(),
            batches_resigned: Counter::default(),
            batches_acknowledged: Counter::default(),
            handshakes_failed: CounterMap::default(),
            connections_refused_per_device: Counter::default(),
            flow_requests: CounterMap::default(),
            dr_responses: CounterMap::default(),
        }
    }
}

/// Device certificates expiring within this many seconds are exposed (the others would
/// be 10,000 series that say nothing).
pub const DEVICE_CERT_WINDOW_S: i64 = 30 * 86_400;

impl BridgeMetrics {
    /// A building's reading ending at `timestamp` was accepted.
    pub fn reading_from(&self, building: &str, timestamp: i64) {
        let mut last = self.last_reading.lock().unwrap_or_else(|p| p.into_inner());
        match last.get_mut(building) {
            Some(t) => *t = (*t).max(timestamp),
            None => {
                last.insert(building.to_string(), timestamp);
            }
        }
    }

    /// A building connected with a certificate valid until `not_after`.
    pub fn device_certificate(&self, building: &str, not_after: i64) {
        let mut certs = self
            .device_not_after
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if certs.get(building) != Some(&not_after) {
            certs.insert(building.to_string(), not_after);
        }
    }

    pub fn last_reading_of(&self, building: &str) -> Option<i64> {
        let last = self.last_reading.lock().unwrap_or_else(|p| p.into_inner());
        last.get(building).copied()
    }
}

/// The route pattern of a request path (a bounded label).
pub fn route_label(path: &str) -> &'static str {
    // Per request: at most four segments looked at, nothing allocated.
    let mut parts = path.trim_end_matches('/').split('/').skip(1);
    let segments: [Option<&str>; 4] = std::array::from_fn(|_| parts.next());
    match segments {
        [Some("dcap"), None, ..] => "/dcap",
        [Some("tm"), None, ..] => "/tm",
        [Some("edev"), None, ..] => "/edev",
        [Some("edev"), Some(_), None, _] => "/edev/{id}",
        [Some("edev"), Some(_), Some(_), None] => "/edev/{id}/{resource}",
        [Some("mup"), None, ..] => "/mup",
        [Some("mup"), Some(_), None, _] => "/mup/{id}",
        _ => "other",
    }
}

/// The notAfter of a DER certificate, Unix seconds.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// What `/metrics` and `/ready` read.
pub struct BridgeEndpoints {
    pub metrics: Arc<BridgeMetrics>,
    pub service: Arc<Service>,
    pub attestor: Arc<Attestor>,
    pub data_dir: PathBuf,
    pub store_path: PathBuf,
    /// The campus CA's and the bridge's server certificate's notAfter.
    pub ca_not_after: Option<i64>,
    pub server_not_after: Option<i64>,
    /// Whether batches can be bound to a cluster (`cluster_genesis_hash` set).
    pub cluster_set: bool,
    pub attest_interval_s: u32,
    /// The least time between two attested readings of a meter (the oracle's).
    pub min_interval_s: u32,
    /// How often meters are asked to post (their interval: a meter silent for two of them
    /// is alerted).
    pub post_rate_s: u32,
    /// When the bridge started, Unix seconds.
    pub started_at: i64,
}

/// Free and total bytes of the file system holding `path`.
fn file_system(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes only the struct passed; the path is NUL-terminated.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        let unit = s.f_frsize as u64;
        Some((s.f_bavail as u64 * unit, s.f_blocks as u64 * unit))
    }
}

impl BridgeEndpoints {
    fn store_bytes(&self) -> u64 {
        let mut files = vec![self.store_path.clone()];
        for suffix in [".wal", ".wal.1"] {
            let mut p = self.store_path.clone().into_os_string();
            p.push(suffix);
            files.push(PathBuf::from(p));
        }
        files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    }
}

impl Endpoints for BridgeEndpoints {
    fn metrics(&self) -> String {
        let m = &self.metrics;
        let now = telemetry::unix_now();
        let mut e = Exposition::new();
        e.build_info("bridge", env!("CARGO_PKG_VERSION"));
        e.counters(
            "gridtokenx_bridge_http_requests_total",
            "IEEE 2030.5 requests answered, by route pattern and HTTP status.",
            &["route", "status"],
            &m.requests,
        );
        e.histogram(
            "gridtokenx_bridge_http_request_duration_seconds",
            "Time from a request's head to its answer (body read, checked, stored durably).",
            &m.request_seconds,
        );
        e.counter(
            "gridtokenx_bridge_readings_accepted_total",
            "Register readings stored (a retried reading counts once).",
            m.readings_accepted.get(),
        );
        e.counters(
            "gridtokenx_bridge_posts_refused_total",
            "Posts of readings refused (nothing of them stored), by the reason of the reading or document that refused them.",
            &["reason"],
            &m.posts_refused,
        );
        e.counters(
            "gridtokenx_bridge_flow_requests_total",
            "Flow reservation requests buildings' EMSs posted (stored), by side.",
            &["side"],
            &m.flow_requests,
        );
        e.counters(
            "gridtokenx_bridge_dr_responses_total",
            "Responses to demand-response events buildings posted, by status.",
            &["status"],
            &m.dr_responses,
        );
        e.counters(
            "gridtokenx_bridge_tls_handshakes_failed_total",
            "TLS handshakes refused (unknown, revoked or malformed certificates), timed out, or shed (too many from one address).",
            &["reason"],
            &m.handshakes_failed,
        );
        e.counter(
            "gridtokenx_bridge_device_connections_refused_total",
            "Connections closed because the device already held max_connections_per_device.",
            m.connections_refused_per_device.get(),
        );
        let stats = self.service.store.stats();
        e.histogram(
            "gridtokenx_bridge_store_batch_jobs",
            "Requests committed together by the store's writer (one log sync for all).",
            &stats.batch_jobs,
        );
        e.histogram(
            "gridtokenx_bridge_store_commit_duration_seconds",
            "Time the store's writer took for one batch (run and commit, before the log sync).",
            &stats.commit_seconds,
        );
        e.histogram(
            "gridtokenx_bridge_store_checkpoint_duration_seconds",
            "Durable commits that empty the store's log.",
            &stats.checkpoint_seconds,
        );
        e.gauge(
            "gridtokenx_bridge_store_size_bytes",
            "The store's files (database and log) on disk.",
            self.store_bytes() as f64,
        );
        if let Some((free, total)) = file_system(&self.data_dir) {
            e.gauge(
                "gridtokenx_bridge_store_filesystem_avail_bytes",
                "Bytes the bridge may still write on the file system holding its data directory.",
                free as f64,
            );
            e.gauge(
                "gridtokenx_bridge_store_filesystem_size_bytes",
                "Size of the file system holding the data directory.",
                total as f64,
            );
        }
        e.gauge(
            "gridtokenx_bridge_store_failed",
            "1 once the store can no longer make writes durable (restart the bridge).",
            f64::from(u8::from(self.service.store.failure().is_some())),
        );
        let read = self.service.store.read().ok();
        let pending = read.as_ref().and_then(|r| r.pending_batches().ok());
        let floor = read.as_ref().and_then(|r| r.chain_floor().ok());
        let (export_on, export_cap) = self.service.store.export_queue();
        let export = read
            .as_ref()
            .filter(|_| export_on)
            .and_then(|r| r.export_status().ok());
        drop(read);
        if let Some(q) = export {
            e.gauge(
                "gridtokenx_bridge_export_waiting_readings",
                "Readings in the export queue the history exporter has not taken.",
                q.waiting as f64,
            );
            e.gauge(
                "gridtokenx_bridge_export_max_waiting_readings",
                "The export queue's cap (export_max_waiting): beyond it the oldest are dropped.",
                export_cap as f64,
            );
            e.counter(
                "gridtokenx_bridge_export_dropped_readings_total",
                "Readings dropped from the export queue unexported (it was over its cap), ever.",
                q.dropped,
            );
            e.counter(
                "gridtokenx_bridge_export_dropped_batches_total",
                "Signed batches pruned before the history exporter took them (30 days past the retention), ever.",
                q.batches_dropped,
            );
            e.gauge(
                "gridtokenx_bridge_export_oldest_waiting_age_seconds",
                "Age of the oldest reading waiting for the history exporter (0: none waits).",
                q.oldest_received_at
                    .map(|t| (crate::server::now() - t).max(0) as f64)
                    .unwrap_or(0.0),
            );
        }
        e.counter(
            "gridtokenx_bridge_batches_signed_total",
            "Batches the attestor signed since the bridge started.",
            m.batches_signed.get(),
        );
        e.counter(
            "gridtokenx_bridge_batches_resigned_total",
            "Batches signed again because the chain settled their sequence without them.",
            m.batches_resigned.get(),
        );
        e.counter(
            "gridtokenx_bridge_batches_acknowledged_total",
            "Batches the keeper acknowledged (on chain) since the bridge started.",
            m.batches_acknowledged.get(),
        );
        if let Some(pending) = pending {
            e.gauge(
                "gridtokenx_bridge_batches_unacknowledged",
                "Signed batches the keeper has not acknowledged yet.",
                pending as f64,
            );
        }
        if let Some(floor) = floor {
            e.gauge(
                "gridtokenx_bridge_chain_floor_sequence",
                "The chain's highest settled batch sequence, as the keeper last reported it.",
                floor as f64,
            );
        }
        let round = self.attestor.last_round();
        e.gauge(
            "gridtokenx_bridge_start_time_seconds",
            "When the bridge started (a bridge restarting over and over shows here).",
            self.started_at as f64,
        );
        e.gauge(
            "gridtokenx_bridge_attestation_last_round_timestamp_seconds",
            "When the attestor last ran a round (the start until one has).",
            round.as_ref().map_or(self.started_at, |r| r.at) as f64,
        );
        e.gauge(
            "gridtokenx_bridge_min_interval_seconds",
            "The least time between two attested readings of a meter (min_interval_s, the oracle's).",
            f64::from(self.min_interval_s),
        );
        e.gauge(
            "gridtokenx_bridge_attest_interval_seconds",
            "The configured attestation interval (alerts count in these).",
            f64::from(self.attest_interval_s),
        );
        e.gauge(
            "gridtokenx_bridge_post_rate_seconds",
            "How often meters are asked to post (postRate): a meter's interval.",
            f64::from(self.post_rate_s),
        );
        e.gauge(
            "gridtokenx_bridge_oldest_unattested_reading_age_seconds",
            "Age of the oldest reading newer than its meter's last attested one, as of the last round (0: none).",
            round
                .as_ref()
                .and_then(|r| r.oldest_unattested_s.map(|s| (now - r.at).max(0) + s))
                .unwrap_or(0) as f64,
        );
        e.gauge(
            "gridtokenx_bridge_attestation_waiting_meters",
            "Meters with a new reading the last round left unattested.",
            round.as_ref().map_or(0, |r| r.waiting_meters) as f64,
        );
        e.gauge(
            "gridtokenx_bridge_attestation_backlog_full",
            "1 when the last round stopped at max_pending_batches (the keeper is behind).",
            f64::from(u8::from(round.as_ref().is_some_and(|r| r.backlog_full))),
        );
        // Every active meter of the directory: one that never posted since the start shows
        // as the start time, so that it is counted silent as well.
        let started = self.started_at;
        e.family(
            "gridtokenx_bridge_last_reading_timestamp_seconds",
            "End time of each building's latest accepted reading (since the bridge started: the start time until one comes).",
            Kind::Gauge,
        );
        let mut meters = self.service.directory.all();
        meters.retain(|meter| meter.active);
        meters.sort_by(|a, b| a.code.cmp(&b.code));
        {
            let last = m.last_reading.lock().unwrap_or_else(|p| p.into_inner());
            for meter in &meters {
                let at = last.get(&meter.code).copied().unwrap_or(started);
                e.sample(
                    "gridtokenx_bridge_last_reading_timestamp_seconds",
                    &[("building", &meter.code)],
                    at as f64,
                );
            }
        }
        e.gauge(
            "gridtokenx_bridge_meters_active",
            "Active meters in the bridge's directory (registry status and local deny list).",
            meters.len() as f64,
        );
        e.gauge(
            "gridtokenx_bridge_meters_denied",
            "Meters on the bridge's local deny list.",
            self.service.directory.denied().len() as f64,
        );
        e.family(
            "gridtokenx_certificate_not_after_timestamp_seconds",
            "notAfter of the campus CA, the bridge's server certificate, and the active meters' device certificates expiring within 30 days (from the PKI directory at start, then as presented).",
            Kind::Gauge,
        );
        if let Some(t) = self.ca_not_after {
            e.sample(
                "gridtokenx_certificate_not_after_timestamp_seconds",
                &[("role", "ca"), ("subject", "campus")],
                t as f64,
            );
        }
        if let Some(t) = self.server_not_after {
            e.sample(
                "gridtokenx_certificate_not_after_timestamp_seconds",
                &[("role", "server"), ("subject", "bridge")],
                t as f64,
            );
        }
        // Active meters only: a retired or denied meter's certificate needs no renewal.
        let active: std::collections::HashSet<&str> =
            meters.iter().map(|m| m.code.as_str()).collect();
        let mut expiring: Vec<(String, i64)> = m
            .device_not_after
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(c, t)| **t - now <= DEVICE_CERT_WINDOW_S && active.contains(c.as_str()))
            .map(|(c, t)| (c.clone(), *t))
            .collect();
        expiring.sort();
        for (code, t) in expiring {
            e.sample(
                "gridtokenx_certificate_not_after_timestamp_seconds",
                &[("role", "device"), ("subject", &code)],
                t as f64,
            );
        }
        e.finish()
    }

    fn readiness(&self) -> Readiness {
        let mut reasons = Vec::new();
        if let Some(failure) = self.service.store.failure() {
            reasons.push(format!(
                "the store can no longer make writes durable ({failure}): restart the bridge"
            ));
        }
        if !self.cluster_set {
            reasons.push(
                "cluster_genesis_hash is not set: nothing is attested (set it to the genesis hash of the oracle's cluster)"
                    .into(),
            );
        }
        if let Some(r) = self.attestor.last_round() {
            if r.backlog_full {
                reasons.push(format!(
                    "{} signed batches await the keeper (max_pending_batches): signing is paused until the keeper acknowledges some",
                    r.pending_batches
                ));
            }
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_bounded_set() {
        assert_eq!(route_label("/mup/3"), "/mup/{id}");
        assert_eq!(route_label("/mup/3/"), "/mup/{id}");
        assert_eq!(route_label("/edev/0/fsa"), "/edev/{id}/{resource}");
        assert_eq!(route_label("/edev/0/a/b/c"), "other");
        assert_eq!(route_label("/x"), "other");
        assert_eq!(route_label("/"), "other");
    }

    #[test]
    fn a_building_keeps_its_latest_reading() {
        let m = BridgeMetrics::default();
        m.reading_from("LIB", 100);
        m.reading_from("LIB", 50);
        m.reading_from("GYM", 70);
        assert_eq!(m.last_reading_of("LIB"), Some(100));
        assert_eq!(m.last_reading_of("GYM"), Some(70));
        assert_eq!(m.last_reading_of("LAB"), None);
    }
}
