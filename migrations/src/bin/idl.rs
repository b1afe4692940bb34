//! Builds the five programs' IDLs exactly as `anchor idl build` does (the same
//! `anchor_lang_idl::build::IdlBuilder` call with Anchor.toml's `resolution = true` and
//! `skip-lint = false`, pretty JSON), and writes them to `idl/` or checks that the committed
//! ones are current.
//!
//!   cargo run -p gridtokenx-migrations --bin idl            # write idl/<program>.json
//!   cargo run -p gridtokenx-migrations --bin idl -- --check # CI: fail if any is stale
//!
//! Exit codes: 0 written / current, 1 an IDL is stale or missing, 2 an IDL does not build.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use migrations::idl::{compare, Comparison, PROGRAMS};

#[derive(Parser)]
#[command(about = "Builds the programs' IDLs as `anchor idl build` does; writes or checks idl/")]
struct Args {
    /// Compare with the committed IDLs instead of writing them.
    #[arg(long)]
    check: bool,
    /// Where the IDLs live (relative to the repository root).
    #[arg(long, default_value = "idl")]
    out: PathBuf,
}

fn repository_root() -> PathBuf {
    // Run from anywhere inside the repository: find the directory holding Anchor.toml.
    let mut dir = std::env::current_dir().expect("current directory");
    loop {
        if dir.join("Anchor.toml").exists() {
            return dir;
        }
        if !dir.pop() {
            eprintln!("error: run inside the GridTokenX repository (no Anchor.toml found)");
            std::process::exit(2);
        }
    }
}

/// Sets the environment the nested cargo builds run in (once, before any build).
fn prepare_environment(root: &Path) {
    // The nested `cargo test` must not wait on the target directory of the cargo that runs
    // this binary: give it its own.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("idl-build");
    std::env::set_var("CARGO_TARGET_DIR", &target);
    // `cargo run` sets RUSTUP_TOOLCHAIN for its children; anchor-lang-idl 0.1.4 would then
    // run `cargo +{toolchain}` (a literal, unformatted) and try to install it. The Anchor
    // CLI, started from a shell, never has it set: neither should we.
    std::env::remove_var("RUSTUP_TOOLCHAIN");
}

fn build(root: &Path, dir: &str) -> anyhow::Result<String> {
    let idl = anchor_lang_idl::build::IdlBuilder::new()
        .program_path(root.join("programs").join(dir))
        .resolution(true)
        .skip_lint(false)
        .no_docs(false)
        .build()?;
    Ok(serde_json::to_string_pretty(&idl)?)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let root = repository_root();
    let out = root.join(&args.out);
    prepare_environment(&root);
    let mut stale = false;
    for (name, dir) in PROGRAMS {
        eprintln!("== {name}: building the IDL");
        let built = match build(&root, dir) {
            Ok(json) => json,
            Err(e) => {
                eprintln!("error: the IDL of {name} does not build: {e}");
                return ExitCode::from(2);
            }
        };
        let path = out.join(format!("{name}.json"));
        if args.check {
            let committed = std::fs::read_to_string(&path).ok();
            match compare(committed.as_deref(), &built) {
                Comparison::Current => eprintln!("   {} is current", path.display()),
                Comparison::Missing => {
                    eprintln!("error: {} is missing", path.display());
                    stale = true;
                }
                Comparison::Stale { line } => {
                    eprintln!(
                        "error: {} is stale (first difference at line {line}); run `cargo run -p gridtokenx-migrations --bin idl` and commit it",
                        path.display()
                    );
                    stale = true;
                }
            }
        } else {
            std::fs::create_dir_all(&out).expect("create the IDL directory");
            std::fs::write(&path, &built).expect("write the IDL");
            eprintln!("   wrote {}", path.display());
        }
    }
    if stale {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
