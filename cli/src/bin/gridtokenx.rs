//! `gridtokenx`: a building manager's command line. `status BUILDING` shows the building
//! on chain; `order place` and `order cancel` trade for it, signed by the building owner's
//! keypair. Like the Solana CLI: `--url` (the cluster's JSON-RPC), `--keypair` (a keypair
//! file), and `--json` for machine-readable output.
//!
//! Exit codes: 0 done, 1 refused (checked before sending, with what to change) or failed,
//! 2 unusable configuration (campus file, PKI directory, keypair).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use cli::{Buildings, OrderRequest};
use sdk::rpc::RpcChain;

#[derive(Parser)]
#[command(
    version,
    about = "A building's status and its orders on the GridTokenX campus market.",
    long_about = "A building's status on chain (meter, registers, verified import and export, GRID and quote \
balances, claimable balance, open orders) and its orders in the market's auctions (place, cancel), signed by the \
building owner's keypair. Buildings are named by their campus code (from --campus and the device certificates in \
--pki) or their meter's LFDI. Input the market would refuse (a price off its ladder, a closed interval, another \
owner's building) is refused before anything is sent, naming the fix.\n\n\
Exit codes: 0 done, 1 refused or failed, 2 unusable configuration."
)]
struct Args {
    /// The cluster's JSON-RPC URL.
    #[arg(
        short,
        long,
        global = true,
        env = "GRIDTOKENX_URL",
        default_value = "http://127.0.0.1:8899"
    )]
    url: String,
    /// The keypair that signs (the building's owner); Solana CLI JSON. `~/` is the home directory.
    #[arg(
        short,
        long,
        global = true,
        env = "GRIDTOKENX_KEYPAIR",
        default_value = "~/.config/solana/id.json"
    )]
    keypair: PathBuf,
    /// The campus file (building codes).
    #[arg(long, global = true, env = "GRIDTOKENX_CAMPUS", default_value_os_t = sdk::CampusConfig::default_path())]
    campus: PathBuf,
    /// The campus PKI directory (the buildings' device certificates give their LFDIs).
    #[arg(
        long,
        global = true,
        env = "GRIDTOKENX_PKI",
        default_value = "certs/generated"
    )]
    pki: PathBuf,
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A building's meter, registers, verified energy, balances and open orders.
    Status {
        /// A building code (e.g. ENG) or a meter's LFDI.
        building: String,
    },
    /// The building's orders.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Runs the building's trading agent: every `--every-s` (the market's interval by
    /// default), once a new reading has come, it orders its forecast surplus or deficit for
    /// the next open interval (--keypair: the owner's).
    Agent {
        building: String,
        /// The agents' configuration (see cli/agents.example.toml).
        #[arg(long)]
        agents: PathBuf,
        #[arg(long)]
        every_s: Option<u64>,
    },
    /// Burns GRID against the building's verified import not yet redeemed.
    Redeem {
        building: String,
        #[arg(long)]
        energy_wh: u64,
    },
    /// Renewable-energy certificates.
    #[command(subcommand)]
    Rec(RecCommand),
    /// Moves what the signer can claim in the market (settled fills, refunds) to their
    /// token accounts.
    Withdraw,
    /// The council: proposals, and a member's votes (--keypair: the member's).
    #[command(subcommand)]
    Council(CouncilCommand),
    /// The building's order delegate: the key (the campus keeper's) that places the
    /// building's IEEE 2030.5 flow reservations as orders, for orders only (--keypair: the
    /// owner's).
    #[command(subcommand)]
    Delegate(DelegateCommand),
}

