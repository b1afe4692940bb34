//! The keeper binary as an operator runs it: an RPC URL carrying a provider's API key is
//! never written to its logs or its status file, and a pass that cannot reach the cluster
//! exits 1 with the reason; a bridge token others may read is refused.
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use solana_keypair::{write_keypair_file, Keypair};

/// `keeper --once` in `dir` with a fresh wallet, a bridge token of mode `token_mode`, its
/// status and state files there, and `env` besides.
fn keeper_once(dir: &std::path::Path, token_mode: u32, env: &[(&str, &str)]) -> Output {
    let wallet = dir.join("wallet.json");
    write_keypair_file(&Keypair::new(), &wallet).unwrap();
    let token = dir.join("keeper.token");
    std::fs::write(&token, "A".repeat(64)).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(token_mode)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_keeper"))
        .arg("--once")
        .env("GRIDTOKENX_KEEPER_WALLET", &wallet)
        .env("GRIDTOKENX_KEEPER_BRIDGE_TOKEN_FILE", &token)
        .env("GRIDTOKENX_KEEPER_STATUS_FILE", dir.join("status.json"))
        .env("GRIDTOKENX_KEEPER_STATE_FILE", dir.join("state.json"))
        .env("GRIDTOKENX_KEEPER_METRICS_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn an_rpc_urls_secrets_stay_out_of_logs_and_the_status_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = keeper_once(
        dir.path(),
        0o600,
        &[
            (
                "GRIDTOKENX_KEEPER_RPC_URL",
                "http://127.0.0.1:9/v2/PATHSECRET?api-key=QUERYSECRET",
            ),
            ("GRIDTOKENX_KEEPER_BRIDGE", "127.0.0.1:9"),
            ("RUST_LOG", "debug"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:9"),
        "the host is named: {stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join("status.json")).unwrap_or_default();
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
    let output = keeper_once(dir.path(), 0o644, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("may be read by others (mode 644)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod 600"), "{stderr}");
}
