//! The keeper binary as an operator runs it: an RPC URL carrying a provider's API key is
//! never written to its logs or its status file, and a pass that cannot reach the cluster
//! exits 1 with the reason.
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use solana_keypair::{write_keypair_file, Keypair};

#[test]
fn an_rpc_urls_secrets_stay_out_of_logs_and_the_status_file() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("wallet.json");
    write_keypair_file(&Keypair::new(), &wallet).unwrap();
    let token = dir.path().join("keeper.token");
    std::fs::write(&token, "A".repeat(64)).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let status = dir.path().join("status.json");
    let output = Command::new(env!("CARGO_BIN_EXE_keeper"))
        .arg("--once")
        .env(
            "GRIDTOKENX_KEEPER_RPC_URL",
            "http://127.0.0.1:9/v2/PATHSECRET?api-key=QUERYSECRET",
        )
        .env("GRIDTOKENX_KEEPER_WALLET", &wallet)
        .env("GRIDTOKENX_KEEPER_BRIDGE", "127.0.0.1:9")
        .env("GRIDTOKENX_KEEPER_BRIDGE_TOKEN_FILE", &token)
        .env("GRIDTOKENX_KEEPER_STATUS_FILE", &status)
        .env(
            "GRIDTOKENX_KEEPER_STATE_FILE",
            dir.path().join("state.json"),
        )
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:9"),
        "the host is named: {stderr}"
    );
    let written = std::fs::read_to_string(&status).unwrap_or_default();
    for text in [&*stderr, &written, &String::from_utf8_lossy(&output.stdout)] {
        assert!(!text.contains("PATHSECRET"), "{text}");
        assert!(!text.contains("QUERYSECRET"), "{text}");
    }
}

/// A bridge token others may read is refused (exit 2, unusable configuration), naming the
/// fix.
#[test]
fn a_token_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("wallet.json");
    write_keypair_file(&Keypair::new(), &wallet).unwrap();
    let token = dir.path().join("keeper.token");
    std::fs::write(&token, "A".repeat(64)).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_keeper"))
        .arg("--once")
        .env("GRIDTOKENX_KEEPER_WALLET", &wallet)
        .env("GRIDTOKENX_KEEPER_BRIDGE_TOKEN_FILE", &token)
        .env(
            "GRIDTOKENX_KEEPER_STATUS_FILE",
            dir.path().join("status.json"),
        )
        .env(
            "GRIDTOKENX_KEEPER_STATE_FILE",
            dir.path().join("state.json"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("may be read by others (mode 644)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod 600"), "{stderr}");
}
