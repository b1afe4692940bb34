//! The council's view and actions: proposals with their state and timelock; propose
//! (pausing and unpausing a program, suspending and reactivating a meter, a meter's
//! capacity, the oracle's attestors and quorum and its reading limits, the market's
//! parameters, the council itself, skipping batches the oracle refuses), approve, reject,
//! execute. Each checked first as the governance
//! program would (a member's key, a proposal in the right state, the timelock passed).
use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Context, Result};
use governance::{Council, CouncilConfig, Proposal, ProposalStatus};
use oracle::ReadingLimits;
use registry::identity::Lfdi;
use registry::{MeterCapacity, MeterStatus};
use sdk::accounts::anchor_account;
use sdk::chain::{send_and_confirm, Chain, SendPolicy};
use sdk::ix::governance as governance_ix;
use serde::Serialize;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::MarketParams;

/// A proposal as `council proposals` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ProposalView {
    pub index: u64,
    pub status: String,
    pub proposer: String,
    /// `program.instruction`, from the IDLs.
    pub action: String,
    pub approvals: usize,
    pub rejections: usize,
    pub threshold: u8,
    pub created_at: i64,
    /// When it may be executed (approved + timelock); 0 until approved.
    pub executable_at: i64,
    /// For an upgrade: the build in its buffer (size, SHA-256, whether the council holds
    /// it), read from the chain, for voters to compare with their own build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A key as given on the command line: base58 (a Solana address), or base64 of 32 bytes
/// (as the bridge shows its attestor key).
pub fn parse_key(text: &str) -> Result<Pubkey> {
    if let Ok(key) = text.parse::<Pubkey>() {
        return Ok(key);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Pubkey::new_from_array)
        .with_context(|| format!("{text:?} is neither a base58 address nor 32 bytes of base64"))
}

/// A program the council governs, by name.
pub fn program_id(name: &str) -> Result<Pubkey> {
    Ok(match name {
        "registry" => registry::ID,
        "oracle" => oracle::ID,
        "energy-token" | "energy_token" => energy_token::ID,
        "trading" | "market" => trading::ID,
        other => bail!(
            "unknown program {other:?}: the council governs registry, oracle, energy-token and trading"
        ),
    })
}

/// A program the council can upgrade, by name: the governed ones and governance itself.
pub fn upgradeable_program_id(name: &str) -> Result<Pubkey> {
    match name {
        "governance" => Ok(governance::ID),
        other => program_id(other).map_err(|_| {
            anyhow::anyhow!(
                "unknown program {other:?}: the council upgrades registry, oracle, energy-token, trading and governance"
            )
        }),
    }
}

/// What the council can be asked to do from the command line.
#[derive(Clone, Debug)]
pub enum Action {
    /// Pauses `program` until `until` (Unix seconds), or until lifted when `None`.
    Pause {
        program: Pubkey,
        until: Option<i64>,
    },
    Unpause {
        program: Pubkey,
    },
    /// Suspends (or reactivates) a building's meter.
    MeterStatus {
        lfdi: Lfdi,
        active: bool,
    },
    /// Skips the oracle's batches through this sequence.
    SkipBatches {
        through: u64,
    },
    /// A new meter: its LFDI, its owner (who signs the execution: the registry needs the
    /// owner's signature, and the owner pays the account's rent), kind and capacity.
    Register {
        lfdi: Lfdi,
        owner: Pubkey,
        kind: registry::BuildingKind,
        capacity: MeterCapacity,
    },
    /// A meter's capacity (what bounds its readings and orders).
    Capacity {
        lfdi: Lfdi,
        capacity: MeterCapacity,
    },
    /// The oracle's attestor keys and the signatures a batch needs.
    Attestors {
        attestors: Vec<Pubkey>,
        quorum: u8,
    },
    /// The oracle's reading limits.
    Limits(ReadingLimits),
    /// The market's parameters.
    MarketParams(MarketParams),
    /// The council itself: members, guardians, threshold, timelock, guardian pause terms.
    Council(CouncilConfig),
    /// Retires a building's meter for good (it never changes status again).
    Retire {
        lfdi: Lfdi,
    },
    /// Hands a program's authority over to `to` (who then accepts it): a new governance,
    /// or a recovery key.
    HandOver {
        program: Pubkey,
        to: Pubkey,
    },
    /// Pays out the market's fees (quote base units) and rounding dust (GRID, Wh) to
    /// token accounts of the right mints.
    WithdrawFees {
        quote: u64,
        grid_wh: u64,
        quote_to: Pubkey,
        grid_to: Pubkey,
    },
    /// Upgrades `program` to the ELF in `buffer` (a loader buffer handed to the council
    /// first); the buffer's lamports go to `spill`.
    Upgrade {
        program: Pubkey,
        buffer: Pubkey,
        spill: Pubkey,
    },
    /// Closes a buffer the council holds (an upgrade rejected or superseded); its rent goes
    /// to `recipient`.
    CloseBuffer {
        buffer: Pubkey,
        recipient: Pubkey,
    },
}

