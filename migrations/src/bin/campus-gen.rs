//! `campus-gen`: writes a campus file of N buildings modelled on a template campus file (by
//! default the university's 25): every setting kept, the buildings taking the template's in
//! turn with unique codes and capacities varied by up to ±15 % (`sdk::generated_campus`).
//! The bridge, the keeper, the migrations and the simulator read the result like any campus
//! file.
//!
//! Exit codes: 0 written, 1 the file could not be written, 2 unusable arguments or template.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sdk::{generated_campus, CampusConfig};

#[derive(Parser)]
#[command(
    version,
    about = "Writes a campus file of N buildings modelled on a template campus file (settings kept, buildings taken from the template's in turn, unique codes, capacities varied by up to 15 %)."
)]
struct Args {
    /// Buildings (meters) in the generated campus, 1 to 65,535.
    #[arg(long, default_value_t = 10_000)]
    meters: usize,
    /// The template campus file (relative to the working directory).
    #[arg(long, default_value = "migrations/campus.toml")]
    template: PathBuf,
    /// Seed of the capacities' variation (the same seed gives the same campus).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the campus file (`-`: standard output).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let template = match CampusConfig::load(&args.template) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("campus-gen: template: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.template) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("campus-gen: read {}: {e}", args.template.display());
            return ExitCode::from(2);
        }
    };
    let generated = match generated_campus(&text, &template, args.meters, args.seed) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("campus-gen: {e}");
            return ExitCode::from(2);
        }
    };
    if args.out.as_os_str() == "-" {
        print!("{generated}");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::write(&args.out, &generated) {
        eprintln!("campus-gen: write {}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    eprintln!(
        "campus-gen: {} buildings from the {} of {} written to {}",
        args.meters,
        template.buildings.len(),
        args.template.display(),
        args.out.display()
    );
    ExitCode::SUCCESS
}
