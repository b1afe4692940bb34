//! The crate graph's rules (docs/ARCHITECTURE.md), checked against what Cargo resolves:
//! no arrow from the bridge to the keeper or back, the programs depend only downward, and
//! the service binaries (bridge, keeper, migrate) link no test chain.
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Package name -> the package names it depends on for normal builds (not dev or build).
struct Graph {
    normal: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Loaded once for all the tests (Cargo locks its cache while it resolves).
    fn get() -> &'static Graph {
        static GRAPH: std::sync::OnceLock<Graph> = std::sync::OnceLock::new();
        GRAPH.get_or_init(Graph::load)
    }

    fn load() -> Graph {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let version = Command::new(rustc).arg("-vV").output().expect("rustc -vV");
        let host = String::from_utf8_lossy(&version.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            .expect("rustc names its host");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--locked"])
            .args(["--filter-platform", &host])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
        let names: BTreeMap<&str, &str> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
            .collect();
        let mut normal = BTreeMap::new();
        for node in meta["resolve"]["nodes"].as_array().unwrap() {
            let name = names[node["id"].as_str().unwrap()].to_string();
            let deps: BTreeSet<String> = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| names[d["pkg"].as_str().unwrap()].to_string())
                .collect();
            normal
                .entry(name)
                .or_insert_with(BTreeSet::new)
                .extend(deps);
        }
        Graph { normal }
    }

    /// Every package `name` needs for a normal build, itself excluded.
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(next) = todo.pop() {
            for dep in self.normal.get(&next).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    }
}

#[test]
fn the_bridge_and_the_keeper_never_depend_on_each_other() {
    let graph = Graph::get();
    assert!(!graph.closure("bridge").contains("keeper"));
    assert!(!graph.closure("keeper").contains("bridge"));
    // They share the interface's messages instead.
    assert!(graph.normal["bridge"].contains("gridtokenx-keeper-protocol"));
    assert!(graph.normal["keeper"].contains("gridtokenx-keeper-protocol"));
}

/// The packages `crate_` builds with for a normal build, with its own features (what its
/// binary links; `cargo metadata` unifies features across the workspace, `cargo tree -p`
/// does not).
fn linked(crate_: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree", "--locked", "-e", "normal", "--prefix", "none", "-f", "{p}", "-p",
        ])
        .arg(crate_)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn the_service_binaries_link_no_test_chain() {
    for crate_ in ["bridge", "keeper", "gridtokenx-migrations"] {
        let linked = linked(crate_);
        assert!(linked.contains("anchor-lang"), "{crate_}: {linked:?}");
        for test_only in [
            "solana-program-test",
            "solana-banks-server",
            "gridtokenx-tests",
        ] {
            assert!(!linked.contains(test_only), "{crate_} links {test_only}");
        }
    }
    // The bridge needs no chain client either: it signs, the keeper sends.
    assert!(!linked("bridge").contains("solana-rpc-client"));
}

#[test]
fn programs_depend_only_downward() {
    let graph = Graph::get();
    // Lowest first: each may depend only on those before it.
    let order = [
        "gridtokenx-program-common",
        "registry",
        "oracle",
        "energy-token",
        "trading",
        "governance",
    ];
    for (i, program) in order.iter().enumerate() {
        let ours: BTreeSet<&str> = graph.normal[*program]
            .iter()
            .map(String::as_str)
            .filter(|d| order.contains(d))
            .collect();
        let below: BTreeSet<&str> = order[..i].iter().copied().collect();
        assert!(
            ours.is_subset(&below),
            "{program} depends on {:?}, not below it",
            ours.difference(&below).collect::<Vec<_>>()
        );
        // And on no off-chain crate.
        for off_chain in [
            "gridtokenx-sdk",
            "bridge",
            "keeper",
            "gridtokenx-migrations",
        ] {
            assert!(
                !graph.closure(program).contains(off_chain),
                "{program} -> {off_chain}"
            );
        }
    }
}
