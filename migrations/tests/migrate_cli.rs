//! The `migrate` binary as an operator runs it: its help, its refusals of an unusable
//! configuration (exit 2, nothing sent), and a dry run that shows the plan without a
//! cluster.
use std::path::Path;
use std::process::{Command, Output};

fn migrate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
    cmd.current_dir(&root).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GRIDTOKENX_MIGRATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("GRIDTOKENX_MIGRATE_KEYS_DIR", dir.join("keys"))
        .env("GRIDTOKENX_MIGRATE_PKI_DIR", dir.join("pki"))
        // Nothing listens there: a run that reached the chain would fail, not hang.
        .env("GRIDTOKENX_MIGRATE_RPC_URL", "http://127.0.0.1:9");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run migrate")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The repository's campus file with one attestor (it trusts none), written into `dir`;
/// returns its path.
fn campus_with_an_attestor(dir: &Path) -> String {
    let campus = std::fs::read_to_string(sdk::CampusConfig::in_repository())
        .unwrap()
        .replace(
            "keys = []",
            "keys = [\"EsBoZvjvba2DKd6uoiKssseWpPYKkabLNfaeLBBPSP6i\"]",
        );
    let path = dir.join("campus.toml");
    std::fs::write(&path, campus).unwrap();
    path.display().to_string()
}

/// A wallet file as the Solana CLI writes it.
fn wallet(dir: &Path) -> String {
    let key = solana_keypair::Keypair::new();
    let path = dir.join("wallet.json");
    std::fs::write(
        &path,
        serde_json::to_string(&key.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn help_names_the_steps_and_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = migrate(dir.path(), &["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out);
    for word in [
        "hand-over",
        "GRIDTOKENX_MIGRATE_",
        "Exit codes",
        "--dry-run",
        "--url",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
}

#[test]
fn an_unusable_configuration_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = wallet(dir.path());
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("GRIDTOKENX_MIGRATE_WALLET", "/nonexistent/id.json")],
            "deploy wallet",
        ),
        (
            &[("GRIDTOKENX_MIGRATE_WALLET", wallet.as_str())],
            "no owner key for 25 building(s)",
        ),
        (
            &[
                ("GRIDTOKENX_MIGRATE_WALLET", wallet.as_str()),
                (
                    "GRIDTOKENX_MIGRATE_CAMPUS_CONFIG",
                    "/nonexistent/campus.toml",
                ),
            ],
            "cannot read /nonexistent/campus.toml",
        ),
    ];
    for (env, expected) in cases {
        let out = migrate(dir.path(), &[], env);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(expected), "{expected}: {}", text(&out));
    }
}

#[test]
fn a_dry_run_shows_the_plan_from_the_certificates_and_keys_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = wallet(dir.path());
    let pki = certs::ensure_pki(
        &certs::Layout::new(dir.path().join("pki")),
        &sdk::CampusConfig::load(&sdk::CampusConfig::in_repository()).unwrap(),
    )
    .unwrap();
    let env = [
        ("GRIDTOKENX_MIGRATE_WALLET", wallet.as_str()),
        ("GRIDTOKENX_MIGRATE_DEV_KEYS", "true"),
    ];
    // The repository's campus trusts no attestor yet: unusable, and the error says what to
    // add.
    let out = migrate(dir.path(), &["--dry-run"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("trusts no attestor"), "{}", text(&out));
    // With one, the plan lists every meter by its certificate's LFDI.
    let campus_path = campus_with_an_attestor(dir.path());
    let env = [
        env[0],
        env[1],
        ("GRIDTOKENX_MIGRATE_CAMPUS_CONFIG", campus_path.as_str()),
    ];
    let out = migrate(dir.path(), &["--dry-run"], &env);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("plan: 25 meters, council of 3 (threshold 2"),
        "{shown}"
    );
    assert!(shown.contains("quote token"), "{shown}");
    for m in &pki.meters {
        let line = format!("meter {} LFDI {}", m.code, sdk::identity::lfdi_hex(&m.lfdi));
        assert!(shown.contains(&line), "{line} missing:\n{shown}");
    }
    assert!(shown.contains("(from settings)"), "{shown}");
    assert!(shown.contains("http://127.0.0.1:9"), "{shown}");
    assert!(shown.contains("would make key"), "{shown}");
    assert!(
        shown.contains("dry run: the cluster was not contacted and nothing was written"),
        "{shown}"
    );
    assert!(!dir.path().join("keys").exists(), "a dry run wrote keys");
    // The environment's dry run is a dry run too.
    let mut env_dry = env.to_vec();
    env_dry.push(("GRIDTOKENX_MIGRATE_DRY_RUN", "true"));
    let out = migrate(dir.path(), &[], &env_dry);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("dry run:"), "{}", text(&out));
}

