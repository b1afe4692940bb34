//! market-scale: one interval of the campus market at 10,000 meters on the embedded chain,
//! measured (issue 26; figures in docs/benchmarks.md). Every building places its order in its
//! own transaction, the interval clears once its gate has closed, every order is settled in
//! batches and the book closed; prints the transactions and the wall time of each phase.
//!
//! Exit codes: 0 the run completed and its checks held, 1 it failed, 2 bad arguments.
use std::process::ExitCode;

use clap::Parser;
use gridtokenx_tests::market_scale;

#[derive(Parser)]
#[command(
    about = "One interval of the campus market at scale on the embedded chain: orders placed, cleared, settled and the book closed, with transactions and wall time per phase.",
    long_about = "One interval of the campus market at scale on the embedded chain (the five \
programs natively in a solana-program-test bank). Half the buildings buy, half sell, each \
placing its order in its own transaction signed by its owner; the interval clears once its \
gate has closed; every order is settled in v0 transactions (balances from lookup tables) \
and the book closed. The meters, wallets, token accounts and lookup tables are written \
into the bank, not registered by transaction: what is measured is the market. Prints the \
transactions and wall time of each phase and checks that every order settled and the \
vaults hold exactly what the market owes."
)]
struct Args {
    /// Buildings, each with its own meter and owner (half buy, half sell).
    #[arg(long, default_value_t = 10_000, env = "GRIDTOKENX_SCALE_METERS")]
    meters: usize,
    /// Orders per settlement transaction (at most 24).
    #[arg(long, default_value_t = 24)]
    per_settlement: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.meters < 2 || args.meters > usize::from(u16::MAX) {
        eprintln!("--meters must be 2 to 65,535");
        return ExitCode::from(2);
    }
    if !(1..=24).contains(&args.per_settlement) {
        eprintln!("--per-settlement must be 1 to 24");
        return ExitCode::from(2);
    }
    let started = std::time::Instant::now();
    let report = match market_scale::run(args.meters, args.per_settlement, |line| {
        println!("  {line}")
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("market-scale failed: {e:#}");
            return ExitCode::from(1);
        }
    };
    let s = |d: std::time::Duration| d.as_secs_f64();
    println!(
        "\n{} meters: {} buys, {} sells; cleared {} Wh at {} per kWh",
        report.meters, report.buys, report.sells, report.volume_wh, report.price
    );
    println!(
        "set-up (accounts written, campus, energy token, market): {:.1} s",
        s(report.setup_time)
    );
    println!("phase      transactions  wall time");
    println!(
        "place      {:>12}  {:>8.1} s  ({:.0} orders/s)",
        report.place_transactions,
        s(report.place_time),
        report.place_transactions as f64 / s(report.place_time)
    );
    println!(
        "clear      {:>12}  {:>8.3} s",
        report.clear_transactions,
        s(report.clear_time)
    );
    println!(
        "settle     {:>12}  {:>8.1} s  ({} orders per transaction, largest {} bytes)",
        report.settle_transactions,
        s(report.settle_time),
        args.per_settlement,
        report.largest_settlement_bytes
    );
    println!("close      {:>12}  {:>8.3} s", 1, s(report.close_time));
    println!(
        "market     {:>12}  {:>8.1} s  (open + place + clear + settle + close; the interval is 900 s)",
        report.market_transactions(),
        s(report.market_time())
    );
    println!("whole run: {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
