//! The campus demo on an embedded chain: the five programs run in-process (natively, in
//! solana-program-test) and the campus goes from deployment to governed operation.
//!
//! Exit codes: 0 done, 1 a step failed on chain, 2 the configuration is unusable.
use std::path::PathBuf;
use std::process::ExitCode;

use certs::{ensure_pki, Layout};
use clap::Parser;
use governance::{CouncilConfig, GovernanceError};
use gridtokenx_tests::governance_ix::{self, authority_for, proposal_address};
use gridtokenx_tests::registry_ix::{self, campus_address, meter_address};
use gridtokenx_tests::{custom_error, TestEnv};
use migrations::CampusConfig;
use registry::identity::{sfdi_from_lfdi, Lfdi};
use registry::{Campus, Meter, MeterStatus};
use solana_keypair::Keypair;
use solana_signer::Signer;

#[derive(Parser)]
#[command(
    about = "Runs the GridTokenX campus on an embedded chain: registers every building's \
meter, hands the registry to the council, and suspends a meter through a timelocked proposal."
)]
struct Args {
    /// Campus configuration file.
    #[arg(long, env = "GRIDTOKENX_CAMPUS_CONFIG", default_value_os_t = CampusConfig::default_path())]
    config: PathBuf,
    /// Building whose meter the council suspends.
    #[arg(long, default_value = "GYM")]
    suspend: String,
    /// Council members (the approval threshold comes from the configuration).
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// Campus PKI directory; missing certificates are created there (see certs/README.md).
    #[arg(long, env = "GRIDTOKENX_PKI_DIR", default_value_os_t = Layout::default_dir())]
    pki: PathBuf,
}

/// The LFDI of each building's device certificate, by building code.
struct Identities(Vec<(String, Lfdi)>);

impl Identities {
    fn of(&self, code: &str) -> Lfdi {
        self.0
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, lfdi)| *lfdi)
            .expect("every building has a certificate")
    }
}

type StepResult = Result<(), String>;

macro_rules! step {
    ($n:expr, $what:expr) => {
        println!("[{}/7] {}", $n, $what)
    };
}

async fn send(
    env: &mut TestEnv,
    what: &str,
    ixs: &[solana_instruction::Instruction],
    signers: &[&Keypair],
) -> StepResult {
    env.send(ixs, signers)
        .await
        .map_err(|e| format!("{what}: {e}"))
}