/// `--deploy DIR` reads the five builds (and any program keypair) before contacting the
/// cluster: the dry run lists them with their sizes and hashes; a missing build, a file
/// that is not an ELF, or a keypair that is not the program's declared id exits 2.
#[test]
fn deploy_reads_the_builds_first_and_refuses_what_cannot_be_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = wallet(dir.path());
    certs::ensure_pki(
        &certs::Layout::new(dir.path().join("pki")),
        &sdk::CampusConfig::load(&sdk::CampusConfig::in_repository()).unwrap(),
    )
    .unwrap();
    let campus_path = campus_with_an_attestor(dir.path());
    let env = [
        ("GRIDTOKENX_MIGRATE_WALLET", wallet.as_str()),
        ("GRIDTOKENX_MIGRATE_DEV_KEYS", "true"),
        ("GRIDTOKENX_MIGRATE_CAMPUS_CONFIG", campus_path.as_str()),
    ];
    let builds = dir.path().join("deploy");
    std::fs::create_dir_all(&builds).unwrap();
    let dir_arg = builds.display().to_string();
    let out = migrate(dir.path(), &["--dry-run", "--deploy", &dir_arg], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("governance.so"), "{}", text(&out));
    let ids = [
        governance::ID,
        registry::ID,
        oracle::ID,
        energy_token::ID,
        trading::ID,
    ];
    let libs = [
        "governance",
        "registry",
        "oracle",
        "energy_token",
        "trading",
    ];
    // Stand-in builds: an ELF header, the program's id (as a build carries its
    // declare_id!), filler.
    let build = |i: usize, id: &anchor_lang::prelude::Pubkey| {
        let mut elf = b"\x7fELF".to_vec();
        elf.extend_from_slice(id.as_ref());
        elf.extend(std::iter::repeat_n(i as u8, 100 * (i + 1) - 32));
        elf
    };
    for (i, (lib, id)) in libs.iter().zip(&ids).enumerate() {
        std::fs::write(builds.join(format!("{lib}.so")), build(i, id)).unwrap();
    }
    let out = migrate(dir.path(), &["--dry-run", "--deploy", &dir_arg], &env);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!(
            "program oracle {}: 304 bytes, sha256 ",
            oracle::ID
        )),
        "{shown}"
    );
    assert_eq!(shown.matches("  program ").count(), 5, "{shown}");
    // A keypair beside a build must be the program's id.
    std::fs::write(
        builds.join("oracle-keypair.json"),
        serde_json::to_string(&solana_keypair::Keypair::new().to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    let out = migrate(dir.path(), &["--dry-run", "--deploy", &dir_arg], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("but oracle is built with the id"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(builds.join("oracle-keypair.json")).unwrap();
    // A build made with another declare_id! (the registry's id in the oracle's file).
    std::fs::write(builds.join("oracle.so"), build(2, &registry::ID)).unwrap();
    let out = migrate(dir.path(), &["--dry-run", "--deploy", &dir_arg], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("does not contain oracle's id"),
        "{}",
        text(&out)
    );
    std::fs::write(builds.join("oracle.so"), build(2, &oracle::ID)).unwrap();
    std::fs::write(builds.join("trading.so"), b"not an elf").unwrap();
    let out = migrate(dir.path(), &["--dry-run", "--deploy", &dir_arg], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not an ELF file"), "{}", text(&out));
}