/// The programs whose authority the council holds (and can hand over).
pub const GOVERNED: [Pubkey; 4] = [registry::ID, oracle::ID, energy_token::ID, trading::ID];

impl Action {
    /// The instruction the council executes, signed by its authority for the program.
    pub fn instruction(&self) -> Instruction {
        match *self {
            Action::Pause { program, until } => Governed::of(program)
                .pause_until(until.unwrap_or(program_common::pause::INDEFINITELY)),
            Action::Unpause { program } => Governed::of(program).pause_until(0),
            Action::MeterStatus { lfdi, active } => sdk::ix::registry::set_meter_status(
                governance_ix::authority_for(registry::ID),
                &lfdi,
                if active {
                    MeterStatus::Active
                } else {
                    MeterStatus::Suspended
                },
            ),
            Action::SkipBatches { through } => {
                sdk::ix::oracle::skip_batches(governance_ix::authority_for(oracle::ID), through)
            }
            Action::Register {
                lfdi,
                owner,
                kind,
                capacity,
            } => sdk::ix::registry::register_meter_with(
                governance_ix::authority_for(registry::ID),
                owner,
                lfdi,
                registry::identity::sfdi_from_lfdi(&lfdi),
                kind,
                capacity,
            ),
            Action::Capacity { lfdi, capacity } => sdk::ix::registry::update_meter_capacity(
                governance_ix::authority_for(registry::ID),
                &lfdi,
                capacity,
            ),
            Action::Attestors {
                ref attestors,
                quorum,
            } => sdk::ix::oracle::set_attestors(
                governance_ix::authority_for(oracle::ID),
                attestors.clone(),
                quorum,
            ),
            Action::Limits(limits) => {
                sdk::ix::oracle::set_limits(governance_ix::authority_for(oracle::ID), limits)
            }
            Action::MarketParams(params) => {
                sdk::ix::trading::set_params(governance_ix::authority_for(trading::ID), params)
            }
            Action::Council(ref config) => governance_ix::update_council(config.clone()),
            Action::Retire { lfdi } => sdk::ix::registry::set_meter_status(
                governance_ix::authority_for(registry::ID),
                &lfdi,
                MeterStatus::Retired,
            ),
            Action::HandOver { program, to } => Governed::of(program).propose_authority(to),
            Action::WithdrawFees {
                quote,
                grid_wh,
                quote_to,
                grid_to,
            } => sdk::ix::trading::withdraw_fees(
                governance_ix::authority_for(trading::ID),
                quote_to,
                grid_to,
                quote,
                grid_wh,
            ),
            Action::Upgrade {
                program,
                buffer,
                spill,
            } => sdk::loader::upgrade_instruction(&program, &buffer, &spill),
            Action::CloseBuffer { buffer, recipient } => {
                sdk::loader::close_buffer_instruction(&buffer, &recipient)
            }
        }
    }

    /// The program's own checks of the values, made before proposing (a proposal the
    /// program would refuse at execution is refused now, with its reason).
    pub fn check(&self) -> Result<()> {
        let checked = match self {
            Action::Capacity { capacity, .. } | Action::Register { capacity, .. } => {
                capacity.validate()
            }
            Action::Attestors { attestors, quorum } => {
                oracle::OracleConfig::validate_attestors(attestors, *quorum)
            }
            Action::Limits(limits) => limits.validate(),
            Action::MarketParams(params) => params.validate(),
            Action::Council(config) => config.validate(),
            _ => Ok(()),
        };
        checked.map_err(|e| anyhow::anyhow!("the program would refuse these values: {e}"))
    }
}

