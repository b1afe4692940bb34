//! The `campus-demo` binary: `--expect-trading` fails a day that minted or traded nothing
//! (a night modelled), and passes one that covered the loop (a clear workday's midday).
use std::process::Command;

use sdk::CampusConfig;

fn demo(dir: &std::path::Path, model_end: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_campus-demo"))
        .arg("--config")
        .arg(CampusConfig::in_repository())
        .arg("--pki")
        .arg(dir.join("pki"))
        .arg("--out")
        .arg(dir.join("out"))
        .args([
            "--hours",
            "1",
            "--model-end",
            model_end,
            "--workday",
            "--expect-trading",
        ])
        .output()
        .expect("run campus-demo")
}

#[test]
fn expect_trading_fails_a_day_without_trades_and_passes_one_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let night = demo(dir.path(), "03:00");
    let stderr = String::from_utf8_lossy(&night.stderr);
    assert_eq!(night.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--expect-trading: the day minted 0 Wh of GRID and traded 0 Wh"),
        "{stderr}"
    );
    let midday = demo(dir.path(), "13:00");
    assert_eq!(
        midday.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&midday.stdout),
        String::from_utf8_lossy(&midday.stderr)
    );
}
