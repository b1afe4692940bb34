//! The keeper's Prometheus metrics and readiness (`/metrics`, `/ready`, `/health` on
//! `metrics_listen`, loopback by default; the text format and the listener are the
//! `telemetry` crate's). Transactions and delays are counted as they happen; the rest is
//! the status (`Status`) as the last pass left it.
use std::sync::Mutex;

use solana_instruction::Instruction;
use telemetry::{
    Counter, CounterMap, Endpoints, Exposition, Gauge, Histogram, Readiness, DELAY_BUCKETS,
};

use crate::Status;

/// What the keeper counts as it goes.
#[derive(Debug)]
pub struct KeeperMetrics {
    /// Transactions by their instruction (the first that is not a compute-budget one) and
    /// outcome: confirmed, refused (by a program), transient (retried next pass).
    pub transactions: CounterMap<(&'static str, &'static str)>,
    /// From a reading's end to the confirmation of the batch that carried it on chain.
    pub reading_to_chain_seconds: Histogram,
    /// Readings the oracle skipped (the rest of their batch applied), by its reason.
    pub readings_skipped: CounterMap<&'static str>,
    /// Refusals of batches by the oracle (each attempt).
    pub batch_refusals: Counter,
    /// Refusals the keeper gave up on (batches after 3 attempts, cranks at once).
    pub given_up: Counter,
    /// The payer's balance; negative until read.
    pub payer_lamports: Gauge,
    /// Flow reservations carried, by what became of them (placed, cancelled, rejected,
    /// filled).
    pub flow_updates: CounterMap<&'static str>,
    /// Unix time of the last pass that completed (the start until one has).
    pub last_pass_ok: Gauge,
    /// When the keeper started.
    pub started_at: Gauge,
    pub pass_failures: Counter,
    /// The status after the last pass.
    pub status: Mutex<Status>,
}

impl Default for KeeperMetrics {
    fn default() -> Self {
        KeeperMetrics {
            transactions: CounterMap::default(),
            reading_to_chain_seconds: Histogram::new(DELAY_BUCKETS),
            readings_skipped: CounterMap::default(),
            batch_refusals: Counter::default(),
            given_up: Counter::default(),
            payer_lamports: Gauge::new(-1),
            flow_updates: CounterMap::default(),
            last_pass_ok: Gauge::default(),
            started_at: Gauge::default(),
            pass_failures: Counter::default(),
            status: Mutex::new(Status::default()),
        }
    }
}

/// The label of a transaction: its first instruction's name, past the compute budget's and
/// the Ed25519 program's (a batch's signature check comes before `submit_readings`).
pub fn instruction_label(instructions: &[Instruction]) -> &'static str {
    let Some(ix) = instructions.iter().find(|ix| {
        ix.program_id != solana_sdk_ids::compute_budget::ID
            && ix.program_id != solana_sdk_ids::ed25519_program::ID
    }) else {
        return "other";
    };
    if ix.program_id == solana_sdk_ids::address_lookup_table::ID {
        return "lookup_table";
    }
    sdk::names::instruction(&ix.program_id, &ix.data).unwrap_or("other")
}

/// The oracle's name for an error code (6000 + variant), for skipped readings.
pub fn oracle_error_label(code: u32) -> &'static str {
    sdk::names::error(&oracle::ID, code).unwrap_or("other")
}

impl KeeperMetrics {
    /// A transaction's outcome.
    pub fn sent(&self, instructions: &[Instruction], outcome: &'static str) {
        self.transactions
            .inc((instruction_label(instructions), outcome));
    }

    /// A transaction's result, counted by its instruction; the chain away (nothing sent)
    /// is not counted.
    pub fn count(
        &self,
        instructions: &[Instruction],
        result: &Result<sdk::chain::Confirmed, sdk::chain::SendError>,
    ) {
        let outcome = match result {
            Ok(_) => "confirmed",
            Err(sdk::chain::SendError::Unavailable(_)) => return,
            Err(e) if e.is_program_refusal() => "refused",
            Err(_) => "transient",
        };
        self.sent(instructions, outcome);
    }
}