impl Action {
    /// What the target program would refuse at execution, given the chain now: checked
    /// before the vote and the timelock are spent on it.
    pub async fn precheck<C: Chain>(&self, chain: &mut C) -> Result<()> {
        match self {
            Action::SkipBatches { through } => {
                let c = chain
                    .account(sdk::ix::oracle::config_address())
                    .await?
                    .and_then(|a| sdk::accounts::zero_copy::<oracle::OracleConfig>(&a))
                    .context("the oracle is not initialised on this cluster")?;
                if *through <= c.last_sequence {
                    bail!(
                        "nothing to skip: the oracle has settled every batch through {}",
                        c.last_sequence
                    );
                }
                if through - c.last_sequence > oracle::MAX_SKIP_BATCHES {
                    bail!(
                        "a skip settles at most {} batches: propose --through {} first",
                        oracle::MAX_SKIP_BATCHES,
                        c.last_sequence + oracle::MAX_SKIP_BATCHES
                    );
                }
            }
            Action::MeterStatus { lfdi, active } => {
                let meter = registered(chain, lfdi)
                    .await?
                    .context("no such meter is registered")?;
                if meter.status == MeterStatus::Retired {
                    bail!("the meter is retired: its status never changes again");
                }
                if (meter.status == MeterStatus::Active) == *active {
                    bail!("the meter is {:?} already", meter.status);
                }
            }
            Action::Register { lfdi, .. } => {
                anyhow::ensure!(
                    registered(chain, lfdi).await?.is_none(),
                    "the meter is registered already"
                );
            }
            Action::Capacity { lfdi, .. } => {
                registered(chain, lfdi)
                    .await?
                    .context("no such meter is registered")?;
            }
            Action::Retire { lfdi } => {
                let meter = registered(chain, lfdi)
                    .await?
                    .context("no such meter is registered")?;
                if meter.status == MeterStatus::Retired {
                    bail!("the meter is retired already");
                }
            }
            Action::HandOver { program, to } => {
                if !GOVERNED.contains(program) {
                    bail!("the council hands over registry, oracle, energy-token or trading");
                }
                let (authority, _) = authority_and_pause(chain, *program).await?;
                if authority != governance_ix::authority_for(*program) {
                    bail!(
                        "the program's authority is {authority}, not the council's: the council cannot hand it over"
                    );
                }
                if *to == governance_ix::authority_for(*program) {
                    bail!("{to} is the council's own authority for that program already");
                }
                if *to == Pubkey::default() {
                    bail!("hand over to a real key, not the default (all-zero) one");
                }
            }
            Action::WithdrawFees {
                quote,
                grid_wh,
                quote_to,
                grid_to,
            } => {
                let market = chain
                    .account(sdk::ix::trading::market_address())
                    .await?
                    .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
                    .context("the market is not initialised on this cluster")?;
                if *quote > market.fees || *grid_wh > market.dust_wh {
                    bail!(
                        "the market holds {} quote units of fees and {} Wh of dust: withdraw at most that",
                        market.fees,
                        market.dust_wh
                    );
                }
                if *quote == 0 && *grid_wh == 0 {
                    bail!("nothing to withdraw: give --quote or --grid-wh");
                }
                for (account, mint, what) in [
                    (quote_to, market.quote_mint, "quote"),
                    (grid_to, market.base_mint, "GRID"),
                ] {
                    let held = chain.account(*account).await?.is_some_and(|a| {
                        a.owner == sdk::ix::energy_token::TOKEN_PROGRAM
                            && sdk::accounts::token_account(&a)
                                .is_some_and(|(m, _)| m == mint.to_bytes())
                    });
                    if !held {
                        bail!("{account} is not a {what} token account (mint {mint}): create it first");
                    }
                }
            }
            Action::Upgrade {
                program, buffer, ..
            } => {
                let council_key = sdk::loader::council_upgrade_authority();
                let deployed = match sdk::loader::program_state(chain, program).await? {
                    sdk::loader::ProgramState::Deployed(d) => d,
                    other => bail!(
                        "{program} is not a program of the upgradeable loader on this cluster ({other:?})"
                    ),
                };
                if deployed.upgrade_authority != Some(council_key) {
                    bail!(
                        "the council does not hold {program}'s upgrade authority (it is {:?}): the deploy hands it over (scripts/deploy)",
                        deployed.upgrade_authority
                    );
                }
                let b = sdk::loader::buffer(chain, buffer)
                    .await?
                    .with_context(|| format!("no buffer at {buffer}"))?;
                if b.authority != Some(council_key) {
                    bail!(
                        "buffer {buffer} is not the council's (its authority is {:?}): hand it over first (council write-buffer does), so that nobody can change it while the council votes",
                        b.authority
                    );
                }
                if b.code.len() > deployed.capacity {
                    bail!(
                        "the buffer's ELF is {} bytes, but the program has room for {}: the program must be extended first",
                        b.code.len(),
                        deployed.capacity
                    );
                }
                if b.code.get(..4) != Some(b"\x7fELF".as_slice()) {
                    bail!("buffer {buffer} does not hold an ELF");
                }
            }
            Action::CloseBuffer { buffer, recipient } => {
                let b = sdk::loader::buffer(chain, buffer)
                    .await?
                    .with_context(|| format!("no buffer at {buffer}"))?;
                if b.authority != Some(sdk::loader::council_upgrade_authority()) {
                    bail!(
                        "buffer {buffer} is not the council's (its authority is {:?}): its holder closes it",
                        b.authority
                    );
                }
                if recipient == buffer {
                    bail!("the rent must go to another account than the buffer");
                }
            }
            Action::Pause {
                until: Some(until), ..
            } => {
                let c = council(chain).await?;
                let now = chain.clock().await?.unix_timestamp;
                let earliest = now + i64::from(c.timelock_seconds);
                if *until <= earliest + 60 {
                    bail!(
                        "the pause would end at {until}, but the proposal executes after the council's {} s timelock at the earliest ({earliest}): pause for longer",
                        c.timelock_seconds
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }
}

async fn registered<C: Chain>(chain: &mut C, lfdi: &Lfdi) -> Result<Option<registry::Meter>> {
    Ok(chain
        .account(sdk::ix::registry::meter_address(lfdi))
        .await?
        .and_then(|a| anchor_account::<registry::Meter>(&a)))
}

/// A governed program's authority and the end of its pause (0: running), from its
/// configuration account.
pub async fn authority_and_pause<C: Chain>(
    chain: &mut C,
    program: Pubkey,
) -> Result<(Pubkey, i64)> {
    let governed = Governed::of(program);
    let account = chain
        .account(governed.config())
        .await?
        .context("the program is not initialised on this cluster")?;
    let read = match governed {
        Governed::Registry => {
            anchor_account::<registry::Campus>(&account).map(|c| (c.authority, c.paused_until))
        }
        Governed::Oracle => sdk::accounts::zero_copy::<oracle::OracleConfig>(&account)
            .map(|c| (c.authority, c.paused_until)),
        Governed::EnergyToken => sdk::accounts::zero_copy::<energy_token::TokenConfig>(&account)
            .map(|c| (c.authority, c.paused_until)),
        Governed::Trading => sdk::accounts::zero_copy::<trading::Market>(&account)
            .map(|m| (m.authority, m.paused_until)),
    };
    read.context("the program's configuration account does not decode")
}

/// The market's quote mint (fees are paid out in it).
pub async fn current_quote_mint<C: Chain>(chain: &mut C) -> Result<Pubkey> {
    chain
        .account(sdk::ix::trading::market_address())
        .await?
        .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
        .map(|m| m.quote_mint)
        .context("the market is not initialised on this cluster")
}

/// A meter's capacity now (what `propose capacity` changes).
pub async fn current_capacity<C: Chain>(chain: &mut C, lfdi: &Lfdi) -> Result<MeterCapacity> {
    Ok(chain
        .account(sdk::ix::registry::meter_address(lfdi))
        .await?
        .and_then(|a| anchor_account::<registry::Meter>(&a))
        .context("no such meter registered on this cluster")?
        .capacity)
}

/// The oracle's reading limits now.
pub async fn current_limits<C: Chain>(chain: &mut C) -> Result<ReadingLimits> {
    let c = chain
        .account(sdk::ix::oracle::config_address())
        .await?
        .and_then(|a| sdk::accounts::zero_copy::<oracle::OracleConfig>(&a))
        .context("the oracle is not initialised on this cluster")?;
    Ok(ReadingLimits {
        max_future_skew_s: c.max_future_skew_s,
        min_interval_s: c.min_interval_s,
        max_age_s: c.max_age_s,
        tolerance_bps: c.tolerance_bps,
    })
}

/// The market's parameters now.
pub async fn current_market_params<C: Chain>(chain: &mut C) -> Result<MarketParams> {
    Ok(chain
        .account(sdk::ix::trading::market_address())
        .await?
        .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
        .context("the market is not initialised on this cluster")?
        .params())
}

/// The council's configuration now.
pub async fn current_council<C: Chain>(chain: &mut C) -> Result<CouncilConfig> {
    let c = council(chain).await?;
    Ok(CouncilConfig {
        members: c.members,
        guardians: c.guardians,
        threshold: c.threshold,
        timelock_seconds: c.timelock_seconds,
        max_guardian_pause_s: c.max_guardian_pause_s,
        guardian_cooldown_s: c.guardian_cooldown_s,
    })
}

/// A program the council governs: where its configuration (authority, pause) lives and
/// the instructions it takes from its authority, the council's PDA for it. Every dispatch
/// on the program is here; anything else is taken as the market (callers check
/// [`GOVERNED`] first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Governed {
    Registry,
    Oracle,
    EnergyToken,
    Trading,
}

impl Governed {
    fn of(program: Pubkey) -> Governed {
        match program {
            p if p == registry::ID => Governed::Registry,
            p if p == oracle::ID => Governed::Oracle,
            p if p == energy_token::ID => Governed::EnergyToken,
            _ => Governed::Trading,
        }
    }

    fn id(self) -> Pubkey {
        match self {
            Governed::Registry => registry::ID,
            Governed::Oracle => oracle::ID,
            Governed::EnergyToken => energy_token::ID,
            Governed::Trading => trading::ID,
        }
    }

    /// The account its pause and authority are kept in.
    fn config(self) -> Pubkey {
        match self {
            Governed::Registry => sdk::ix::registry::campus_address(),
            Governed::Oracle => sdk::ix::oracle::config_address(),
            Governed::EnergyToken => sdk::ix::energy_token::config_address(),
            Governed::Trading => sdk::ix::trading::market_address(),
        }
    }

    fn pause_until(self, until: i64) -> Instruction {
        let authority = governance_ix::authority_for(self.id());
        match self {
            Governed::Registry => sdk::ix::registry::pause_until(authority, until),
            Governed::Oracle => sdk::ix::oracle::pause_until(authority, until),
            Governed::EnergyToken => sdk::ix::energy_token::pause_until(authority, until),
            Governed::Trading => sdk::ix::trading::pause_until(authority, until),
        }
    }

    fn propose_authority(self, to: Pubkey) -> Instruction {
        let authority = governance_ix::authority_for(self.id());
        match self {
            Governed::Registry => sdk::ix::registry::propose_authority(authority, to),
            Governed::Oracle => sdk::ix::oracle::propose_authority(authority, to),
            Governed::EnergyToken => sdk::ix::energy_token::propose_authority(authority, to),
            Governed::Trading => sdk::ix::trading::propose_authority(authority, to),
        }
    }
}

async fn council<C: Chain>(chain: &mut C) -> Result<Council> {
    chain
        .account(governance_ix::council_address())
        .await?
        .and_then(|a| anchor_account::<Council>(&a))
        .context("the council is not initialised on this cluster")
}

async fn proposal<C: Chain>(chain: &mut C, index: u64) -> Result<Proposal> {
    chain
        .account(governance_ix::proposal_address(index))
        .await?
        .and_then(|a| anchor_account::<Proposal>(&a))
        .with_context(|| {
            format!("no proposal {index} (`gridtokenx council proposals --all` lists them)")
        })
}

fn member(council: &Council, key: &Pubkey) -> Result<()> {
    if !council.members.contains(key) {
        bail!("{key} is not a council member: sign with a member's keypair (--keypair)");
    }
    Ok(())
}

fn view(p: &Proposal, council: &Council) -> ProposalView {
    let ix = &p.instruction;
    let program = sdk::names::program(&ix.program_id)
        .map_or_else(|| ix.program_id.to_string(), str::to_string);
    let name = sdk::names::instruction(&ix.program_id, &ix.data).unwrap_or("?");
    let action = if ix.program_id == sdk::loader::LOADER {
        loader_action(ix)
    } else {
        format!("{program}.{name}")
    };
    ProposalView {
        index: p.index,
        status: format!("{:?}", p.status),
        proposer: p.proposer.to_string(),
        action,
        approvals: p.approvals.len(),
        rejections: p.rejections.len(),
        threshold: council.threshold,
        created_at: p.created_at,
        executable_at: match p.status {
            ProposalStatus::Approved => p.approved_at + i64::from(council.timelock_seconds),
            _ => 0,
        },
        detail: None,
    }
}

/// A loader instruction the council would sign, in words (the loader has no IDL).
fn loader_action(ix: &governance::ProposedInstruction) -> String {
    let key = |i: usize| {
        ix.accounts.get(i).map_or_else(
            || "?".to_string(),
            |m| sdk::names::program(&m.pubkey).map_or_else(|| m.pubkey.to_string(), str::to_string),
        )
    };
    let tag = ix
        .data
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    match tag {
        Some(3) => format!("upgrade {} from buffer {}", key(1), key(2)),
        Some(4) | Some(7) => format!(
            "loader.set_authority of {} to {}",
            key(0),
            if ix.accounts.len() > 2 {
                key(2)
            } else {
                "none (immutable)".into()
            }
        ),
        Some(5) => format!("loader.close {} (rent to {})", key(0), key(1)),
        Some(6) | Some(9) => format!("loader.extend_program {}", key(0)),
        Some(n) => format!("loader instruction {n}"),
        None => "loader: undecodable instruction".into(),
    }
}

/// For an upgrade proposal, its buffer's build as the chain holds it now: size, SHA-256 and
/// whether the council holds the buffer (otherwise its bytes can still change).
async fn upgrade_detail<C: Chain>(
    chain: &mut C,
    p: &Proposal,
) -> Result<Option<(String, bool, [u8; 32])>> {
    let ix = &p.instruction;
    if !sdk::loader::is_upgrade(&ix.program_id, &ix.data) || ix.accounts.len() < 3 {
        return Ok(None);
    }
    let buffer = ix.accounts[2].pubkey;
    Ok(Some(match sdk::loader::buffer(chain, &buffer).await {
        Ok(Some(b)) => {
            let hash = sdk::loader::elf_hash(&b.code);
            let held = b.authority == Some(sdk::loader::council_upgrade_authority());
            (
                format!(
                    "buffer {buffer}: {} bytes, sha256 {}, {}",
                    b.code.len(),
                    sdk::loader::hex(&hash),
                    if held {
                        "held by the council".to_string()
                    } else {
                        format!(
                            "NOT held by the council (its authority is {:?}): its bytes can still change, do not approve",
                            b.authority
                        )
                    }
                ),
                held,
                hash,
            )
        }
        Ok(None) => (
            format!("buffer {buffer} does not exist (spent or closed)"),
            false,
            [0; 32],
        ),
        Err(e) => (format!("buffer {buffer}: {e}"), false, [0; 32]),
    }))
}

/// Before approving proposal `index`: an upgrade's buffer must be the council's, and, when
/// `sha256` (hex) is given, hold exactly that build.
pub async fn check_upgrade_build<C: Chain>(
    chain: &mut C,
    index: u64,
    sha256: Option<&str>,
) -> Result<()> {
    let p = proposal(chain, index).await?;
    match upgrade_detail(chain, &p).await? {
        None if sha256.is_some() => {
            bail!("proposal {index} is not an upgrade: --sha256 applies to upgrades")
        }
        None => Ok(()),
        Some((detail, held, hash)) => {
            if !held {
                bail!("proposal {index}: {detail}");
            }
            if let Some(expected) = sha256 {
                if !expected.eq_ignore_ascii_case(&sdk::loader::hex(&hash)) {
                    bail!("proposal {index}: the buffer holds another build than {expected} ({detail})");
                }
            }
            Ok(())
        }
    }
}

/// `council proposals`: the open ones (active or approved), or all.
pub async fn proposals<C: Chain>(chain: &mut C, all: bool) -> Result<Vec<ProposalView>> {
    let council = council(chain).await?;
    let addresses: Vec<Pubkey> = (0..council.proposal_count)
        .map(governance_ix::proposal_address)
        .collect();
    let mut out = Vec::new();
    for chunk in addresses.chunks(100) {
        for account in chain.accounts(chunk).await?.into_iter().flatten() {
            if let Some(p) = anchor_account::<Proposal>(&account) {
                if all || matches!(p.status, ProposalStatus::Active | ProposalStatus::Approved) {
                    let mut v = view(&p, &council);
                    v.detail = upgrade_detail(chain, &p).await?.map(|d| d.0);
                    out.push(v);
                }
            }
        }
    }
    Ok(out)
}

async fn send<C: Chain>(
    chain: &mut C,
    ix: Instruction,
    signer: &Keypair,
    what: &str,
) -> Result<()> {
    send_and_confirm(chain, &[ix], &[signer], &[], SendPolicy::default())
        .await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("the council refused to {what}: {}", e.reason()))
}

/// `council propose ACTION`: returns the new proposal's index.
pub async fn propose<C: Chain>(
    chain: &mut C,
    member_key: &Keypair,
    action: &Action,
) -> Result<u64> {
    let council = council(chain).await?;
    member(&council, &member_key.pubkey())?;
    action.check()?;
    action.precheck(chain).await?;
    let index = council.proposal_count;
    let ix = governance_ix::propose(member_key.pubkey(), index, &action.instruction());
    send(chain, ix, member_key, "take the proposal").await?;
    Ok(index)
}

/// `council approve N` or `council reject N`.
pub async fn vote<C: Chain>(
    chain: &mut C,
    member_key: &Keypair,
    index: u64,
    approve: bool,
) -> Result<ProposalView> {
    let council = council(chain).await?;
    member(&council, &member_key.pubkey())?;
    let p = proposal(chain, index).await?;
    // Votes are taken while active, and while approved (in its timelock: an approver may
    // turn to a rejection, and enough rejections defeat it).
    if !matches!(p.status, ProposalStatus::Active | ProposalStatus::Approved) {
        bail!(
            "proposal {index} is {:?}: only an active or approved proposal takes votes",
            p.status
        );
    }
    let key = member_key.pubkey();
    if approve && p.has_voted(&key) {
        bail!("{key} has voted on proposal {index} already");
    }
    if !approve && p.rejections.contains(&key) {
        bail!("{key} has rejected proposal {index} already");
    }
    if !approve && p.status == ProposalStatus::Active && p.approvals.contains(&key) {
        bail!("{key} has approved proposal {index}: an approval is turned into a rejection only once the proposal is approved (in its timelock)");
    }
    if approve {
        check_upgrade_build(chain, index, None).await?;
    }
    let ix = if approve {
        governance_ix::approve(key, index)
    } else {
        governance_ix::reject(key, index)
    };
    send(
        chain,
        ix,
        member_key,
        if approve { "approve" } else { "reject" },
    )
    .await?;
    let p = proposal(chain, index).await?;
    let mut v = view(&p, &council);
    v.detail = upgrade_detail(chain, &p).await?.map(|d| d.0);
    Ok(v)
}

/// `council execute N`: once approved and its timelock has passed (anyone may execute).
pub async fn execute<C: Chain>(chain: &mut C, executor: &Keypair, index: u64) -> Result<()> {
    let council = council(chain).await?;
    let p = proposal(chain, index).await?;
    match p.status {
        ProposalStatus::Approved => {}
        ProposalStatus::Active => bail!(
            "proposal {index} is active: it needs {} approvals first (it has {})",
            council.required_approvals(p.eligible_voters(&council)),
            council.count_members(&p.approvals)
        ),
        other => bail!("proposal {index} is {other:?}: nothing to execute"),
    }
    // As the program counts: approvals of current members against those eligible, and
    // the timelock from the approval or the council's last change of members.
    if !council.reaches_threshold(&p.approvals, p.eligible_voters(&council)) {
        bail!(
            "proposal {index} lost approvals to a council change: it needs {} of the current members (it has {})",
            council.required_approvals(p.eligible_voters(&council)),
            council.count_members(&p.approvals)
        );
    }
    let at = p
        .executable_at(&council)
        .map_err(|e| anyhow::anyhow!("proposal {index}: {e}"))?;
    let now = chain.clock().await?.unix_timestamp;
    if now < at {
        bail!(
            "proposal {index}'s timelock runs until {at} ({} s from now): execute it then",
            at - now
        );
    }
    let target = p.instruction.to_instruction();
    // Another signer the target needs (a new meter's owner) signs the execution.
    let authority = governance_ix::authority_for(target.program_id);
    if let Some(signer) = target
        .accounts
        .iter()
        .find(|m| m.is_signer && m.pubkey != authority && m.pubkey != executor.pubkey())
    {
        bail!(
            "proposal {index} needs {}'s signature too (a new meter's owner): execute it with that keypair (--keypair)",
            signer.pubkey
        );
    }
    let mut instructions = vec![governance_ix::execute(executor.pubkey(), index, &target)];
    // A new meter gets, in the same transaction, what the migrations give the campus file's
    // meters: its oracle state, its ledger and its owner's token accounts (the executor, its
    // owner, pays), so that it is attested, minted and trades from its first reading.
    if target.program_id == registry::ID
        && sdk::names::instruction(&registry::ID, &target.data) == Some("register_meter")
    {
        let lfdi: Lfdi = target
            .data
            .get(8..28)
            .and_then(|b| b.try_into().ok())
            .context("a register_meter proposal without an LFDI")?;
        let owner = executor.pubkey();
        instructions.push(sdk::ix::oracle::init_meter_state(owner, &lfdi));
        instructions.push(sdk::ix::energy_token::init_ledger(owner, &lfdi));
        let quote_mint = chain
            .account(sdk::ix::trading::market_address())
            .await?
            .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
            .map(|m| m.quote_mint);
        let mints = [
            sdk::ix::energy_token::grid_mint(),
            sdk::ix::energy_token::rec_mint(),
        ];
        for mint in mints.into_iter().chain(quote_mint) {
            if chain
                .account(sdk::ix::energy_token::ata(&owner, &mint))
                .await?
                .is_none()
            {
                instructions.push(sdk::ix::energy_token::create_ata(&owner, &owner, &mint));
            }
        }
    }
    send_and_confirm(
        chain,
        &instructions,
        &[executor],
        &[],
        SendPolicy::default(),
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        anyhow::anyhow!(
            "the council refused to execute the proposal: {}",
            e.reason()
        )
    })
}

/// What `council write-buffer` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BufferView {
    pub program: String,
    pub buffer: String,
    pub bytes: usize,
    pub sha256: String,
    pub transactions: usize,
}

