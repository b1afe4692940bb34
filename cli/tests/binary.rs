//! The `gridtokenx` binary's interface: help, exit codes, and input refused before any
//! cluster is contacted.
use std::process::Command;

fn gridtokenx(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridtokenx"))
        .args(args)
        // Nothing listens there: a command that got as far as the cluster would say so.
        .env("GRIDTOKENX_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn help_names_the_commands_and_exit_codes() {
    let (code, text) = gridtokenx(&["--help"]);
    assert_eq!(code, Some(0));
    for word in [
        "status",
        "order",
        "--url",
        "--keypair",
        "--json",
        "Exit codes",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
    let (code, text) = gridtokenx(&["council", "propose", "--help"]);
    assert_eq!(code, Some(0));
    for action in [
        "pause",
        "unpause",
        "suspend",
        "reactivate",
        "skip-batches",
        "capacity",
        "attestors",
        "limits",
        "market",
        "council",
        "upgrade",
        "close-buffer",
    ] {
        assert!(text.contains(action), "{action}: {text}");
    }
    let (code, text) = gridtokenx(&["council", "write-buffer", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("SHA-256") && text.contains("--buffer-keypair"),
        "{text}"
    );
    let (code, text) = gridtokenx(&["order", "place", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("--energy-wh") && text.contains("--price"),
        "{text}"
    );
}

#[test]
fn bad_input_is_refused_before_the_cluster_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let campus = sdk::CampusConfig::in_repository();
    let pki = dir.path().join("pki");
    let config = sdk::CampusConfig::load(&campus).unwrap();
    certs::ensure_pki(&certs::Layout::new(&pki), &config).unwrap();
    let base = [
        "--campus",
        campus.to_str().unwrap(),
        "--pki",
        pki.to_str().unwrap(),
    ];
    // An unknown building: exit 1, the campus's codes named.
    let mut args = base.to_vec();
    args.extend(["status", "NOPE"]);
    let (code, text) = gridtokenx(&args);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("unknown building \"NOPE\": the campus has ENG"),
        "{text}"
    );
    // An order without a readable keypair: exit 2.
    let mut args = base.to_vec();
    let missing = dir.path().join("nobody.json");
    args.extend(["--keypair", missing.to_str().unwrap()]);
    args.extend([
        "order",
        "place",
        "ENG",
        "--side",
        "buy",
        "--energy-wh",
        "10",
        "--price",
        "1",
    ]);
    let (code, text) = gridtokenx(&args);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("nobody.json"), "{text}");
    // No PKI directory: exit 2, naming --pki.
    let (code, text) = gridtokenx(&[
        "--campus",
        campus.to_str().unwrap(),
        "--pki",
        "/nonexistent",
        "status",
        "ENG",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("set --pki"), "{text}");
    // A council member needs no PKI to list proposals: it gets as far as the cluster.
    let (code, text) = gridtokenx(&["--pki", "/nonexistent", "council", "proposals"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("127.0.0.1:9") && !text.contains("--pki"),
        "{text}"
    );
    // A valid building with no cluster behind --url: exit 1, saying where it tried.
    let mut args = base.to_vec();
    args.extend(["status", "ENG"]);
    let (code, text) = gridtokenx(&args);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("127.0.0.1:9"), "{text}");
}
