//! Prometheus metrics and readiness for the bridge and the keeper.
//!
//! The metrics are plain atomics ([`Counter`], [`Gauge`], [`Histogram`], [`CounterMap`])
//! that the hot paths update without locks (a labelled counter takes a short mutex), and
//! an [`Exposition`] that renders them in the Prometheus text format (version 0.0.4) when
//! scraped. [`serve`] answers `GET /metrics`, `GET /ready` (200, or 503 with the reasons,
//! one per line) and `GET /health` (200 while the process serves) on a listener of its own,
//! loopback by default: the figures are for the operator's Prometheus, not for the meters.
//!
//! Names follow Prometheus's conventions: the `gridtokenx_` prefix, base units (seconds,
//! bytes, joules) in the name, `_total` on counters, labels with a bounded set of values.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

mod serve;
pub use serve::{serve, Endpoints, Readiness};

/// A count that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (an integer: bytes, lamports, seconds since the epoch).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn new(v: i64) -> Gauge {
        Gauge(AtomicI64::new(v))
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Raises the gauge to `v` if it is lower (a latest time).
    pub fn raise(&self, v: i64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }
}

/// Observations counted into fixed buckets (cumulative when rendered), with their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then +Inf; not cumulative.
    buckets: Box<[AtomicU64]>,
    /// The sum, as f64 bits.
    sum: AtomicU64,
}

/// Buckets for request and commit durations, seconds: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for delays of minutes (a reading's way to the chain), seconds: 1 s to 1 h.
pub const DELAY_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// Buckets for sizes (jobs in a batch), 1 to 1,024.
pub const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

impl Histogram {
    /// `bounds` ascending.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    pub fn observe_since(&self, started: std::time::Instant) {
        self.observe(started.elapsed().as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

/// Counters under a label set drawn from a bounded set of values (a route and a status, a
/// refusal's reason): `K` is the label values, in the order of the label names given to
/// [`Exposition::counters`].
#[derive(Debug)]
pub struct CounterMap<K: Ord> {
    counts: Mutex<BTreeMap<K, u64>>,
}

impl<K: Ord> Default for CounterMap<K> {
    fn default() -> Self {
        CounterMap {
            counts: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord + Clone> CounterMap<K> {
    pub fn add(&self, key: K, n: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(key).or_insert(0) += n;
    }
    pub fn inc(&self, key: K) {
        self.add(key, 1);
    }
    pub fn snapshot(&self) -> Vec<(K, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
    pub fn get(&self, key: &K) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(key).copied().unwrap_or(0)
    }
}

/// Label values of a [`CounterMap`]'s key.
pub trait LabelValues {
    fn values(&self) -> Vec<String>;
}

impl LabelValues for &'static str {
    fn values(&self) -> Vec<String> {
        vec![self.to_string()]
    }
}

impl LabelValues for String {
    fn values(&self) -> Vec<String> {
        vec![self.clone()]
    }
}

impl<A: std::fmt::Display, B: std::fmt::Display> LabelValues for (A, B) {
    fn values(&self) -> Vec<String> {
        vec![self.0.to_string(), self.1.to_string()]
    }
}

/// The metric types of the text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A scrape being written: families one after the other, each with its `# HELP` and
/// `# TYPE` lines and its samples.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

/// A label value escaped as the text format asks (backslash, double quote, newline).
fn escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A float as the text format writes it.
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its help text and type.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        debug_assert!(valid_name(name), "metric name {name}");
        debug_assert!(
            kind != Kind::Counter || name.ends_with("_total"),
            "counter {name} without _total"
        );
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<f64>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                debug_assert!(valid_name(label), "label name {label}");
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape(value, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&number(value.into()));
        self.out.push('\n');
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, Kind::Counter);
        self.sample(name, &[], value as f64);
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: impl Into<f64>) {
        self.family(name, help, Kind::Gauge);
        self.sample(name, &[], value);
    }

    /// A labelled counter family from a [`CounterMap`]; `labels` names its key's values.
    pub fn counters<K: Ord + Clone + LabelValues>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        map: &CounterMap<K>,
    ) {
        self.family(name, help, Kind::Counter);
        for (key, count) in map.snapshot() {
            let values = key.values();
            debug_assert_eq!(values.len(), labels.len());
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            self.sample(name, &pairs, count as f64);
        }
    }

