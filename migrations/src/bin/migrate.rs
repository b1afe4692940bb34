//! `migrate`: brings a cluster to the campus file, idempotently, ending with the hand-over
//! of every program's authority to governance, their upgrade authority included. With
//! `--deploy DIR` it deploys the programs first (`scripts/deploy` runs it so). Run it with
//! the deploy wallet, and again until it reports nothing waiting (council votes and the
//! timelock take their time).
//!
//! Exit codes: 0 everything in place, 1 a step failed, 2 unusable configuration (settings,
//! campus file, keys, certificates), 3 applied what it could and waits for council votes or
//! the timelock (run it again later).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use migrations::config::{plan, Keys, MigrateConfig, Missing, QuoteMint};
use migrations::{apply, MigrationReport, Plan};
use sdk::chain::Chain;
use sdk::rpc::RpcChain;
use sdk::CampusConfig;
use solana_signer::Signer;

#[derive(Parser)]
#[command(
    version,
    about = "Brings a Solana cluster to the campus file: council, registry, meters, oracle, GRID/REC mints, accounts, market, then every program's authority handed to governance.",
    long_about = "Brings a Solana cluster to the campus file, idempotently: every step first reads whether it is done, so a \
second run changes nothing and a run that stopped half-way completes on the next. Steps: the council, the registry \
campus, each building's meter (named by its device certificate, co-signed by its owner), the oracle (the campus \
file's attestors and limits, the cluster's genesis hash), the GRID and REC mints, each meter's oracle state and \
ledger and its owner's token accounts, the market; then the hand-over of the registry's, \
oracle's, energy token's and market's authority to governance (proposed by the wallet, accepted through a council \
proposal: members' approvals, the timelock, then execution), and each program's upgrade authority handed to the \
council (the upgradeable loader's set-authority to governance's loader authority: from then on only a council \
proposal upgrades a program). With --deploy DIR (or programs_dir), the five programs are deployed first from DIR \
(<lib>.so, and <lib>-keypair.json for a program whose account does not exist yet, as `anchor build` leaves \
target/deploy): a program deployed with the same ELF is left alone, one with another ELF is reported and left \
alone (upgrades go through the council). Run it with the programs' deploy wallet (their upgrade authority, which \
the initialisers require).\n\n\
Settings come from --config (TOML), then GRIDTOKENX_MIGRATE_<KEY> environment variables \
(e.g. GRIDTOKENX_MIGRATE_RPC_URL=https://api.devnet.solana.com), then defaults; see migrations/migrate.example.toml. \
Keys (owners, council members) live in keys_dir, never in the repository.\n\n\
Exit codes: 0 everything in place, 1 a step failed, 2 unusable configuration, 3 waiting for council votes or the \
timelock (run again later)."
)]
struct Args {
    /// Settings file (TOML).
    #[arg(long, env = "GRIDTOKENX_MIGRATE_CONFIG")]
    config: Option<PathBuf>,
    /// The cluster's JSON-RPC endpoint (overrides the settings and the campus file).
    #[arg(long)]
    url: Option<String>,
    /// Deploy the five programs first, from this directory (overrides programs_dir).
    #[arg(long, value_name = "DIR")]
    deploy: Option<PathBuf>,
    /// Print the plan (cluster, payer, meters, council, attestors) without contacting the
    /// cluster or writing keys.
    #[arg(long, env = "GRIDTOKENX_MIGRATE_DRY_RUN")]
    dry_run: bool,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text", env = "GRIDTOKENX_MIGRATE_LOG_FORMAT")]
    log_format: String,
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,solana_rpc_client=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The campus file, the wallet, the keys, the certificates and the plan they make:
/// everything that can be wrong before the cluster is contacted.
struct Setup {
    config: MigrateConfig,
    campus: &'static CampusConfig,
    url: String,
    /// Where the URL came from, for the operator.
    url_from: &'static str,
    wallet: solana_keypair::Keypair,
    dev_mint: Option<solana_keypair::Keypair>,
    made: Vec<PathBuf>,
    plan: Plan<'static>,
    programs: Vec<migrations::deploy::ProgramFile>,
}

fn setup(args: &Args) -> Result<Setup> {
    let mut config = MigrateConfig::load(args.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &args.deploy {
        config.programs_dir = Some(dir.clone());
    }
    let programs = match &config.programs_dir {
        Some(dir) => migrations::deploy::load_programs(dir)?,
        None => Vec::new(),
    };
    // Lives as long as the process: the plan borrows it.
    let campus: &'static CampusConfig =
        Box::leak(Box::new(CampusConfig::load(&config.campus_config)?));
    let (url, url_from) = match (&args.url, &config.rpc_url) {
        (Some(url), _) => (url.clone(), "--url"),
        (None, Some(url)) => (url.clone(), "settings"),
        (None, None) => (campus.cluster.rpc_url.clone(), "the campus file"),
    };
    let wallet = sdk::settings::read_keypair(&config.wallet).context("deploy wallet")?;
    let missing = if args.dry_run {
        Missing::Preview
    } else {
        Missing::Make
    };
    let keys = Keys::load(&config, campus, missing)?;
    let made = keys.made.clone();
    let dev_mint = match &keys.quote_mint {
        QuoteMint::Dev(k) => Some(k.insecure_clone()),
        QuoteMint::Named(_) => None,
    };
    // The market's start is set once the cluster's clock is known.
    let plan = plan(
        campus,
        &config.pki_dir,
        keys,
        config.market_start.unwrap_or(0),
    )?;
    Ok(Setup {
        config,
        campus,
        url,
        url_from,
        wallet,
        dev_mint,
        made,
        plan,
        programs,
    })
}

fn print_programs(reports: &[migrations::deploy::ProgramReport]) {
    use migrations::deploy::Outcome;
    for r in reports {
        let hash = sdk::loader::hex(&r.sha256);
        match &r.outcome {
            Outcome::Deployed {
                elf_len,
                capacity,
                transactions,
                rent_lamports,
            } => println!(
                "  deployed: {} at {} ({elf_len} bytes, room for {capacity}; sha256 {hash}; {transactions} transactions; rent {:.6} SOL)",
                r.lib,
                r.id,
                *rent_lamports as f64 / 1e9
            ),
            Outcome::InPlace => println!("  in place: {} at {} (sha256 {hash})", r.lib, r.id),
            Outcome::Differs { deployed_slot } => println!(
                "  differs: {} at {} holds another build (deployed in slot {deployed_slot}); left alone: upgrades go through the council (gridtokenx council write-buffer, then council propose upgrade)",
                r.lib, r.id
            ),
        }
    }
}

fn print_report(report: &MigrationReport) {
    for step in &report.applied {
        println!("  applied: {step}");
    }
    println!("  already in place: {} steps", report.already_done);
    for wait in &report.waiting {
        println!("  waiting: {wait}");
    }
}

async fn run(setup: Setup, dry_run: bool) -> Result<ExitCode> {
    let Setup {
        config,
        campus,
        url,
        url_from,
        wallet,
        dev_mint,
        made,
        mut plan,
        programs,
    } = setup;
    let payer = wallet.pubkey();
    println!(
        "campus {:?}: {} buildings; cluster at {} (from {url_from}); wallet {payer}",
        campus.name,
        campus.buildings.len(),
        sdk::settings::redact_url(&url),
    );
    println!(
        "plan: {} meters, council of {} (threshold {}, timelock {} s; {} signing here), {} attestor(s) at quorum {}, quote token {}{}",
        plan.meters.len(),
        plan.council.members.len(),
        plan.council.threshold,
        plan.council.timelock_seconds,
        plan.council_signers.len(),
        plan.attestors.len(),
        campus.attestors.quorum,
        plan.quote_mint,
        if dev_mint.is_some() { " (development)" } else { "" },
    );
    for p in &programs {
        println!(
            "  program {} {}: {} bytes, sha256 {}{}",
            p.lib,
            p.id,
            p.elf.len(),
            sdk::loader::hex(&sdk::loader::elf_hash(&p.elf)),
            if p.keypair.is_some() {
                " (keypair present)"
            } else {
                ""
            }
        );
    }
    if dry_run {
        for m in &plan.meters {
            println!(
                "  meter {} LFDI {} owner {}",
                m.code,
                sdk::identity::lfdi_hex(&m.lfdi),
                m.owner.pubkey()
            );
        }
        for path in &made {
            println!("  would make key {}", path.display());
        }
        println!("dry run: the cluster was not contacted and nothing was written");
        return Ok(ExitCode::SUCCESS);
    }
    for path in &made {
        println!("  made key {}", path.display());
    }
    let mut chain = RpcChain::new(&url, wallet);
    if config.market_start.is_none() {
        let interval = i64::from(campus.market.interval_s.max(1));
        let now = chain.clock().await?.unix_timestamp;
        plan.market_start = now - now.rem_euclid(interval);
    }
    let start_balance = chain.account(payer).await?.map_or(0, |a| a.lamports);
    println!("wallet balance {:.6} SOL", start_balance as f64 / 1e9);
    if !programs.is_empty() {
        let reports = migrations::deploy::deploy_programs(
            &mut chain,
            &programs,
            &config.keys_dir,
            config.program_headroom_percent,
        )
        .await?;
        print_programs(&reports);
        let after = chain.account(payer).await?.map_or(0, |a| a.lamports);
        let rent: u64 = reports
            .iter()
            .map(|r| match r.outcome {
                migrations::deploy::Outcome::Deployed { rent_lamports, .. } => rent_lamports,
                _ => 0,
            })
            .sum();
        let spent = start_balance.saturating_sub(after);
        println!(
            "programs: wallet spent {:.6} SOL: {:.6} rent held by the programs, {:.6} fees",
            spent as f64 / 1e9,
            rent as f64 / 1e9,
            spent.saturating_sub(rent) as f64 / 1e9
        );
    }
    if let Some(mint) = &dev_mint {
        migrations::dev::ensure_quote_mint(&mut chain, mint).await?;
    }
    let mut topped_up = 0u64;
    if config.fund_council_lamports > 0 {
        for member in &plan.council_signers {
            let sent = migrations::dev::fund_up_to(
                &mut chain,
                &member.pubkey(),
                config.fund_council_lamports,
            )
            .await?;
            if sent > 0 {
                topped_up += sent;
                println!(
                    "  council member {} topped up by {sent} lamports",
                    member.pubkey()
                );
            }
        }
    }
    if config.fund_owners_lamports > 0 {
        for m in &plan.meters {
            let sent = migrations::dev::fund_up_to(
                &mut chain,
                &m.owner.pubkey(),
                config.fund_owners_lamports,
            )
            .await?;
            if sent > 0 {
                topped_up += sent;
                println!("  owner of {} topped up by {sent} lamports", m.code);
            }
        }
    }
    let report = apply(&mut chain, &plan).await?;
    print_report(&report);
    // Last: the initialisers above need the wallet as each program's upgrade authority.
    let mut foreign = 0;
    for (lib, outcome) in migrations::deploy::hand_upgrade_authorities(&mut chain).await? {
        use migrations::deploy::AuthorityOutcome as A;
        match outcome {
            A::HandedOver => println!(
                "  applied: {lib}'s upgrade authority handed to the council ({})",
                sdk::loader::council_upgrade_authority()
            ),
            A::WithCouncil => println!("  in place: {lib}'s upgrade authority is the council's"),
            A::NotUpgradeable => {
                println!(
                    "  {lib}: not a program of the upgradeable loader here (nothing to hand over)"
                )
            }
            A::Elsewhere(Some(key)) => {
                foreign += 1;
                println!(
                    "  error: {lib}'s upgrade authority is {key}, neither this wallet nor the council: it can replace the program without the council"
                )
            }
            A::Elsewhere(None) => println!("  {lib}: immutable (no upgrade authority)"),
        }
    }
    let end_balance = chain.account(payer).await?.map_or(0, |a| a.lamports);
    let spent = start_balance.saturating_sub(end_balance);
    println!(
        "wallet spent {:.6} SOL: {:.6} on rent and fees, {:.6} to council members and owners",
        spent as f64 / 1e9,
        spent.saturating_sub(topped_up) as f64 / 1e9,
        topped_up as f64 / 1e9
    );
    if foreign > 0 {
        println!(
            "failed: {foreign} program(s) can be upgraded by a key outside the council; hand that authority to {} with its holder",
            sdk::loader::council_upgrade_authority()
        );
        return Ok(ExitCode::from(1));
    }
    if report.complete() {
        println!("complete: every step in place, every authority with governance");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("waiting: run again once the council has voted or the timelock has passed");
        Ok(ExitCode::from(3))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(&args.log_format);
    let setup = match setup(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("unusable configuration: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("could not start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(setup, args.dry_run)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("migration failed: {e:#}");
            ExitCode::from(1)
        }
    }
}