/// What `/metrics` and `/ready` read: the shared counters, and why the keeper is not ready.
pub struct KeeperEndpoints {
    pub metrics: std::sync::Arc<KeeperMetrics>,
    /// Why not ready (the last pass's failure, an inconsistency), set after every pass.
    pub not_ready: Mutex<Readiness>,
    /// Lamports under which the payer counts as low (the alert's threshold, exposed).
    pub payer_low_lamports: u64,
}

impl Endpoints for KeeperEndpoints {
    fn metrics(&self) -> String {
        let m = &self.metrics;
        let s = m.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut e = Exposition::new();
        e.build_info("keeper", env!("CARGO_PKG_VERSION"));
        e.counter(
            "gridtokenx_keeper_batches_applied_total",
            "Attested batches the keeper applied on chain.",
            s.batches_applied,
        );
        e.counter(
            "gridtokenx_keeper_batches_already_applied_total",
            "Batches found applied already (an earlier run, another keeper).",
            s.batches_already_applied,
        );
        e.counter(
            "gridtokenx_keeper_batches_resigned_total",
            "Batches the bridge signed again because the chain settled their sequence without them.",
            s.batches_resigned,
        );
        e.counter(
            "gridtokenx_keeper_batch_refusals_total",
            "Refusals of batches by the oracle (each attempt; given up after 3).",
            m.batch_refusals.get(),
        );
        e.counter(
            "gridtokenx_keeper_readings_submitted_total",
            "Readings in the batches the keeper applied.",
            s.readings_submitted,
        );
        e.counters(
            "gridtokenx_keeper_readings_skipped_total",
            "Readings the oracle skipped (the rest of their batch applied), by the oracle's reason.",
            &["reason"],
            &m.readings_skipped,
        );
        e.counters(
            "gridtokenx_keeper_transactions_total",
            "Transactions sent, by instruction and outcome (confirmed, refused by a program, transient: retried); their sum is every transaction sent.",
            &["instruction", "outcome"],
            &m.transactions,
        );
        e.histogram(
            "gridtokenx_keeper_reading_to_chain_seconds",
            "From a reading's end (when the meter posts it) to the confirmation of the batch that carried it.",
            &m.reading_to_chain_seconds,
        );
        e.gauge(
            "gridtokenx_keeper_bridge_batches_pending",
            "Batches at the bridge not yet confirmed on chain, as of the last pass (at most one window, 128; the bridge's gridtokenx_bridge_batches_unacknowledged is the whole backlog).",
            s.batches_pending as f64,
        );
        e.gauge(
            "gridtokenx_keeper_chain_highest_sequence",
            "The oracle's highest settled batch sequence, as last reported to the bridge.",
            s.chain_floor as f64,
        );
        // Absent until read (a keeper that cannot reach the RPC endpoint says nothing of it).
        if m.payer_lamports.get() >= 0 {
            e.gauge(
                "gridtokenx_keeper_payer_balance_lamports",
                "The keeper's fee payer's balance.",
                m.payer_lamports.get() as f64,
            );
        }
        e.counters(
            "gridtokenx_keeper_flow_reservations_total",
            "IEEE 2030.5 flow reservations carried into the market, by what became of them.",
            &["outcome"],
            &m.flow_updates,
        );
        e.gauge(
            "gridtokenx_keeper_payer_low_lamports",
            "The payer balance under which the keeper counts as low on funds (payer_low_sol).",
            self.payer_low_lamports as f64,
        );
        e.counter(
            "gridtokenx_keeper_grid_minted_joules_total",
            "Energy minted as GRID from verified export (1 Wh of GRID = 3,600 J).",
            s.grid_minted_wh.saturating_mul(3_600),
        );
        e.counter(
            "gridtokenx_keeper_recs_issued_total",
            "Renewable-energy certificates issued.",
            s.recs_issued,
        );
        e.counter(
            "gridtokenx_keeper_intervals_cleared_total",
            "Market intervals cleared.",
            s.intervals_cleared,
        );
        e.counter(
            "gridtokenx_keeper_orders_settled_total",
            "Orders settled after clearing.",
            s.orders_settled,
        );
        e.counter("gridtokenx_keeper_passes_total", "Passes run.", s.passes);
        e.counter(
            "gridtokenx_keeper_pass_failures_total",
            "Passes that failed (bridge or RPC away, an inconsistency): retried.",
            m.pass_failures.get(),
        );
        e.gauge(
            "gridtokenx_keeper_start_time_seconds",
            "When the keeper started (a keeper restarting over and over shows here).",
            m.started_at.get() as f64,
        );
        e.gauge(
            "gridtokenx_keeper_last_successful_pass_timestamp_seconds",
            "When the last pass completed (the keeper's start until one has).",
            m.last_pass_ok.get() as f64,
        );
        e.counter(
            "gridtokenx_keeper_refusals_given_up_total",
            "Refusals the keeper gave up on (each listed in its status with the program's reason; the most recent 100).",
            m.given_up.get(),
        );
        e.gauge(
            "gridtokenx_keeper_inconsistencies",
            "Disagreements between bridge, chain and oracle found by the last check (nothing is submitted while > 0).",
            s.inconsistencies.len() as f64,
        );
        e.gauge(
            "gridtokenx_keeper_meters_active",
            "Active meters in the registry.",
            s.meters_active as f64,
        );
        e.finish()
    }

