//! Every GridTokenX program flow on real SBF, with its compute units and the ceilings the
//! programs must stay under. Runs the SBPF v3 `.so` files in LiteSVM (Agave 4.2's runtime,
//! where compute units, the 4 KiB stack frame, the 32 KiB heap and the 1.4M CU transaction
//! limit are real), using the same instruction builders as the keeper and the test suite.
//!
//! Exit codes: 0 every flow succeeded within its ceiling, 1 a flow failed or a ceiling was
//! exceeded, 2 the programs could not be loaded.
mod bench;
mod flows;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Runs every GridTokenX program flow on SBF and prints its compute units")]
struct Args {
    /// Directory holding registry.so, oracle.so, energy_token.so, trading.so, governance.so.
    #[arg(long, default_value = "target/deploy")]
    programs: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut bench = match bench::Bench::load(&args.programs) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = flows::run_all(&mut bench);
    bench.print_table();
    match outcome {
        Ok(()) if bench.ceilings_hold() => ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!("error: a compute-unit ceiling was exceeded (marked !! above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
