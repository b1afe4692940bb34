//! Creates a development keypair file (Solana CLI JSON format, mode 0600) unless it exists,
//! and prints its public key. For local validators and scripts; a real deployment uses the
//! operator's own wallet.
//!
//! Exit codes: 0 created or already there, 1 unreadable or unwritable.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use solana_signer::Signer;

#[derive(Parser)]
#[command(
    about = "Creates a development keypair file (Solana CLI JSON, mode 0600) unless it exists, and prints its public key."
)]
struct Args {
    /// The keypair file.
    path: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.path.exists() {
        return match solana_keypair::read_keypair_file(&args.path) {
            Ok(k) => {
                println!("{}", k.pubkey());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", args.path.display());
                ExitCode::from(1)
            }
        };
    }
    let keypair = solana_keypair::Keypair::new();
    let written = gridtokenx_tests::fault::write_keypair_file(&args.path, &keypair);
    match written {
        Ok(()) => {
            println!("{}", keypair.pubkey());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.path.display());
            ExitCode::from(1)
        }
    }
}
