//! Generates the development campus PKI and prints each meter's LFDI and SFDI.
//!
//! Exit codes: 0 done, 1 a file could not be read or written, 2 unusable configuration.
use std::path::PathBuf;
use std::process::ExitCode;

use certs::{ensure_pki_with, Layout, Provenance};
use clap::Parser;
use sdk::identity::lfdi_hex;
use sdk::CampusConfig;

#[derive(Parser)]
#[command(
    about = "Creates the campus CA, the bridge's TLS certificate and one IEEE 2030.5 device \
certificate per meter. Existing keys and certificates are kept; only missing ones are made."
)]
struct Args {
    /// Campus configuration file.
    #[arg(long, env = "GRIDTOKENX_CAMPUS_CONFIG", default_value_os_t = CampusConfig::default_path())]
    config: PathBuf,
    /// Directory to write the PKI into.
    #[arg(long, env = "GRIDTOKENX_PKI_DIR", default_value_os_t = Layout::default_dir())]
    out: PathBuf,
    /// A host name or address the bridge's server certificate must name, beside localhost,
    /// 127.0.0.1 and ::1: where meters and a remote keeper reach the bridge. Repeat it, or
    /// separate names with commas. An existing certificate missing one is re-issued for the
    /// same key.
    #[arg(
        long = "bridge-host",
        env = "GRIDTOKENX_BRIDGE_HOSTS",
        value_delimiter = ','
    )]
    bridge_hosts: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let campus = match CampusConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let pki = match ensure_pki_with(&Layout::new(&args.out), &campus, &args.bridge_hosts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let word = |p: Provenance| match p {
        Provenance::Created => "created",
        Provenance::Kept => "kept",
        Provenance::Reissued => "re-issued with more names",
    };
    println!("PKI in {}", args.out.display());
    println!(
        "CA ({}), bridge server certificate ({})",
        word(pki.ca),
        word(pki.bridge)
    );
    println!(
        "{:<9} {:<40} {:>13}  certificate",
        "building", "LFDI", "SFDI"
    );
    for m in &pki.meters {
        println!(
            "{:<9} {} {:>13}  {}",
            m.code,
            lfdi_hex(&m.lfdi),
            m.sfdi,
            word(m.provenance)
        );
    }
    ExitCode::SUCCESS
}
