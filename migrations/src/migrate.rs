//! Initialising a campus on a cluster from `campus.toml`, idempotently: every step first
//! reads whether its account exists, so running it twice changes nothing and a run that
//! stopped half-way completes on the next.
//!
//! Steps: council, registry campus, the meters (each owner co-signs its registration),
//! oracle configuration (attestor keys, quorum, limits, the cluster's genesis hash), meter
//! states, GRID and REC mints, ledgers, the owners' GRID/REC/quote accounts and the market
//! (buildings trade through their meters: no seat to claim); then the hand-over of the
//! registry's, the oracle's, the energy token's and the market's authority to governance.
//!
//! The hand-over is two-step on every program: the deployer (the migration's payer)
//! proposes the governance authority of that program, and the council accepts through a
//! proposal that runs `accept_authority`: member approvals, the timelock, then anyone
//! executes it. The members sign with their own keys: a run given some of them (`Plan::
//! council_signers`, the dev campus has them all) proposes and approves with those; a run
//! that must wait (approvals missing, timelock running) says so in `MigrationReport::
//! waiting` and the next run picks up where it stopped. The programs' upgrade authority is
//! handed over after these steps (`deploy::hand_upgrade_authorities`; the `migrate` binary
//! does it last), since the initialisers need the deploy wallet as that authority.
use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, bail, Result};
use governance::CouncilConfig;
use oracle::ReadingLimits;
use registry::identity::{sfdi_from_lfdi, Lfdi};
use sdk::accounts::{anchor_account, zero_copy};
use sdk::chain::{send_and_confirm, send_pipelined_signed, Chain, Job, SendPolicy};
use sdk::ix::{
    energy_token as token_ix, governance as gov_ix, oracle as oracle_ix, registry as registry_ix,
    trading as market_ix,
};
use sdk::CampusConfig;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::MarketParams;

/// One building's meter as the migration registers it.
pub struct PlannedMeter {
    pub code: String,
    pub lfdi: Lfdi,
    /// Signs the meter's registration (and later trades for the building).
    pub owner: Keypair,
}

pub struct Plan<'a> {
    pub campus: &'a CampusConfig,
    pub meters: Vec<PlannedMeter>,
    pub attestors: Vec<Pubkey>,
    pub limits: ReadingLimits,
    pub council: CouncilConfig,
    pub quote_mint: Pubkey,
    pub market: MarketParams,
    pub market_start: i64,
    /// Council members whose keys this run may sign with (propose and approve the
    /// hand-over); empty when the members approve on their own.
    pub council_signers: Vec<Keypair>,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Steps that sent a transaction.
    pub applied: Vec<String>,
    /// Steps found already done.
    pub already_done: usize,
    /// Steps that cannot finish yet (votes missing, timelock running), with why.
    pub waiting: Vec<String>,
    /// Transactions sent (per-meter steps share them: fewer than the steps applied).
    pub transactions: usize,
}