/// `council write-buffer PROGRAM FILE`: anyone writes the ELF into a new buffer (or resumes
/// `buffer`'s) and hands the buffer to the council, which can then upgrade `program` from it.
pub async fn write_buffer<C: Chain>(
    chain: &mut C,
    program: Pubkey,
    elf: &[u8],
    buffer: &Keypair,
) -> Result<BufferView> {
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("not an ELF file");
    }
    match sdk::loader::program_state(chain, &program).await? {
        sdk::loader::ProgramState::Deployed(d) if elf.len() > d.capacity => bail!(
            "the ELF is {} bytes, but the program has room for {}",
            elf.len(),
            d.capacity
        ),
        sdk::loader::ProgramState::Deployed(_) => {}
        other => bail!("{program} is not deployed under the upgradeable loader ({other:?})"),
    }
    let written = sdk::loader::write_buffer(chain, buffer, elf, 64).await?;
    sdk::loader::hand_buffer_to_council(chain, &buffer.pubkey()).await?;
    Ok(BufferView {
        program: sdk::names::program(&program).map_or_else(|| program.to_string(), str::to_string),
        buffer: buffer.pubkey().to_string(),
        bytes: elf.len(),
        sha256: sdk::loader::hex(&sdk::loader::elf_hash(elf)),
        transactions: written.transactions + 1,
    })
}

