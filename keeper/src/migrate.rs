//! Initialising a campus on a cluster from `campus.toml`, idempotently: every step first
//! reads whether its account exists, so running it twice changes nothing and a run that
//! stopped half-way completes on the next.
//!
//! Steps: council, registry campus, the meters (each owner co-signs its registration),
//! oracle configuration (attestor keys, quorum, limits, the cluster's genesis hash), meter
//! states, GRID and REC mints, ledgers, the owners' GRID/REC/quote accounts, the market and
//! every building's seat.
use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, Result};
use governance::CouncilConfig;
use migrations::ix::{
    energy_token as token_ix, governance as gov_ix, oracle as oracle_ix, registry as registry_ix,
    trading as market_ix,
};
use migrations::CampusConfig;
use oracle::ReadingLimits;
use registry::identity::{sfdi_from_lfdi, Lfdi};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::MarketParams;

use crate::chain::{send_and_confirm, Chain, SendPolicy};
use crate::keeper::zero_copy;

/// One building's meter as the migration registers it.
pub struct PlannedMeter {
    pub code: String,
    pub lfdi: Lfdi,
    /// Signs the meter's registration and its market seat.
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
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Steps that sent a transaction.
    pub applied: Vec<String>,
    /// Steps found already done.
    pub already_done: usize,
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
        .map_err(|e| anyhow!("{what}: {}", crate::keeper::refusal(&e)))?;
    tracing::info!(%what, "migration step applied");
    report.applied.push(what);
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
        step(
            chain,
            &mut report,
            format!("meter {}", m.code),
            &[ix],
            &[&m.owner],
        )
        .await?;
    }
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
    // Per meter: oracle state, ledger, and the owner's token accounts (idempotent creation).
    for m in &plan.meters {
        let keys = [
            oracle_ix::meter_state_address(&m.lfdi),
            token_ix::ledger_address(&m.lfdi),
            token_ix::ata(&m.owner.pubkey(), &token_ix::grid_mint()),
            token_ix::ata(&m.owner.pubkey(), &token_ix::rec_mint()),
            token_ix::ata(&m.owner.pubkey(), &plan.quote_mint),
        ];
        let have = chain.accounts(&keys).await?;
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
            step(
                chain,
                &mut report,
                format!("accounts of {}", m.code),
                &ixs,
                &[],
            )
            .await?;
        }
    }
    let market = chain
        .account(market_ix::market_address())
        .await?
        .and_then(|a| zero_copy::<trading::Market>(&a));
    let market = match market {
        Some(m) => {
            report.already_done += 1;
            m
        }
        None => {
            let ix = market_ix::initialize_market(
                payer,
                plan.quote_mint,
                plan.market,
                plan.market_start,
            );
            step(chain, &mut report, "market".into(), &[ix], &[]).await?;
            chain
                .account(market_ix::market_address())
                .await?
                .and_then(|a| zero_copy::<trading::Market>(&a))
                .ok_or_else(|| anyhow!("market missing after initialisation"))?
        }
    };
    let seated: Vec<Pubkey> = market
        .seats
        .iter()
        .take(usize::from(market.seat_count))
        .map(|s| s.owner)
        .collect();
    for m in &plan.meters {
        if seated.contains(&m.owner.pubkey()) {
            report.already_done += 1;
            continue;
        }
        let ix = market_ix::claim_seat(m.owner.pubkey(), &m.lfdi);
        step(
            chain,
            &mut report,
            format!("seat of {}", m.code),
            &[ix],
            &[&m.owner],
        )
        .await?;
    }
    Ok(report)
}

/// A building's seat index in the market, if it has one.
pub fn seat_of(market: &trading::Market, owner: &Pubkey) -> Option<u16> {
    market
        .seats
        .iter()
        .take(usize::from(market.seat_count))
        .position(|s| s.owner == *owner)
        .map(|i| i as u16)
}