impl MigrationReport {
    /// Everything is in place: nothing applied now and nothing waiting.
    pub fn complete(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// A program whose authority goes to governance.
struct Authority {
    name: &'static str,
    program: Pubkey,
    current: Pubkey,
    pending: Pubkey,
    propose: fn(Pubkey, Pubkey) -> Instruction,
    accept: fn(Pubkey) -> Instruction,
}

async fn authorities<C: Chain>(chain: &mut C) -> Result<Vec<Authority>> {
    let keys = [
        registry_ix::campus_address(),
        oracle_ix::config_address(),
        token_ix::config_address(),
        market_ix::market_address(),
    ];
    let accounts = chain.accounts(&keys).await?;
    let missing = |what: &str| anyhow!("{what} is not initialised");
    let campus = accounts[0]
        .as_ref()
        .and_then(anchor_account::<registry::Campus>)
        .ok_or_else(|| missing("the registry campus"))?;
    let oracle = accounts[1]
        .as_ref()
        .and_then(zero_copy::<oracle::OracleConfig>)
        .ok_or_else(|| missing("the oracle"))?;
    let token = accounts[2]
        .as_ref()
        .and_then(anchor_account::<energy_token::TokenConfig>)
        .ok_or_else(|| missing("the energy token"))?;
    let market = accounts[3]
        .as_ref()
        .and_then(zero_copy::<trading::Market>)
        .ok_or_else(|| missing("the market"))?;
    Ok(vec![
        Authority {
            name: "registry",
            program: registry::ID,
            current: campus.authority,
            pending: campus.pending_authority,
            propose: registry_ix::propose_authority,
            accept: registry_ix::accept_authority,
        },
        Authority {
            name: "oracle",
            program: oracle::ID,
            current: oracle.authority,
            pending: oracle.pending_authority,
            propose: oracle_ix::propose_authority,
            accept: oracle_ix::accept_authority,
        },
        Authority {
            name: "energy token",
            program: energy_token::ID,
            current: token.authority,
            pending: token.pending_authority,
            propose: token_ix::propose_authority,
            accept: token_ix::accept_authority,
        },
        Authority {
            name: "market",
            program: trading::ID,
            current: market.authority,
            pending: market.pending_authority,
            propose: market_ix::propose_authority,
            accept: market_ix::accept_authority,
        },
    ])
}

/// The open proposal (collecting votes or approved) whose instruction is `target`.
async fn open_proposal<C: Chain>(
    chain: &mut C,
    council: &governance::Council,
    target: &Instruction,
) -> Result<Option<governance::Proposal>> {
    let wanted = governance::ProposedInstruction::from(target);
    let keys: Vec<Pubkey> = (0..council.proposal_count)
        .map(gov_ix::proposal_address)
        .collect();
    let proposals = chain.accounts(&keys).await?;
    Ok(proposals
        .iter()
        .flatten()
        .filter_map(anchor_account::<governance::Proposal>)
        .find(|p| {
            p.instruction == wanted
                && matches!(
                    p.status,
                    governance::ProposalStatus::Active | governance::ProposalStatus::Approved
                )
        }))
}

async fn council<C: Chain>(chain: &mut C) -> Result<governance::Council> {
    chain
        .account(gov_ix::council_address())
        .await?
        .as_ref()
        .and_then(anchor_account::<governance::Council>)
        .ok_or_else(|| anyhow!("the council is not initialised"))
}

/// Hands every program's authority to governance, as far as this run can take it.
async fn hand_over<C: Chain>(
    chain: &mut C,
    plan: &Plan<'_>,
    report: &mut MigrationReport,
) -> Result<()> {
    let payer = Signer::pubkey(chain.payer());
    for program in authorities(chain).await? {
        let governance_authority = gov_ix::authority_for(program.program);
        if program.current == governance_authority {
            report.already_done += 1;
            continue;
        }
        if program.pending != governance_authority {
            if program.current != payer {
                bail!(
                    "the {} authority is {}, not this migration's payer {payer}: it must propose {governance_authority} itself",
                    program.name,
                    program.current
                );
            }
            let ix = (program.propose)(payer, governance_authority);
            step(
                chain,
                report,
                format!("{} authority proposed to governance", program.name),
                &[ix],
                &[],
            )
            .await?;
        }
        let accept = (program.accept)(governance_authority);
        let council_now = council(chain).await?;
        let proposal = match open_proposal(chain, &council_now, &accept).await? {
            Some(p) => p,
            None => {
                let Some(proposer) = plan
                    .council_signers
                    .iter()
                    .find(|k| council_now.is_member(&k.pubkey()))
                else {
                    report.waiting.push(format!(
                        "{}: a council member must propose accept_authority (no member key given)",
                        program.name
                    ));
                    continue;
                };
                let index = council_now.proposal_count;
                let ix = gov_ix::propose(proposer.pubkey(), index, &accept);
                step(
                    chain,
                    report,
                    format!("{}: governance proposal {index} to accept", program.name),
                    &[ix],
                    &[proposer],
                )
                .await?;
                let council_after = council(chain).await?;
                open_proposal(chain, &council_after, &accept)
                    .await?
                    .ok_or_else(|| anyhow!("proposal {index} missing after proposing"))?
            }
        };
        let mut proposal = proposal;
        for member in &plan.council_signers {
            if proposal.status != governance::ProposalStatus::Active {
                break;
            }
            if !council_now.is_member(&member.pubkey()) || proposal.has_voted(&member.pubkey()) {
                continue;
            }
            let ix = gov_ix::approve(member.pubkey(), proposal.index);
            step(
                chain,
                report,
                format!("{}: proposal {} approved", program.name, proposal.index),
                &[ix],
                &[member],
            )
            .await?;
            proposal = chain
                .account(gov_ix::proposal_address(proposal.index))
                .await?
                .as_ref()
                .and_then(anchor_account::<governance::Proposal>)
                .ok_or_else(|| anyhow!("proposal {} vanished", proposal.index))?;
        }
        if proposal.status != governance::ProposalStatus::Approved {
            report.waiting.push(format!(
                "{}: proposal {} has {} of {} approvals",
                program.name,
                proposal.index,
                proposal.approvals.len(),
                council_now.threshold
            ));
            continue;
        }
        let council_now = council(chain).await?;
        let executable_at = proposal
            .approved_at
            .max(council_now.members_changed_at)
            .saturating_add(i64::from(council_now.timelock_seconds));
        let now = chain.clock().await?.unix_timestamp;
        if now < executable_at {
            report.waiting.push(format!(
                "{}: proposal {} executable in {} s (timelock)",
                program.name,
                proposal.index,
                executable_at - now
            ));
            continue;
        }
        let ix = gov_ix::execute(payer, proposal.index, &accept);
        step(
            chain,
            report,
            format!(
                "{} authority accepted by governance (proposal {})",
                program.name, proposal.index
            ),
            &[ix],
            &[],
        )
        .await?;
    }
    Ok(())
}

async fn exists<C: Chain>(chain: &mut C, key: Pubkey) -> Result<bool> {
    Ok(chain.account(key).await?.is_some())
}

async fn step<C: Chain>(
    chain: &mut C,
    report: &mut MigrationReport,
    what: String,
    instructions: &[Instruction],
    signers: &[&Keypair],
) -> Result<()> {
    send_and_confirm(chain, instructions, signers, &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow!("{what}: {}", e.reason()))?;
    tracing::info!(%what, "migration step applied");
    report.applied.push(what);
    report.transactions += 1;
    Ok(())
}

/// One step still to apply: its name, instructions, co-signers, and the accounts that
/// exist once it has applied.
struct Pending<'k> {
    name: String,
    instructions: Vec<Instruction>,
    signers: Vec<&'k Keypair>,
    done_when: Vec<Pubkey>,
}

/// Transactions of per-meter steps unconfirmed at once: the steps are independent (each
/// creates its own meter's accounts), so over RPC they need not wait for one another.
pub const MIGRATION_IN_FLIGHT: usize = 32;

/// Sends `pending` steps packed into as few transactions as fit (consecutive steps share a
/// transaction while it stays within a packet), [`MIGRATION_IN_FLIGHT`] unconfirmed at once:
/// at 10,000 meters the per-meter steps are most of the migration. A transaction that did
/// not confirm is checked against the chain (a rebroadcast copy may have landed): its steps
/// count as applied when their accounts exist, and the migration fails with the reason
/// otherwise (running it again applies what is missing).
async fn apply_packed<C: Chain>(
    chain: &mut C,
    report: &mut MigrationReport,
    pending: Vec<Pending<'_>>,
) -> Result<()> {
    let payer = chain.payer().insecure_clone();
    // (steps, instructions, signers) per transaction.
    let mut packed: Vec<(std::ops::Range<usize>, Vec<Instruction>, Vec<&Keypair>)> = Vec::new();
    let mut i = 0;
    while i < pending.len() {
        let mut instructions = pending[i].instructions.clone();
        let mut signers = pending[i].signers.clone();
        let mut n = 1;
        while i + n < pending.len() {
            let next = &pending[i + n];
            let mut more = instructions.clone();
            more.extend(next.instructions.iter().cloned());
            let mut with = signers.clone();
            with.extend(next.signers.iter().copied());
            if !sdk::chain::fits_with(&payer, &more, &with, &[]) {
                break;
            }
            instructions = more;
            signers = with;
            n += 1;
        }
        packed.push((i..i + n, instructions, signers));
        i += n;
    }
    let jobs: Vec<Job<'_>> = packed
        .iter()
        .map(|(_, instructions, signers)| Job {
            instructions,
            signers,
            tables: None,
        })
        .collect();
    let results = send_pipelined_signed(
        chain,
        &jobs,
        &[],
        SendPolicy::default(),
        MIGRATION_IN_FLIGHT,
    )
    .await;
    let mut failures = Vec::new();
    for ((steps, _, _), result) in packed.iter().zip(results) {
        let steps = &pending[steps.clone()];
        if let Err(e) = result {
            let markers: Vec<Pubkey> = steps.iter().flat_map(|p| p.done_when.clone()).collect();
            let found = chain.accounts(&markers).await?;
            if markers.is_empty() || found.iter().any(Option::is_none) {
                let names: Vec<&str> = steps.iter().map(|p| p.name.as_str()).collect();
                failures.push(format!("{}: {}", names.join(", "), e.reason()));
                continue;
            }
            tracing::info!(error = %e.reason(), "migration steps found applied after an unconfirmed send");
        }
        for p in steps {
            tracing::info!(what = %p.name, "migration step applied");
            report.applied.push(p.name.clone());
        }
        report.transactions += 1;
    }
    if let Some(first) = failures.first() {
        bail!(
            "{} migration transaction(s) failed (run the migrations again to apply what is \
             missing); the first: {first}",
            failures.len()
        );
    }
    Ok(())
}

/// Applies whatever of `plan` the chain does not have yet.
pub async fn apply<C: Chain>(chain: &mut C, plan: &Plan<'_>) -> Result<MigrationReport> {
    let mut report = MigrationReport::default();
    let payer = Signer::pubkey(chain.payer());
    let cluster = chain.genesis_hash().await?;

    if exists(chain, gov_ix::council_address()).await? {
        report.already_done += 1;
    } else {
        let ix = gov_ix::initialize_council(payer, plan.council.clone());
        step(chain, &mut report, "council".into(), &[ix], &[]).await?;
    }
    if exists(chain, registry_ix::campus_address()).await? {
        report.already_done += 1;
    } else {
        let ix = registry_ix::initialize_campus(payer, &plan.campus.name);
        step(chain, &mut report, "registry campus".into(), &[ix], &[]).await?;
    }
    let meter_keys: Vec<Pubkey> = plan
        .meters
        .iter()
        .map(|m| registry_ix::meter_address(&m.lfdi))
        .collect();
    let registered = chain.accounts(&meter_keys).await?;
    let mut pending = Vec::new();
    for (m, account) in plan.meters.iter().zip(registered) {
        if account.is_some() {
            report.already_done += 1;
            continue;
        }
        let building = plan
            .campus
            .buildings
            .iter()
            .find(|b| b.code == m.code)
            .ok_or_else(|| anyhow!("no building {} in the campus file", m.code))?;
        let capacity = building
            .capacity()
            .ok_or_else(|| anyhow!("{}: capacity overflows", m.code))?;
        let ix = registry_ix::register_meter_with(
            payer,
            m.owner.pubkey(),
            m.lfdi,
            sfdi_from_lfdi(&m.lfdi),
            building.kind.into(),
            capacity,
        );
        pending.push(Pending {
            name: format!("meter {}", m.code),
            instructions: vec![ix],
            signers: vec![&m.owner],
            done_when: vec![registry_ix::meter_address(&m.lfdi)],
        });
    }
    apply_packed(chain, &mut report, pending).await?;
    if exists(chain, oracle_ix::config_address()).await? {
        report.already_done += 1;
    } else {
        let ix = oracle_ix::initialize_oracle(
            payer,
            plan.attestors.clone(),
            plan.campus.attestors.quorum,
            plan.limits,
            cluster,
        );
        step(chain, &mut report, "oracle".into(), &[ix], &[]).await?;
    }
    if exists(chain, token_ix::config_address()).await? {
        report.already_done += 1;
    } else {
        let ix = token_ix::initialize(payer);
        step(chain, &mut report, "GRID and REC mints".into(), &[ix], &[]).await?;
    }
    // Per meter: oracle state, ledger, and the owner's token accounts (idempotent creation),
    // read in one go and sent packed.
    let keys_of = |m: &PlannedMeter| {
        vec![
            oracle_ix::meter_state_address(&m.lfdi),
            token_ix::ledger_address(&m.lfdi),
            token_ix::ata(&m.owner.pubkey(), &token_ix::grid_mint()),
            token_ix::ata(&m.owner.pubkey(), &token_ix::rec_mint()),
            token_ix::ata(&m.owner.pubkey(), &plan.quote_mint),
        ]
    };
    let keys: Vec<Pubkey> = plan.meters.iter().flat_map(keys_of).collect();
    let all = chain.accounts(&keys).await?;
    let mut pending = Vec::new();
    for (m, have) in plan.meters.iter().zip(all.chunks(5)) {
        let mut ixs = Vec::new();
        if have[0].is_none() {
            ixs.push(oracle_ix::init_meter_state(payer, &m.lfdi));
        }
        if have[1].is_none() {
            ixs.push(token_ix::init_ledger(payer, &m.lfdi));
        }
        for (i, mint) in [token_ix::grid_mint(), token_ix::rec_mint(), plan.quote_mint]
            .iter()
            .enumerate()
        {
            if have[2 + i].is_none() {
                ixs.push(token_ix::create_ata(&payer, &m.owner.pubkey(), mint));
            }
        }
        if ixs.is_empty() {
            report.already_done += 1;
        } else {
            pending.push(Pending {
                name: format!("accounts of {}", m.code),
                instructions: ixs,
                signers: Vec::new(),
                done_when: keys_of(m),
            });
        }
    }
    apply_packed(chain, &mut report, pending).await?;
    if exists(chain, market_ix::market_address()).await? {
        report.already_done += 1;
    } else {
        let ix =
            market_ix::initialize_market(payer, plan.quote_mint, plan.market, plan.market_start);
        step(chain, &mut report, "market".into(), &[ix], &[]).await?;
    }
    hand_over(chain, plan, &mut report).await?;
    Ok(report)
}