    /// A histogram's samples (`_bucket` cumulative with `le`, `_sum`, `_count`), under
    /// `labels`; call [`Exposition::family`] once before the first.
    pub fn histogram_samples(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, counted) in h.buckets.iter().enumerate() {
            cumulative += counted.load(Ordering::Relaxed);
            let le = match h.bounds.get(i) {
                Some(b) => number(*b),
                None => "+Inf".to_string(),
            };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum());
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }

    /// A histogram without labels.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, help, Kind::Histogram);
        self.histogram_samples(name, &[], h);
    }

    /// `gridtokenx_build_info{component,version} 1`.
    pub fn build_info(&mut self, component: &str, version: &str) {
        self.family(
            "gridtokenx_build_info",
            "The running build: its component and version (always 1).",
            Kind::Gauge,
        );
        self.sample(
            "gridtokenx_build_info",
            &[("component", component), ("version", version)],
            1.0,
        );
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// For tests: `promtool check metrics` on `text` (the exposition format and Prometheus's
/// naming lints), panicking with its findings. Skipped (with a note) when promtool is not
/// installed, unless GRIDTOKENX_REQUIRE_PROMTOOL is set (CI sets it and installs the
/// Debian package `prometheus`).
pub fn assert_promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var_os("GRIDTOKENX_REQUIRE_PROMTOOL").is_none(),
            "promtool not found: apt-get install prometheus"
        );
        eprintln!("skipped: promtool not found (apt-get install prometheus)");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 2.0, 3.0] {
            h.observe(v);
        }
        let mut e = Exposition::new();
        e.histogram("x_seconds", "X.", &h);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_seconds X.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{le=\"0.1\"} 2\nx_seconds_bucket{le=\"1\"} 3\n\
             x_seconds_bucket{le=\"+Inf\"} 5\nx_seconds_sum 5.65\nx_seconds_count 5\n"
        );
    }

    #[test]
    fn label_values_are_escaped_and_maps_render_in_order() {
        let map = CounterMap::default();
        map.inc(("b", 200));
        map.add(("a\"\\\n", 404), 3);
        map.inc(("b", 200));
        let mut e = Exposition::new();
        e.counters("r_total", "Requests.", &["route", "status"], &map);
        assert_eq!(
            e.finish(),
            "# HELP r_total Requests.\n# TYPE r_total counter\n\
             r_total{route=\"a\\\"\\\\\\n\",status=\"404\"} 3\n\
             r_total{route=\"b\",status=\"200\"} 2\n"
        );
        assert_eq!(map.get(&("b", 200)), 2);
    }

    #[test]
    fn gauges_raise_and_numbers_are_written_as_the_format_asks() {
        let g = Gauge::default();
        g.raise(5);
        g.raise(3);
        assert_eq!(g.get(), 5);
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(1e21), "1000000000000000000000");
        assert_eq!(number(0.25), "0.25");
        assert!(valid_name("gridtokenx_x:y_total"));
        assert!(!valid_name("1x") && !valid_name("a-b") && !valid_name(""));
    }

    #[test]
    fn promtool_accepts_every_kind_and_refuses_a_broken_name() {
        let h = Histogram::new(LATENCY_BUCKETS);
        h.observe(0.003);
        let map = CounterMap::default();
        map.inc(("/mup", 201));
        let mut e = Exposition::new();
        e.build_info("test", "0.1.0");
        e.counter("gridtokenx_test_things_total", "Things.", 3);
        e.gauge("gridtokenx_test_level_bytes", "Level.", 7.5);
        e.counters(
            "gridtokenx_test_requests_total",
            "Requests.",
            &["route", "status"],
            &map,
        );
        e.histogram("gridtokenx_test_duration_seconds", "Durations.", &h);
        assert_promtool_accepts(&e.finish());
        let broken = std::panic::catch_unwind(|| {
            assert_promtool_accepts("# HELP x_count X\n# TYPE x_count counter\nx_count 1\n")
        });
        if std::process::Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok()
        {
            assert!(broken.is_err(), "promtool refuses a counter without _total");
        }
    }
}