#[derive(Subcommand)]
enum DelegateCommand {
    /// Lets DELEGATE place and cancel the building's orders, and caps what they may lock
    /// (allowances on the owner's quote and GRID accounts; 0 to lock none of one).
    Authorize {
        building: String,
        /// The delegate's public key (the keeper's order_delegate_keypair).
        delegate: String,
        /// SOL added to the delegation's rent float: each order the delegate places takes
        /// its rent (about 0.0016 SOL) from it, returned to the owner when it settles.
        #[arg(long, default_value_t = 0.0)]
        rent_float_sol: f64,
        /// Quote base units the delegate's buys may lock, in all.
        #[arg(long)]
        quote_allowance: u64,
        /// Wh of GRID the delegate's sells may lock, in all.
        #[arg(long)]
        grid_allowance: u64,
    },
    /// Ends the building's delegation and the allowances.
    Revoke { building: String },
}

#[derive(Subcommand)]
enum RecCommand {
    /// Retires the signer's RECs (1 MWh each) for a beneficiary, with a permanent record.
    Retire {
        #[arg(long)]
        amount: u64,
        /// For whom (1 to 64 bytes).
        #[arg(long)]
        beneficiary: String,
        /// Why (1 to 128 bytes).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum CouncilCommand {
    /// Proposals awaiting votes or execution (all with --all), with their timelock.
    Proposals {
        #[arg(long)]
        all: bool,
    },
    /// Proposes an action (a member signs).
    #[command(subcommand)]
    Propose(ProposeCommand),
    /// Approves proposal INDEX (an upgrade only if the council holds its buffer).
    Approve {
        index: u64,
        /// For an upgrade: the SHA-256 (hex) of the build you expect, from your own build of
        /// the source; the approval is refused if the buffer holds anything else.
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Rejects proposal INDEX.
    Reject { index: u64 },
    /// Executes proposal INDEX once approved and past its timelock (anyone may).
    Execute { index: u64 },
    /// Cancels proposal INDEX (its proposer, before it is executed).
    Cancel { index: u64 },
    /// A guardian pauses a program at once (registry, oracle, energy-token, trading) for
    /// the council's maximum guardian pause; it lapses by itself.
    GuardianPause { program: String },
    /// Writes a program build (an .so file) into a loader buffer and hands the buffer to
    /// the council, for `council propose upgrade` (anyone may; prints the buffer's address
    /// and the ELF's SHA-256, which voters compare with their own build).
    WriteBuffer {
        /// registry, oracle, energy-token, trading or governance.
        program: String,
        /// The program's .so file.
        file: std::path::PathBuf,
        /// Keypair file of the buffer, to resume an interrupted write (default: a new
        /// buffer, whose keypair is kept in ~/.config/gridtokenx/buffers/).
        #[arg(long)]
        buffer_keypair: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProposeCommand {
    /// Pauses a program (registry, oracle, energy-token, trading), for --hours or until lifted.
    Pause {
        program: String,
        #[arg(long)]
        hours: Option<u32>,
    },
    /// Lifts a program's pause.
    Unpause { program: String },
    /// Registers a building's meter (kind and capacity from the campus file) for an owner,
    /// who executes the proposal once approved (the registry needs the owner's signature).
    Register {
        building: String,
        #[arg(long)]
        owner: String,
    },
    /// Suspends a building's meter (it stops being attested, minted and trading).
    Suspend { building: String },
    /// Reactivates a suspended meter.
    Reactivate { building: String },
    /// Skips the oracle's batches through a sequence it refuses for good.
    SkipBatches {
        #[arg(long)]
        through: u64,
    },
    /// A meter's capacity; values not given stay as they are.
    Capacity {
        building: String,
        #[arg(long)]
        generation_w: Option<u64>,
        #[arg(long)]
        storage_wh: Option<u64>,
        #[arg(long)]
        max_import_w: Option<u64>,
        #[arg(long)]
        max_discharge_w: Option<u64>,
    },
    /// The oracle's attestor keys (base58, or base64 as the bridge shows its key; repeat
    /// --key) and the signatures a batch needs.
    Attestors {
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        #[arg(long)]
        quorum: u8,
    },
    /// The oracle's reading limits; values not given stay as they are.
    Limits {
        #[arg(long)]
        min_interval_s: Option<u32>,
        #[arg(long)]
        max_future_skew_s: Option<u32>,
        #[arg(long)]
        max_age_s: Option<u32>,
        #[arg(long)]
        tolerance_bps: Option<u16>,
    },
    /// The market's parameters; values not given stay as they are.
    Market {
        #[arg(long)]
        fee_bps: Option<u16>,
        #[arg(long)]
        price_tick: Option<u64>,
        #[arg(long)]
        min_price: Option<u64>,
        #[arg(long)]
        ticks: Option<u16>,
        #[arg(long)]
        min_quantity_wh: Option<u64>,
        #[arg(long)]
        gate_lead_s: Option<u32>,
        #[arg(long)]
        horizon: Option<u8>,
    },
    /// Retires a building's meter for good.
    Retire { building: String },
    /// Hands a program's authority (registry, oracle, energy-token, trading) over to a key,
    /// which then accepts it.
    HandOver {
        program: String,
        #[arg(long)]
        to: String,
    },
    /// Pays the market's fees (quote base units) and rounding dust (GRID, Wh) out to token
    /// accounts (default: the proposer's).
    WithdrawFees {
        #[arg(long, default_value_t = 0)]
        quote: u64,
        #[arg(long, default_value_t = 0)]
        grid_wh: u64,
        #[arg(long)]
        quote_to: Option<String>,
        #[arg(long)]
        grid_to: Option<String>,
    },
    /// Upgrades a program (registry, oracle, energy-token, trading, governance) to the
    /// build in a buffer the council holds (see `council write-buffer`); the buffer's rent
    /// goes back to --spill (default: the proposer).
    Upgrade {
        program: String,
        #[arg(long)]
        buffer: String,
        #[arg(long)]
        spill: Option<String>,
    },
    /// Closes a buffer the council holds (an upgrade rejected or superseded); its rent goes
    /// to --to (default: the proposer).
    CloseBuffer {
        #[arg(long)]
        buffer: String,
        #[arg(long)]
        to: Option<String>,
    },
    /// The council: members added or removed, threshold, timelock; the rest stays.
    Council {
        #[arg(long)]
        add_member: Vec<String>,
        #[arg(long)]
        remove_member: Vec<String>,
        #[arg(long)]
        threshold: Option<u8>,
        #[arg(long)]
        timelock_s: Option<u32>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SideArg {
    Buy,
    Sell,
}

impl From<SideArg> for trading::Side {
    fn from(s: SideArg) -> Self {
        match s {
            SideArg::Buy => trading::Side::Buy,
            SideArg::Sell => trading::Side::Sell,
        }
    }
}

#[derive(Subcommand)]
enum OrderCommand {
    /// Places an order in an interval's auction (the next open one by default).
    Place {
        building: String,
        #[arg(long, value_enum)]
        side: SideArg,
        /// Energy, Wh.
        #[arg(long)]
        energy_wh: u64,
        /// Limit price, quote base units per kWh, on the market's ladder.
        #[arg(long)]
        price: u64,
        /// The interval (its number); the next open one if omitted.
        #[arg(long)]
        interval: Option<u64>,
    },
    /// Replaces the building's order on one side of an interval (new quantity and price), in
    /// one transaction.
    Replace {
        building: String,
        #[arg(long, value_enum)]
        side: SideArg,
        #[arg(long)]
        energy_wh: u64,
        #[arg(long)]
        price: u64,
        #[arg(long)]
        interval: u64,
    },
    /// Cancels the building's order on one side of an interval (its escrow returned).
    Cancel {
        building: String,
        #[arg(long, value_enum)]
        side: SideArg,
        #[arg(long)]
        interval: u64,
    },
}

fn print<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("serialisable")
        );
    } else {
        print!("{}", text(value));
    }
}

fn order_request(side: SideArg, energy_wh: u64, price: u64, interval: Option<u64>) -> OrderRequest {
    OrderRequest {
        side: side.into(),
        quantity_wh: energy_wh,
        limit_price: price,
        interval,
    }
}

/// An order placed (or replaced), as the operator reads it.
fn placed_text(verb: &str, p: &cli::Placed) -> String {
    format!(
        "{verb}: {} {} {} Wh at {} per kWh in interval {} (from {}); {}\n",
        p.building, p.side, p.quantity_wh, p.limit_price, p.interval, p.starts_at, p.signature
    )
}

fn describe(s: &cli::BuildingStatus) -> String {
    let mut out = format!(
        "building {} (LFDI {}), owner {}, meter {}\n\
         registers: import {} Wh, export {} Wh, last reading at {}\n\
         verified: import {} Wh, export {} Wh; GRID minted {} Wh, redeemed {} Wh\n\
         balances: {} Wh GRID, {} quote; claimable in the market: {} Wh GRID, {} quote\n\
         RECs: {} held, {} issued for this meter\n",
        s.building,
        s.lfdi,
        s.owner,
        s.meter_status,
        s.import_wh,
        s.export_wh,
        s.last_reading,
        s.verified_import_wh,
        s.verified_export_wh,
        s.grid_minted_wh,
        s.redeemed_wh,
        s.grid_wh,
        s.quote,
        s.claimable_grid_wh,
        s.claimable_quote,
        s.recs,
        s.recs_issued,
    );
    if s.open_orders.is_empty() {
        out.push_str("open orders: none\n");
    }
    for o in &s.open_orders {
        out.push_str(&format!(
            "order: interval {} (from {}), {} {} Wh at {} per kWh, escrow {}, {}\n",
            o.interval, o.starts_at, o.side, o.quantity_wh, o.limit_price, o.escrow, o.state
        ));
    }
    if s.fills.is_empty() {
        out.push_str(&format!(
            "fills: none among the last {} transactions of the owner's market balance\n",
            cli::FILLS_LOOKBACK
        ));
    }
    for f in &s.fills {
        out.push_str(&format!(
            "fill: interval {}, {} {} Wh for {} quote (refund {}), slot {}\n",
            f.interval, f.side, f.filled_wh, f.quote, f.refund, f.slot
        ));
    }
    out
}

async fn council(
    chain: &mut RpcChain,
    member: &solana_keypair::Keypair,
    buildings: &Buildings,
    command: &CouncilCommand,
    json: bool,
) -> anyhow::Result<()> {
    use cli::council::{self, Action};
    match command {
        CouncilCommand::Proposals { all } => {
            let list = council::proposals(chain, *all).await?;
            print(json, &list, |list| {
                if list.is_empty() {
                    return "no proposals\n".into();
                }
                list.iter()
                    .map(|p| {
                        format!(
                            "#{} {} {} by {}: {}/{} approvals, {} rejections{}\n",
                            p.index,
                            p.status,
                            p.action,
                            p.proposer,
                            p.approvals,
                            p.threshold,
                            p.rejections,
                            if p.executable_at > 0 {
                                format!(", executable from {}", p.executable_at)
                            } else {
                                String::new()
                            },
                        ) + &p
                            .detail
                            .as_ref()
                            .map(|d| format!("    {d}\n"))
                            .unwrap_or_default()
                    })
                    .collect()
            });
        }
        CouncilCommand::Propose(what) => {
            let now = sdk::chain::Chain::clock(chain).await?.unix_timestamp;
            let action = match what {
                ProposeCommand::Pause { program, hours } => Action::Pause {
                    program: council::program_id(program)?,
                    until: hours.map(|h| now + i64::from(h) * 3_600),
                },
                ProposeCommand::Unpause { program } => Action::Unpause {
                    program: council::program_id(program)?,
                },
                ProposeCommand::Register { building, owner } => {
                    let (code, lfdi) = buildings.lfdi(building)?;
                    let (kind, capacity) = buildings.registration(&code)?;
                    Action::Register {
                        lfdi,
                        owner: council::parse_key(owner)?,
                        kind,
                        capacity,
                    }
                }
                ProposeCommand::Suspend { building } => Action::MeterStatus {
                    lfdi: buildings.lfdi(building)?.1,
                    active: false,
                },
                ProposeCommand::Reactivate { building } => Action::MeterStatus {
                    lfdi: buildings.lfdi(building)?.1,
                    active: true,
                },
                ProposeCommand::SkipBatches { through } => {
                    Action::SkipBatches { through: *through }
                }
                ProposeCommand::Retire { building } => Action::Retire {
                    lfdi: buildings.lfdi(building)?.1,
                },
                ProposeCommand::Upgrade {
                    program,
                    buffer,
                    spill,
                } => Action::Upgrade {
                    program: council::upgradeable_program_id(program)?,
                    buffer: council::parse_key(buffer)?,
                    spill: match spill {
                        Some(k) => council::parse_key(k)?,
                        None => solana_signer::Signer::pubkey(member),
                    },
                },
                ProposeCommand::CloseBuffer { buffer, to } => Action::CloseBuffer {
                    buffer: council::parse_key(buffer)?,
                    recipient: match to {
                        Some(k) => council::parse_key(k)?,
                        None => solana_signer::Signer::pubkey(member),
                    },
                },
                ProposeCommand::HandOver { program, to } => Action::HandOver {
                    program: council::program_id(program)?,
                    to: council::parse_key(to)?,
                },
                ProposeCommand::WithdrawFees {
                    quote,
                    grid_wh,
                    quote_to,
                    grid_to,
                } => {
                    let quote_mint = council::current_quote_mint(chain).await?;
                    let me = solana_signer::Signer::pubkey(member);
                    let account = |given: &Option<String>, mint| match given {
                        Some(k) => council::parse_key(k),
                        None => Ok(sdk::ix::energy_token::ata(&me, &mint)),
                    };
                    Action::WithdrawFees {
                        quote: *quote,
                        grid_wh: *grid_wh,
                        quote_to: account(quote_to, quote_mint)?,
                        grid_to: account(grid_to, sdk::ix::energy_token::grid_mint())?,
                    }
                }
                ProposeCommand::Capacity {
                    building,
                    generation_w,
                    storage_wh,
                    max_import_w,
                    max_discharge_w,
                } => {
                    let lfdi = buildings.lfdi(building)?.1;
                    let mut capacity = council::current_capacity(chain, &lfdi).await?;
                    capacity.generation_w = generation_w.unwrap_or(capacity.generation_w);
                    capacity.storage_wh = storage_wh.unwrap_or(capacity.storage_wh);
                    capacity.max_import_w = max_import_w.unwrap_or(capacity.max_import_w);
                    capacity.max_discharge_w = max_discharge_w.unwrap_or(capacity.max_discharge_w);
                    Action::Capacity { lfdi, capacity }
                }
                ProposeCommand::Attestors { keys, quorum } => Action::Attestors {
                    attestors: keys
                        .iter()
                        .map(|k| council::parse_key(k))
                        .collect::<anyhow::Result<_>>()?,
                    quorum: *quorum,
                },
                ProposeCommand::Limits {
                    min_interval_s,
                    max_future_skew_s,
                    max_age_s,
                    tolerance_bps,
                } => {
                    let mut l = council::current_limits(chain).await?;
                    l.min_interval_s = min_interval_s.unwrap_or(l.min_interval_s);
                    l.max_future_skew_s = max_future_skew_s.unwrap_or(l.max_future_skew_s);
                    l.max_age_s = max_age_s.unwrap_or(l.max_age_s);
                    l.tolerance_bps = tolerance_bps.unwrap_or(l.tolerance_bps);
                    Action::Limits(l)
                }
                ProposeCommand::Market {
                    fee_bps,
                    price_tick,
                    min_price,
                    ticks,
                    min_quantity_wh,
                    gate_lead_s,
                    horizon,
                } => {
                    let mut p = council::current_market_params(chain).await?;
                    p.fee_bps = fee_bps.unwrap_or(p.fee_bps);
                    p.price_tick = price_tick.unwrap_or(p.price_tick);
                    p.min_price = min_price.unwrap_or(p.min_price);
                    p.ticks = ticks.unwrap_or(p.ticks);
                    p.min_quantity_wh = min_quantity_wh.unwrap_or(p.min_quantity_wh);
                    p.gate_lead_s = gate_lead_s.unwrap_or(p.gate_lead_s);
                    p.horizon = horizon.unwrap_or(p.horizon);
                    Action::MarketParams(p)
                }
                ProposeCommand::Council {
                    add_member,
                    remove_member,
                    threshold,
                    timelock_s,
                } => {
                    let mut c = council::current_council(chain).await?;
                    for k in add_member {
                        let k = council::parse_key(k)?;
                        if !c.members.contains(&k) {
                            c.members.push(k);
                        }
                    }
                    for k in remove_member {
                        let k = council::parse_key(k)?;
                        c.members.retain(|m| *m != k);
                    }
                    c.threshold = threshold.unwrap_or(c.threshold);
                    c.timelock_seconds = timelock_s.unwrap_or(c.timelock_seconds);
                    Action::Council(c)
                }
            };
            let index = council::propose(chain, member, &action).await?;
            print(json, &serde_json::json!({ "proposal": index }), |_| {
                format!("proposal {index} made: members approve it (`gridtokenx council approve {index}`), then it executes after the timelock\n")
            });
        }
        CouncilCommand::Approve { index, .. } | CouncilCommand::Reject { index } => {
            let approve = matches!(command, CouncilCommand::Approve { .. });
            if let CouncilCommand::Approve {
                sha256: Some(hash), ..
            } = command
            {
                council::check_upgrade_build(chain, *index, Some(hash)).await?;
            }
            let p = council::vote(chain, member, *index, approve).await?;
            print(json, &p, |p| {
                format!(
                    "proposal {} is {}: {}/{} approvals, {} rejections\n{}",
                    p.index,
                    p.status,
                    p.approvals,
                    p.threshold,
                    p.rejections,
                    p.detail
                        .as_ref()
                        .map(|d| format!("    {d}\n"))
                        .unwrap_or_default()
                )
            });
        }
        CouncilCommand::Execute { index } => {
            council::execute(chain, member, *index).await?;
            print(json, &serde_json::json!({ "executed": index }), |_| {
                format!("proposal {index} executed\n")
            });
        }
        CouncilCommand::Cancel { index } => {
            council::cancel(chain, member, *index).await?;
            print(json, &serde_json::json!({ "cancelled": index }), |_| {
                format!("proposal {index} cancelled\n")
            });
        }
        CouncilCommand::WriteBuffer {
            program,
            file,
            buffer_keypair,
        } => {
            let program = council::upgradeable_program_id(program)?;
            let elf =
                std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            // A new buffer's keypair is kept (mode 0600, outside the repository) before
            // anything is sent, so that an interrupted write resumes with --buffer-keypair.
            let buffer = match buffer_keypair {
                Some(path) => sdk::settings::read_keypair(path)?,
                None => {
                    let key = solana_keypair::Keypair::new();
                    let dir = sdk::settings::expand_home(std::path::Path::new(
                        "~/.config/gridtokenx/buffers",
                    ));
                    let path = dir.join(format!("{}.json", solana_signer::Signer::pubkey(&key)));
                    sdk::settings::write_private_keypair(&path, &key)?;
                    eprintln!(
                        "buffer keypair kept at {} (resume with --buffer-keypair)",
                        path.display()
                    );
                    key
                }
            };
            let view = council::write_buffer(chain, program, &elf, &buffer).await?;
            print(json, &view, |v| {
                format!(
                    "buffer {} holds {}'s build ({} bytes, sha256 {}; {} transactions) and is the council's now\npropose the upgrade: gridtokenx council propose upgrade {} --buffer {}\n",
                    v.buffer, v.program, v.bytes, v.sha256, v.transactions, v.program, v.buffer
                )
            });
        }
        CouncilCommand::GuardianPause { program } => {
            let until =
                council::guardian_pause(chain, member, council::program_id(program)?).await?;
            print(
                json,
                &serde_json::json!({ "paused": program, "until": until }),
                |_| {
                    format!("{program} paused until {until} (it lapses then; the council may lift it sooner)\n")
                },
            );
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    // The campus file and the PKI only for commands that name a building: a council
    // member without the PKI directory still lists, votes and executes.
    let names_a_building = !matches!(
        &args.command,
        Command::Withdraw
            | Command::Rec(_)
            | Command::Council(
                CouncilCommand::Proposals { .. }
                    | CouncilCommand::Approve { .. }
                    | CouncilCommand::Reject { .. }
                    | CouncilCommand::Execute { .. }
                    | CouncilCommand::Cancel { .. }
                    | CouncilCommand::GuardianPause { .. }
                    | CouncilCommand::WriteBuffer { .. }
                    | CouncilCommand::Propose(
                        ProposeCommand::Pause { .. }
                            | ProposeCommand::Unpause { .. }
                            | ProposeCommand::SkipBatches { .. }
                            | ProposeCommand::Attestors { .. }
                            | ProposeCommand::Limits { .. }
                            | ProposeCommand::Market { .. }
                            | ProposeCommand::Council { .. }
                            | ProposeCommand::HandOver { .. }
                            | ProposeCommand::Upgrade { .. }
                            | ProposeCommand::CloseBuffer { .. }
                            | ProposeCommand::WithdrawFees { .. }
                    )
            )
    );
    let buildings = if names_a_building {
        match Buildings::load(&args.campus, &args.pki) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    } else {
        Buildings::none()
    };
    let keypair_path = sdk::settings::expand_home(&args.keypair);
    let signer = match &args.command {
        // Reading needs no key: a throwaway one pays for nothing.
        Command::Status { .. } | Command::Council(CouncilCommand::Proposals { .. }) => {
            Ok(solana_keypair::Keypair::new())
        }
        Command::Order(_)
        | Command::Council(_)
        | Command::Withdraw
        | Command::Redeem { .. }
        | Command::Agent { .. }
        | Command::Rec(_)
        | Command::Delegate(_) => solana_keypair::read_keypair_file(&keypair_path)
            .map_err(|e| format!("keypair {}: {e}", keypair_path.display())),
    };
    let signer = match signer {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let owner = solana_keypair::Keypair::new_from_array(*signer.secret_bytes());
    let mut chain = RpcChain::new(&args.url, signer);
    let done = async {
        match &args.command {
            Command::Status { building } => {
                let (code, lfdi) = buildings.lfdi(building)?;
                let s = cli::status(&mut chain, &code, &lfdi).await?;
                print(args.json, &s, describe);
            }
            Command::Order(OrderCommand::Place {
                building,
                side,
                energy_wh,
                price,
                interval,
            }) => {
                let (code, lfdi) = buildings.lfdi(building)?;
                let request = order_request(*side, *energy_wh, *price, *interval);
                let p = cli::place(&mut chain, &owner, &code, &lfdi, request).await?;
                print(args.json, &p, |p| placed_text("placed", p));
            }
            Command::Order(OrderCommand::Cancel {
                building,
                side,
                interval,
            }) => {
                let (code, lfdi) = buildings.lfdi(building)?;
                let sig = cli::cancel(&mut chain, &owner, &code, &lfdi, *interval, (*side).into())
                    .await?;
                print(args.json, &serde_json::json!({ "cancelled": sig }), |_| {
                    format!("cancelled: {code}'s order in interval {interval}; {sig}\n")
                });
            }
            Command::Agent {
                building,
                agents,
                every_s,
            } => {
                let (code, lfdi) = buildings.lfdi(building)?;
                let agents = cli::agent::Agents::load(agents)?;
                let Some(agent) = agents.for_building(&code) else {
                    anyhow::bail!("the agents file has no [default] agent nor one for {code}");
                };
                if agent.opt_out {
                    println!("{code} has opted out: it trades by hand (`gridtokenx order`)");
                    return Ok(());
                }
                let every = match every_s {
                    Some(s) => *s,
                    None => u64::from(
                        cli::council::current_market_params(&mut chain)
                            .await?
                            .interval_s,
                    ),
                };
                let mut seen = None;
                loop {
                    match cli::agent::step(&mut chain, &owner, &code, &lfdi, &agent, &mut seen)
                        .await
                    {
                        Ok(Some(p)) => print(args.json, &p, |p| {
                            format!(
                                "agent: {} {} {} Wh at {} per kWh in interval {}\n",
                                p.building, p.side, p.quantity_wh, p.limit_price, p.interval
                            )
                        }),
                        Ok(None) => {}
                        // Refused or the cluster away: said, and the next interval tried.
                        Err(e) => eprintln!("agent: {e:#}"),
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(every.max(1))).await;
                }
            }
            Command::Redeem {
                building,
                energy_wh,
            } => {
                let (code, lfdi) = buildings.lfdi(building)?;
                cli::redeem(&mut chain, &owner, &code, &lfdi, *energy_wh).await?;
                print(
                    args.json,
                    &serde_json::json!({ "redeemed_wh": energy_wh }),
                    |_| {
                        format!(
                            "redeemed: {energy_wh} Wh of GRID against {code}'s verified import\n"
                        )
                    },
                );
            }
            Command::Rec(RecCommand::Retire {
                amount,
                beneficiary,
                reason,
            }) => {
                let r = cli::retire(&mut chain, &owner, *amount, beneficiary, reason).await?;
                print(args.json, &r, |r| {
                    format!(
                        "retired: {} RECs, record {} (id {})\n",
                        r.recs, r.address, r.id
                    )
                });
            }
            Command::Withdraw => {
                let w = cli::withdraw(&mut chain, &owner).await?;
                print(args.json, &w, |w| {
                    format!("withdrawn: {} Wh GRID and {} quote\n", w.grid_wh, w.quote)
                });
            }
            Command::Order(OrderCommand::Replace {
                building,
                side,
                energy_wh,
                price,
                interval,
            }) => {
                let (code, lfdi) = buildings.lfdi(building)?;
                let request = order_request(*side, *energy_wh, *price, Some(*interval));
                let p = cli::replace(&mut chain, &owner, &code, &lfdi, request).await?;
                print(args.json, &p, |p| placed_text("replaced", p));
            }
            Command::Council(command) => {
                council(&mut chain, &owner, &buildings, command, args.json).await?
            }
            Command::Delegate(DelegateCommand::Authorize {
                building,
                delegate,
                rent_float_sol,
                quote_allowance,
                grid_allowance,
            }) => {
                anyhow::ensure!(
                    rent_float_sol.is_finite()
                        && *rent_float_sol >= 0.0
                        && *rent_float_sol <= 1_000.0,
                    "--rent-float-sol is 0 to 1000"
                );
                let rent_float = (rent_float_sol * 1e9).round() as u64;
                let (code, lfdi) = buildings.lfdi(building)?;
                let delegate: anchor_lang::prelude::Pubkey = delegate
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{delegate} is not a public key"))?;
                let d = cli::authorize_delegate(
                    &mut chain,
                    &owner,
                    &code,
                    &lfdi,
                    delegate,
                    rent_float,
                    *quote_allowance,
                    *grid_allowance,
                )
                .await?;
                print(args.json, &d, |d| {
                    format!(
                        "delegate {} may place {}'s orders, locking {} quote and {} Wh of GRID in all, their rent from a float {} lamports larger; {}\n",
                        d.delegate, d.building, d.quote_allowance, d.grid_allowance, d.rent_float, d.signature
                    )
                });
            }
            Command::Delegate(DelegateCommand::Revoke { building }) => {
                let (code, lfdi) = buildings.lfdi(building)?;
                let sig = cli::revoke_delegate(&mut chain, &owner, &code, &lfdi).await?;
                print(args.json, &serde_json::json!({ "revoked": sig }), |_| {
                    format!("revoked: {code}'s order delegate and allowances; {sig}\n")
                });
            }
        }
        anyhow::Ok(())
    };
    match done.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
