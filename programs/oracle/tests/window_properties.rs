//! The oracle's batch window (`OracleConfig::check_sequence`, `record_batch`,
//! `skip_through`) against a model that keeps every settled sequence in a set, over random
//! arrivals (early, late, repeated, beyond the window) and governance skips: a batch applies
//! at most once, only within `BATCH_WINDOW` of the last contiguous one, none is lost (the
//! window's start is always the end of the settled prefix), and a skip settles exactly the
//! sequences it names.
use std::collections::BTreeSet;

use anchor_lang::error::Error;
use oracle::{OracleConfig, OracleError, BATCH_WINDOW, MAX_SKIP_BATCHES};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// A batch `ahead` after the window's start (0: the start itself, a replay).
    Arrive { ahead: u64 },
    /// A batch already applied arrives again.
    Replay { pick: usize },
    /// Governance skips through `ahead` after the start.
    Skip { ahead: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..BATCH_WINDOW + 4).prop_map(|ahead| Op::Arrive { ahead }),
        // Mostly the next few: the keeper's usual pace.
        6 => (1..4u64).prop_map(|ahead| Op::Arrive { ahead }),
        2 => any::<usize>().prop_map(|pick| Op::Replay { pick }),
        1 => (0..MAX_SKIP_BATCHES + 3).prop_map(|ahead| Op::Skip { ahead }),
    ]
}

fn code(e: Error) -> u32 {
    match e {
        Error::AnchorError(a) => a.error_code_number,
        Error::ProgramError(p) => panic!("unexpected program error {p:?}"),
    }
}

/// The model's window start: the end of the settled prefix 1, 2, ...
fn start(settled: &BTreeSet<u64>, from: u64) -> u64 {
    let mut s = from;
    while settled.contains(&(s + 1)) {
        s += 1;
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn batches_apply_once_within_the_window_and_none_is_lost(
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let mut config: OracleConfig = bytemuck::Zeroable::zeroed();
        let mut settled: BTreeSet<u64> = BTreeSet::new();
        let mut applied: Vec<u64> = Vec::new();
        let mut base = 0u64;
        for op in ops {
            let arriving = match op {
                Op::Arrive { ahead } => Some(base + ahead),
                Op::Replay { pick } => {
                    (!applied.is_empty()).then(|| applied[pick % applied.len()])
                }
                Op::Skip { ahead } => {
                    let through = base + ahead;
                    // The handler's bounds (config_admin::skip_batches).
                    if through > base && through <= base + MAX_SKIP_BATCHES {
                        config.skip_through(through);
                        settled.extend(base + 1..=through);
                    }
                    None
                }
            };
            if let Some(sequence) = arriving {
                let result = config.check_sequence(sequence);
                if sequence <= base || settled.contains(&sequence) {
                    prop_assert_eq!(result.map_err(code), Err(OracleError::BatchReplayed.into()));
                } else if sequence > base + BATCH_WINDOW {
                    prop_assert_eq!(
                        result.map_err(code),
                        Err(OracleError::BatchOutOfOrder.into())
                    );
                } else {
                    prop_assert!(result.is_ok());
                    config.record_batch(sequence, [sequence as u8; 32]);
                    settled.insert(sequence);
                    applied.push(sequence);
                    prop_assert_eq!(config.applied_batch(sequence), Some([sequence as u8; 32]));
                }
            }
            base = start(&settled, base);
            prop_assert_eq!(config.last_sequence, base);
            for s in base.saturating_sub(2)..=base + BATCH_WINDOW + 2 {
                prop_assert_eq!(
                    config.is_settled(s),
                    s <= base || (s <= base + BATCH_WINDOW && settled.contains(&s)),
                    "sequence {} (start {})",
                    s,
                    base
                );
            }
            prop_assert_eq!(
                config.highest_sequence,
                settled.iter().next_back().copied().unwrap_or(0)
            );
        }
    }
}