/// `council cancel N`: its proposer withdraws a proposal not yet executed.
pub async fn cancel<C: Chain>(chain: &mut C, proposer: &Keypair, index: u64) -> Result<()> {
    let council = council(chain).await?;
    member(&council, &proposer.pubkey())?;
    let p = proposal(chain, index).await?;
    if p.proposer != proposer.pubkey() {
        bail!(
            "proposal {index} was made by {}: only its proposer cancels it (others reject it)",
            p.proposer
        );
    }
    if !matches!(p.status, ProposalStatus::Active | ProposalStatus::Approved) {
        bail!("proposal {index} is {:?}: nothing to cancel", p.status);
    }
    send(
        chain,
        governance_ix::cancel(proposer.pubkey(), index),
        proposer,
        "cancel",
    )
    .await
}

/// `council guardian-pause PROGRAM`: a guardian pauses a program at once, for the
/// council's `max_guardian_pause_s` (it lapses by itself; the council lifts it sooner or
/// makes it longer by proposal); one guardian may do it again only after the cooldown.
pub async fn guardian_pause<C: Chain>(
    chain: &mut C,
    guardian: &Keypair,
    program: Pubkey,
) -> Result<i64> {
    let council = council(chain).await?;
    if !council.is_guardian(&guardian.pubkey()) {
        bail!(
            "{} is not one of the council's guardians: propose a pause instead (`council propose pause`)",
            guardian.pubkey()
        );
    }
    if !GOVERNED.contains(&program) {
        bail!("a guardian pauses registry, oracle, energy-token or trading");
    }
    let now = chain.clock().await?.unix_timestamp;
    if let Some(last) = council
        .guardian_pauses
        .iter()
        .find(|p| p.guardian == guardian.pubkey() && p.program == program)
    {
        let again_at = last
            .at
            .saturating_add(i64::from(council.guardian_cooldown_s));
        if now < again_at {
            bail!(
                "this guardian paused that program at {} and may again only after the council's {} s cooldown, at {again_at}: ask another guardian, or propose a pause",
                last.at,
                council.guardian_cooldown_s
            );
        }
    }
    let ix =
        governance_ix::guardian_pause(guardian.pubkey(), program, Governed::of(program).config());
    send(chain, ix, guardian, "take the guardian's pause").await?;
    // The program keeps the later of a pause in force and the guardian's.
    Ok(authority_and_pause(chain, program).await?.1)
}