async fn run(args: Args, config: CampusConfig) -> StepResult {
    let pki =
        ensure_pki(&Layout::new(&args.pki), &config).map_err(|e| format!("campus PKI: {e}"))?;
    println!(
        "[0/7] campus PKI in {}: {} device certificates",
        args.pki.display(),
        pki.meters.len()
    );
    let ids = Identities(
        pki.meters
            .iter()
            .map(|m| (m.code.clone(), m.lfdi))
            .collect(),
    );
    let target = config
        .buildings
        .iter()
        .find(|b| b.code == args.suspend)
        .ok_or_else(|| format!("no building {} in the configuration", args.suspend))?
        .clone();

    step!(1, "starting the embedded chain (registry, oracle, energy-token, trading, governance, SPL Token)");
    let mut env = TestEnv::start().await;
    let payer = env.payer();

    step!(2, format!("initialising campus {:?}", config.name));
    send(
        &mut env,
        "initialize_campus",
        &[registry_ix::initialize_campus(payer, &config.name)],
        &[],
    )
    .await?;

    step!(3, format!("registering {} meters", config.buildings.len()));
    for (i, b) in config.buildings.iter().enumerate() {
        let owner = env.funded_keypair(100_000_000).await;
        let lfdi = ids.of(&b.code);
        let capacity = b.capacity().ok_or("capacity overflow")?;
        let ix = registry_ix::register_meter_with(
            payer,
            owner.pubkey(),
            lfdi,
            sfdi_from_lfdi(&lfdi),
            b.kind.into(),
            capacity,
        );
        send(&mut env, &format!("register {}", b.code), &[ix], &[&owner]).await?;
        println!(
            "      {:>2}/{} {:<9} SFDI {}",
            i + 1,
            config.buildings.len(),
            b.code,
            sfdi_from_lfdi(&lfdi)
        );
    }

    step!(
        4,
        format!(
            "creating the council: {} members, threshold {}, timelock {} s, one guardian",
            args.members, config.council.threshold, config.council.timelock_seconds
        )
    );
    let mut members = Vec::new();
    for _ in 0..args.members {
        members.push(env.funded_keypair(1_000_000_000).await);
    }
    let guardian = env.funded_keypair(1_000_000_000).await;
    let council = CouncilConfig {
        members: members.iter().map(|m| m.pubkey()).collect(),
        guardians: vec![guardian.pubkey()],
        threshold: config.council.threshold,
        timelock_seconds: config.council.timelock_seconds,
    };
    send(
        &mut env,
        "initialize_council",
        &[governance_ix::initialize_council(payer, council)],
        &[],
    )
    .await?;

    step!(
        5,
        "handing the registry to governance (propose, then the council accepts)"
    );
    let governance_authority = authority_for(registry::ID);
    send(
        &mut env,
        "propose_authority",
        &[registry_ix::propose_authority(payer, governance_authority)],
        &[],
    )
    .await?;
    let accept = registry_ix::accept_authority(governance_authority);
    send(
        &mut env,
        "propose accept",
        &[governance_ix::propose(members[0].pubkey(), 0, &accept)],
        &[&members[0]],
    )
    .await?;
    for member in members.iter().take(usize::from(config.council.threshold)) {
        send(
            &mut env,
            "approve accept",
            &[governance_ix::approve(member.pubkey(), 0)],
            &[member],
        )
        .await?;
    }
    env.advance_clock(i64::from(config.council.timelock_seconds))
        .await;
    send(
        &mut env,
        "execute accept",
        &[governance_ix::execute(payer, 0, &accept)],
        &[],
    )
    .await?;

    step!(6, format!("suspending {} through a proposal", target.code));
    let lfdi = ids.of(&target.code);
    let suspend =
        registry_ix::set_meter_status(governance_authority, &lfdi, MeterStatus::Suspended);
    let proposer = &members[0];
    send(
        &mut env,
        "propose",
        &[governance_ix::propose(proposer.pubkey(), 1, &suspend)],
        &[proposer],
    )
    .await?;
    for member in members.iter().take(usize::from(config.council.threshold)) {
        send(
            &mut env,
            "approve",
            &[governance_ix::approve(member.pubkey(), 1)],
            &[member],
        )
        .await?;
    }
    let early = env
        .send(&[governance_ix::execute(payer, 1, &suspend)], &[])
        .await;
    if custom_error(&early) != Some(GovernanceError::TimelockNotElapsed.into()) {
        return Err(format!(
            "execute before the timelock should fail with TimelockNotElapsed, got {early:?}"
        ));
    }
    println!("      execute before the timelock: refused (TimelockNotElapsed), as it must be");
    env.advance_clock(i64::from(config.council.timelock_seconds))
        .await;
    send(
        &mut env,
        "execute",
        &[governance_ix::execute(payer, 1, &suspend)],
        &[],
    )
    .await?;
    println!(
        "      executed proposal {} after {} s",
        proposal_address(1),
        config.council.timelock_seconds
    );

    step!(7, "guardian pause, then unpause by proposal");
    send(
        &mut env,
        "guardian_pause",
        &[governance_ix::guardian_pause(
            guardian.pubkey(),
            registry::ID,
            campus_address(),
        )],
        &[&guardian],
    )
    .await?;
    let unpause = registry_ix::set_paused(governance_authority, false);
    send(
        &mut env,
        "propose unpause",
        &[governance_ix::propose(proposer.pubkey(), 2, &unpause)],
        &[proposer],
    )
    .await?;
    for member in members.iter().take(usize::from(config.council.threshold)) {
        send(
            &mut env,
            "approve unpause",
            &[governance_ix::approve(member.pubkey(), 2)],
            &[member],
        )
        .await?;
    }
    env.advance_clock(i64::from(config.council.timelock_seconds))
        .await;
    send(
        &mut env,
        "execute unpause",
        &[governance_ix::execute(payer, 2, &unpause)],
        &[],
    )
    .await?;

    let campus: Campus = env.account(campus_address()).await;
    println!(
        "\ncampus {:?}: {} meters, authority {} (governance), paused: {}",
        campus.name, campus.meter_count, campus.authority, campus.paused
    );
    println!(
        "{:<9} {:<15} {:>5} {:>13} {:>8} {:>8} {:>9}",
        "building", "kind", "index", "SFDI", "gen kW", "stor kWh", "status"
    );
    for b in &config.buildings {
        let meter: Meter = env.account(meter_address(&ids.of(&b.code))).await;
        println!(
            "{:<9} {:<15} {:>5} {:>13} {:>8} {:>8} {:>9}",
            b.code,
            format!("{:?}", meter.building_kind),
            meter.index,
            meter.sfdi,
            meter.capacity.generation_w / 1000,
            meter.capacity.storage_wh / 1000,
            format!("{:?}", meter.status)
        );
    }
    let suspended: Meter = env.account(meter_address(&lfdi)).await;
    if suspended.status != MeterStatus::Suspended || campus.paused {
        return Err("final state differs from what the proposals should have produced".into());
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match CampusConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args, config).await {
        Ok(()) => {
            println!("\ndone");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
