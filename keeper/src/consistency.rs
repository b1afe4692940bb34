//! The keeper's checks of the bridge, the chain and the oracle against each other, at start
//! and on every pass: a bridge that signs with a key the oracle does not trust, for another
//! cluster or campus, or a quorum one bridge cannot meet would have every batch refused.
//! On any mismatch the keeper submits nothing and says what to change.
use anchor_lang::prelude::Pubkey;
use base64::Engine;
use keeper_protocol::{BridgeStatus, B64};

/// What the checks found; each entry says what is wrong and what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inconsistent(pub Vec<String>);

impl std::fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bridge, chain and oracle disagree; nothing is submitted until this is fixed: {}",
            self.0.join("; ")
        )
    }
}

impl std::error::Error for Inconsistent {}

fn b58(bytes: &[u8; 32]) -> String {
    Pubkey::new_from_array(*bytes).to_string()
}

/// Checks `bridge` (its status) against the cluster the RPC endpoint serves (`genesis`)
/// and the oracle's configuration; an empty list when they agree.
pub fn check(
    bridge: &BridgeStatus,
    genesis: &[u8; 32],
    oracle_program: &Pubkey,
    config: &oracle::OracleConfig,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let genesis_b58 = b58(genesis);
    let cluster = match bridge.cluster.as_deref() {
        None => {
            wrong.push(format!(
                "the bridge reports no cluster: it has no cluster_genesis_hash (so it signs nothing), or it is a release older than this keeper: set cluster_genesis_hash = \"{genesis_b58}\" in its configuration (GRIDTOKENX_BRIDGE_CLUSTER_GENESIS_HASH), or upgrade it, and restart it"
            ));
            None
        }
        Some(text) => match text.parse::<Pubkey>() {
            Ok(c) if c.to_bytes() == *genesis => Some(c),
            Ok(c) => {
                wrong.push(format!(
                    "the bridge signs for cluster {c}, but the keeper's rpc_url serves cluster {genesis_b58}: set the bridge's cluster_genesis_hash = \"{genesis_b58}\", or point the keeper's rpc_url at cluster {c}"
                ));
                None
            }
            Err(_) => {
                wrong.push(format!(
                    "the bridge reports cluster {text:?}, not a base58 hash: fix its cluster_genesis_hash (this cluster: \"{genesis_b58}\")"
                ));
                None
            }
        },
    };
    if bridge.oracle_program != oracle_program.to_string() {
        wrong.push(format!(
            "the bridge signs for oracle program {}, this keeper submits to {oracle_program}: run a bridge and a keeper of the same release",
            bridge.oracle_program
        ));
    }
    if bridge.campus != config.campus.to_string() {
        wrong.push(format!(
            "the bridge signs for campus {}, the oracle serves campus {}: run a bridge and a keeper of the same release, or the keeper against this bridge's cluster",
            bridge.campus, config.campus
        ));
    } else if let Some(cluster) = cluster {
        if let Ok(campus) = bridge.campus.parse::<Pubkey>() {
            let expected = oracle::attestation::batch_domain(
                &oracle_program.to_bytes(),
                &campus.to_bytes(),
                &cluster.to_bytes(),
            );
            if expected != config.domain {
                wrong.push(format!(
                    "the oracle was initialised for another cluster or campus (its batch domain is not this cluster's {genesis_b58}): initialise the oracle on this cluster (migrations), or point the keeper's rpc_url at the cluster it was initialised on"
                ));
            }
        }
    }
    let trusted: Vec<Pubkey> =
        config.attestors[..usize::from(config.attestor_count).min(config.attestors.len())].to_vec();
    let trusted_list = trusted
        .iter()
        .map(|k| B64.encode(k.to_bytes()))
        .collect::<Vec<_>>()
        .join(", ");
    match B64
        .decode(&bridge.attestor)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
    {
        Some(key) if trusted.iter().any(|t| t.to_bytes() == key) => {}
        Some(key) => wrong.push(format!(
            "the bridge signs with attestor key {} ({}), which the oracle does not trust (it trusts: {}): restore the bridge's attestor.key from its backup, or have the council propose the oracle's set_attestors with this key (governance propose, approve, execute)",
            bridge.attestor,
            Pubkey::new_from_array(key),
            if trusted_list.is_empty() { "none".to_string() } else { trusted_list.clone() }
        )),
        None => wrong.push(format!(
            "the bridge reports attestor key {:?}, not 32 bytes of base64: check the bridge's release",
            bridge.attestor
        )),
    }
    // The bridge must apply the oracle's limits or stricter ones: looser, it signs readings
    // the oracle skips.
    if let Some(l) = bridge.limits {
        let mut looser = Vec::new();
        if l.min_interval_s < config.min_interval_s {
            looser.push(format!("min_interval_s = {}", config.min_interval_s));
        }
        if l.max_future_skew_s > config.max_future_skew_s {
            looser.push(format!("max_future_skew_s = {}", config.max_future_skew_s));
        }
        if l.max_age_s > config.max_age_s {
            looser.push(format!("max_age_s = {}", config.max_age_s));
        }
        if l.tolerance_bps > config.tolerance_bps {
            looser.push(format!("tolerance_bps = {}", config.tolerance_bps));
        }
        if !looser.is_empty() {
            wrong.push(format!(
                "the bridge's reading limits are looser than the oracle's, so it would sign readings the oracle skips: set the bridge's {} (the oracle's values)",
                looser.join(", ")
            ));
        }
    }
    // One bridge gives one signature per batch.
    if config.quorum > 1 {
        wrong.push(format!(
            "the oracle needs {} attestor signatures per batch, but batches come from one bridge with one key: have the council propose the oracle's set_attestors with quorum 1",
            config.quorum
        ));
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (BridgeStatus, [u8; 32], Pubkey, oracle::OracleConfig) {
        let genesis = [7u8; 32];
        let campus = Pubkey::new_from_array([3; 32]);
        let attestor = [9u8; 32];
        let mut config: oracle::OracleConfig = bytemuck::Zeroable::zeroed();
        config.campus = campus;
        config.domain =
            oracle::attestation::batch_domain(&oracle::ID.to_bytes(), &campus.to_bytes(), &genesis);
        config.attestors[0] = Pubkey::new_from_array([1; 32]);
        config.attestors[1] = Pubkey::new_from_array(attestor);
        config.attestor_count = 2;
        config.quorum = 1;
        config.min_interval_s = 60;
        config.max_future_skew_s = 60;
        config.max_age_s = 86_400;
        config.tolerance_bps = 1_000;
        let bridge = BridgeStatus {
            attestor: B64.encode(attestor),
            oracle_program: oracle::ID.to_string(),
            campus: campus.to_string(),
            attestation: None,
            chain_floor: 0,
            cluster: Some(Pubkey::new_from_array(genesis).to_string()),
            limits: Some(keeper_protocol::Limits {
                max_future_skew_s: 60,
                min_interval_s: 60,
                max_age_s: 86_400,
                tolerance_bps: 1_000,
            }),
            export: None,
        };
        (bridge, genesis, oracle::ID, config)
    }

    fn one(found: Vec<String>, says: &str) {
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(says), "{found:?}");
    }

    #[test]
    fn agreeing_parts_pass() {
        let (b, g, p, c) = setup();
        assert!(check(&b, &g, &p, &c).is_empty());
    }

    #[test]
    fn each_mismatch_is_named_with_what_to_change() {
        let (b, g, p, mut c) = setup();
        // A regenerated attestor key.
        let mut other = b.clone();
        other.attestor = B64.encode([5u8; 32]);
        one(
            check(&other, &g, &p, &c),
            "restore the bridge's attestor.key",
        );
        // The attestor removed from the oracle (count lowered).
        c.attestor_count = 1;
        one(check(&b, &g, &p, &c), "which the oracle does not trust");
        c.attestor_count = 2;
        // A wrong genesis hash at the bridge, or none.
        let mut other = b.clone();
        other.cluster = Some(Pubkey::new_from_array([8; 32]).to_string());
        one(
            check(&other, &g, &p, &c),
            "set the bridge's cluster_genesis_hash",
        );
        other.cluster = None;
        one(check(&other, &g, &p, &c), "has no cluster_genesis_hash");
        one(
            check(&other, &g, &p, &c),
            "a release older than this keeper",
        );
        other.cluster = Some("not base58!".into());
        one(check(&other, &g, &p, &c), "not a base58 hash");
        // Another campus, another program.
        let mut other = b.clone();
        other.campus = Pubkey::new_from_array([4; 32]).to_string();
        one(check(&other, &g, &p, &c), "the oracle serves campus");
        let mut other = b.clone();
        other.oracle_program = Pubkey::new_from_array([6; 32]).to_string();
        one(check(&other, &g, &p, &c), "oracle program");
        // An oracle initialised on another cluster (its domain).
        let mut moved = c;
        moved.domain = [0; 32];
        one(check(&b, &g, &p, &moved), "initialised for another cluster");
        // Limits looser than the oracle's (stricter ones are fine; an older bridge reports
        // none).
        let mut other = b.clone();
        other.limits = other.limits.map(|mut l| {
            l.min_interval_s = 30;
            l.tolerance_bps = 2_000;
            l
        });
        one(
            check(&other, &g, &p, &c),
            "set the bridge's min_interval_s = 60, tolerance_bps = 1000",
        );
        other.limits = other.limits.map(|mut l| {
            l.min_interval_s = 300;
            l.tolerance_bps = 500;
            l.max_age_s = 3_600;
            l
        });
        assert!(check(&other, &g, &p, &c).is_empty());
        other.limits = None;
        assert!(check(&other, &g, &p, &c).is_empty());
        // A quorum one bridge cannot meet.
        let mut two = c;
        two.quorum = 2;
        one(check(&b, &g, &p, &two), "quorum 1");
    }
}
