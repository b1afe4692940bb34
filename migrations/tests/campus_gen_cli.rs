//! The `campus-gen` binary: writes a campus file every reader accepts, and refuses bad
//! arguments with exit code 2.
use std::process::Command;

fn campus_gen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_campus-gen"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn writes_a_campus_of_n_buildings_and_refuses_bad_arguments() {
    let help = campus_gen(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--meters"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campus-1000.toml");
    let run = campus_gen(&[
        "--meters",
        "1000",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let campus = sdk::CampusConfig::load(&out).unwrap();
    assert_eq!(campus.buildings.len(), 1_000);
    assert_eq!(campus.buildings[999].code, "DINING-0040");
    for bad in [
        vec!["--meters", "0", "--out", "-"],
        vec!["--meters", "70000", "--out", "-"],
        vec!["--template", "no/such/campus.toml", "--out", "-"],
    ] {
        assert_eq!(campus_gen(&bad).status.code(), Some(2), "{bad:?}");
    }
}
