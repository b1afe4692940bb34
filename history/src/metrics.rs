//! The exporter's metrics (`/metrics` on `metrics_listen`) and readiness.
use std::collections::BTreeMap;
use std::sync::Mutex;

use telemetry::{CounterMap, Endpoints, Exposition, Kind, Readiness};

/// Per source (`bridge.readings`, `bridge.batches`, `chain.<program>`).
#[derive(Default)]
pub struct ExportMetrics {
    pub rows: CounterMap<String>,
    pub pages: CounterMap<String>,
    pub errors: CounterMap<String>,
    /// Gaps recorded in `export_gaps`: readings the bridge dropped over its queue's cap.
    pub gaps: CounterMap<String>,
    /// Per source: the age (s) of the oldest row not in the database at the last pass (0:
    /// caught up), when that pass ended (Unix s), and the last error (cleared by a pass
    /// that worked).
    pub state: Mutex<BTreeMap<String, SourceState>>,
}

#[derive(Clone, Debug, Default)]
pub struct SourceState {
    pub lag_s: i64,
    pub last_pass_at: i64,
    pub error: Option<String>,
}

impl ExportMetrics {
    pub fn passed(&self, source: &str, rows: u64, lag_s: i64, now: i64) {
        self.pages.inc(source.to_string());
        self.rows.add(source.to_string(), rows);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let s = state.entry(source.to_string()).or_default();
        s.lag_s = lag_s.max(0);
        s.last_pass_at = now;
        s.error = None;
    }

    pub fn failed(&self, source: &str, error: &anyhow::Error) {
        self.errors.inc(source.to_string());
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.entry(source.to_string()).or_default().error = Some(format!("{error:#}"));
    }
}

impl Endpoints for ExportMetrics {
    fn metrics(&self) -> String {
        let mut e = Exposition::new();
        e.build_info("exporter", env!("CARGO_PKG_VERSION"));
        e.counters(
            "gridtokenx_export_rows_total",
            "Rows written into the history database, by source.",
            &["source"],
            &self.rows,
        );
        e.counters(
            "gridtokenx_export_pages_total",
            "Pages (one transaction each) written, by source.",
            &["source"],
            &self.pages,
        );
        e.counters(
            "gridtokenx_export_errors_total",
            "Passes that failed (retried), by source.",
            &["source"],
            &self.errors,
        );
        e.counters(
            "gridtokenx_export_gaps_total",
            "Gaps a source left before the exporter took them (rows of export_gaps), by source.",
            &["source"],
            &self.gaps,
        );
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        e.family(
            "gridtokenx_export_lag_seconds",
            "Age of the oldest row not yet in the history database at the source's last pass (0: caught up).",
            Kind::Gauge,
        );
        for (source, s) in &state {
            e.sample(
                "gridtokenx_export_lag_seconds",
                &[("source", source)],
                s.lag_s as f64,
            );
        }
        e.family(
            "gridtokenx_export_last_pass_timestamp_seconds",
            "When the source's last successful pass ended (Unix seconds).",
            Kind::Gauge,
        );
        for (source, s) in &state {
            e.sample(
                "gridtokenx_export_last_pass_timestamp_seconds",
                &[("source", source)],
                s.last_pass_at as f64,
            );
        }
        e.finish()
    }

    fn readiness(&self) -> Readiness {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .iter()
            .filter_map(|(source, s)| s.error.as_ref().map(|e| format!("{source}: {e}")))
            .collect()
    }
}