    fn readiness(&self) -> Readiness {
        self.not_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_named_by_their_instruction() {
        let payer = anchor_lang::prelude::Pubkey::new_unique();
        let submit = sdk::ix::oracle::submit_readings(payer, 1, &[[1u8; 20]]);
        let budget = solana_instruction::Instruction::new_with_bytes(
            solana_sdk_ids::compute_budget::ID,
            &[2, 0, 0, 0, 0],
            vec![],
        );
        assert_eq!(
            instruction_label(&[budget.clone(), submit]),
            "submit_readings"
        );
        assert_eq!(instruction_label(&[budget]), "other");
        assert_eq!(instruction_label(&[]), "other");
        assert_eq!(oracle_error_label(6000), "Unauthorized");
        assert_eq!(oracle_error_label(1), "other");
    }

    #[test]
    fn the_status_and_counters_are_exposed_and_readiness_says_why() {
        let metrics = std::sync::Arc::new(KeeperMetrics::default());
        {
            let mut s = metrics.status.lock().unwrap();
            s.batches_applied = 7;
            s.grid_minted_wh = 1_500;
            s.batches_pending = 2;
            s.inconsistencies = vec!["the bridge signs for another cluster".into()];
        }
        metrics.payer_lamports.set(2_000_000_000);
        metrics.sent(
            &[sdk::ix::oracle::submit_readings(
                anchor_lang::prelude::Pubkey::new_unique(),
                1,
                &[[1u8; 20]],
            )],
            "confirmed",
        );
        metrics.readings_skipped.inc(oracle_error_label(6000));
        metrics.reading_to_chain_seconds.observe(42.0);
        let endpoints = KeeperEndpoints {
            metrics,
            not_ready: Mutex::new(vec!["no pass has completed yet".into()]),
            payer_low_lamports: 500_000_000,
        };
        let text = endpoints.metrics();
        for line in [
            "gridtokenx_keeper_batches_applied_total 7",
            "gridtokenx_keeper_grid_minted_joules_total 5400000",
            "gridtokenx_keeper_bridge_batches_pending 2",
            "gridtokenx_keeper_inconsistencies 1",
            "gridtokenx_keeper_payer_balance_lamports 2000000000",
            "gridtokenx_keeper_payer_low_lamports 500000000",
            "gridtokenx_keeper_transactions_total{instruction=\"submit_readings\",outcome=\"confirmed\"} 1",
            "gridtokenx_keeper_readings_skipped_total{reason=\"Unauthorized\"} 1",
            "gridtokenx_keeper_reading_to_chain_seconds_bucket{le=\"60\"} 1",
            "gridtokenx_build_info{component=\"keeper\",version=\"",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        telemetry::assert_promtool_accepts(&text);
        assert_eq!(
            endpoints.readiness(),
            vec!["no pass has completed yet".to_string()]
        );
    }
}
