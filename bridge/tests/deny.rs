//! The meter directory kept in the store (the keeper's last registry push survives a restart)
//! and the operator's local deny list (`bridge deny/allow/denied`): a denied meter is refused
//! at once, whatever the registry says, across restarts, until allowed.
mod common;

use common::*;
use keeper_protocol::{MeterList, MeterRecord, Route};

/// The running bridge's configuration as an operator's command sees it.
fn operator_config(b: &TestBridge) -> bridge::config::BridgeConfig {
    let mut config = b.config.clone();
    config.keeper_listen = b.running.keeper_addr;
    config
}

/// The registry's meters as the keeper pushes them: every meter of the bridge's directory,
/// active but for `suspended`.
async fn push_registry(b: &TestBridge, suspended: &[&str]) {
    let meters: Vec<MeterRecord> = b
        .running
        .service
        .directory
        .all()
        .iter()
        .map(|m| MeterRecord {
            lfdi: m.lfdi_hex.clone(),
            index: m.index,
            active: !suspended.contains(&m.code.as_str()),
            since: 0,
            generation_w: m.capacity.generation_w,
            storage_wh: m.capacity.storage_wh,
            max_import_w: m.capacity.max_import_w,
            max_discharge_w: m.capacity.max_discharge_w,
        })
        .collect();
    let body = serde_json::to_string(&MeterList { meters }).unwrap();
    let answer = bridge::admin::request(&operator_config(b), Route::Meters, Some(body))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
}

async fn dcap(b: &TestBridge, code: &str) -> Option<u16> {
    b.meter(code).get("/dcap").await.ok().map(|r| r.status)
}

#[tokio::test]
async fn the_deny_list_and_the_registry_push_survive_restarts_and_each_other() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    assert_eq!(eng.get("/dcap").await.unwrap().status, 200);

    // Denied: its open connection gets 403, a new one is refused at the handshake.
    let config = operator_config(&b);
    let denied = bridge::admin::deny(&config, "ENG", "posting garbage since 09:00")
        .await
        .unwrap();
    assert_eq!(denied.code, "ENG");
    assert_eq!(denied.lfdi, b.lfdi_hex("ENG"));
    assert_eq!(denied.reason, "posting garbage since 09:00");
    assert_eq!(eng.get("/dcap").await.unwrap().status, 403);
    assert_eq!(dcap(&b, "ENG").await, None);
    // By LFDI too, and again: the same entry.
    let again = bridge::admin::deny(&config, &b.lfdi_hex("ENG").to_lowercase(), "")
        .await
        .unwrap();
    assert_eq!(again, denied);
    let err = bridge::admin::deny(&config, "NOPE", "").await.unwrap_err();
    assert!(format!("{err:#}").contains("no meter \"NOPE\""), "{err:#}");

    // The registry says ENG is active and PHYS suspended: ENG stays denied.
    push_registry(&b, &["PHYS"]).await;
    assert_eq!(dcap(&b, "ENG").await, None);
    assert_eq!(dcap(&b, "PHYS").await, None);
    assert_eq!(dcap(&b, "CHEM").await, Some(200));

    // A restart, before any push: the deny list and the registry as last pushed hold (not
    // the campus file, where every meter is active).
    let b = b.restart().await;
    let config = operator_config(&b);
    assert_eq!(dcap(&b, "ENG").await, None);
    assert_eq!(dcap(&b, "PHYS").await, None);
    assert_eq!(dcap(&b, "CHEM").await, Some(200));
    let list = bridge::admin::denied(&config).await.unwrap();
    assert_eq!(list, vec![denied.clone()]);

    // Allowed: the registry's status applies again.
    bridge::admin::allow(&config, "ENG").await.unwrap();
    assert_eq!(dcap(&b, "ENG").await, Some(200));
    let err = bridge::admin::allow(&config, "ENG").await.unwrap_err();
    assert!(format!("{err:#}").contains("is not denied"), "{err:#}");
    assert!(bridge::admin::denied(&config).await.unwrap().is_empty());
    let b = b.restart().await;
    assert_eq!(dcap(&b, "ENG").await, Some(200));
    assert_eq!(dcap(&b, "PHYS").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_binarys_subcommands_manage_the_deny_list() {
    let b = TestBridge::start().await;
    let operator = Operator::of(&b);
    let run = |args: &[&str]| operator.run(args);
    let text = output_text;
    // The binary blocks its thread: the bridge runs on this test's runtime meanwhile.
    let out = tokio::task::block_in_place(|| run(&["deny", "ENG", "--reason", "tampered"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ENG (LFDI"), "{}", text(&out));
    let out = tokio::task::block_in_place(|| run(&["denied"]));
    assert!(text(&out).contains("ENG") && text(&out).contains("tampered"));
    assert!(b
        .running
        .service
        .directory
        .is_denied(&sdk::identity::parse_lfdi_hex(&b.lfdi_hex("ENG")).unwrap()));
    let out = tokio::task::block_in_place(|| run(&["allow", "ENG"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = tokio::task::block_in_place(|| run(&["allow", "ENG"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("ENG is not denied"), "{}", text(&out));
    let out = tokio::task::block_in_place(|| run(&["denied"]));
    assert!(text(&out).contains("no meter is denied"));
    // No bridge there: exit 1, saying so.
    let TestBridge { running, dir, .. } = b;
    running.shutdown().await;
    let _kept = dir;
    let out = tokio::task::block_in_place(|| run(&["denied"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("is the bridge running?"),
        "{}",
        text(&out)
    );
}
