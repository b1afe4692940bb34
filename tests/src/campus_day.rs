//! The campus day (the README's main command, `campus-demo`): meter to token to trade on
//! the embedded chain. Starts the five programs in-process (a solana-program-test bank), the
//! real bridge (IEEE 2030.5 over mutual TLS) and the 25 simulated meters, applies the
//! migrations, and runs a day in accelerated time. Every 15-minute interval: the meters post
//! their registers, the bridge attests them, the keeper submits the batch, mints GRID (and
//! RECs) from verified export, clears the auction of the interval whose gate just closed,
//! settles its orders and pays the balances out; each building's trading agent (`cli::agent`) places its order
//! for the next interval whose gate is open from its forecast surplus or deficit. Ends with a campus report and an SVG chart of price and volume, and checks that
//! the chain agrees with the meters.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::embedded::EmbeddedChain;
use crate::metering::Metered;
use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, bail, Context, Result};
use bridge::config::BridgeConfig;
use certs::{ensure_pki, Layout};
use governance::CouncilConfig;
use keeper::bridge_api::BridgeClient;
use keeper::Keeper;
use migrations::{Plan, PlannedMeter};
use oracle::ReadingLimits;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sdk::accounts::zero_copy;
use sdk::chain::{send_pipelined_signed, Chain, Job, SendPolicy};
use sdk::ix::{energy_token as token_ix, oracle as oracle_ix, trading as market_ix};
use sdk::rpc::RpcChain;
use sdk::CampusConfig;
use sdk::{CampusTime, Site};
use simulator::client::{client_config, MeterClient, Suites};
use simulator::meter::SimulatedMeter;
use simulator::profile::{BuildingModel, Place, Registers};
use simulator::runner::Campus as SimCampus;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::{MarketParams, Side};

/// What a campus day runs.
#[derive(Clone, Debug)]
pub struct DayOptions {
    pub config: PathBuf,
    pub pki: PathBuf,
    /// Auction intervals simulated, and their length in seconds (the market's interval).
    pub intervals: u32,
    pub interval_s: u32,
    pub post_rate: u32,
    pub seed: u64,
    /// Seconds (whole weeks keep the weekday) added to the time the sun, weather and loads
    /// are modelled at.
    pub model_offset_s: i64,
    pub out: PathBuf,
    /// Print progress and the report.
    pub verbose: bool,
    /// Run on a cluster over JSON-RPC, in real time, instead of the embedded chain.
    pub rpc: Option<RpcOptions>,
    /// Connections the simulated meters hold open at once, each then opened per request
    /// (None: one per meter, kept open): for more meters than the process's open files.
    pub meter_connections: Option<usize>,
    /// The buildings' trading agents (`cli::agent`); unset, each building's agent asks
    /// 0.080-0.110 and bids 0.100-0.150 credits per kWh (spread by building).
    pub agents: Option<cli::agent::Agents>,
    /// A console listening elsewhere, to which the day publishes the campus as it goes
    /// (read from the chain after every keeper pass, as the `console` binary reads a cluster).
    pub console: Option<console::server::Publisher>,
    /// The history: the bridge keeps its export queue, and this runs after every keeper
    /// pass and once more before the bridge stops (the pass number, then `u64::MAX`), with
    /// the bridge's keeper interface: the exporter's bridge passes (the chain's events are
    /// the caller's, from the chain the day leaves).
    pub history: Option<HistoryHook>,
}

/// What the day calls for the history (`DayOptions::history`).
#[derive(Clone)]
pub struct HistoryHook(pub std::sync::Arc<HistoryFn>);

pub type HistoryFn =
    dyn Fn(BridgeClient, u64) -> futures_util::future::BoxFuture<'static, Result<()>> + Send + Sync;

impl std::fmt::Debug for HistoryHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryHook")
    }
}

impl DayOptions {
    /// The tests' embedded day: the repository's campus, `intervals` 15-minute intervals
    /// ending at the last boundary before now, modelling the hours up to 14:00 campus time of
    /// a clear summer day (same weekday) whatever the time and date; PKI and output under
    /// `dir`.
    pub fn midday_test(dir: &std::path::Path, intervals: u32) -> DayOptions {
        let campus = CampusConfig::load(&CampusConfig::in_repository()).expect("the campus file");
        let place = Place::new(&campus.site).expect("the campus site");
        let now = bridge::server::now();
        let end = now - now % 900;
        DayOptions {
            config: CampusConfig::in_repository(),
            pki: dir.join("pki"),
            intervals,
            interval_s: 900,
            post_rate: 300,
            seed: 7,
            model_offset_s: clear_summer_offset_ending_at(&place, end, 7, 14 * 3600),
            out: dir.join("out"),
            verbose: false,
            rpc: None,
            meter_connections: None,
            agents: None,
            console: None,
            history: None,
        }
    }
}

/// A cluster to run the day on.
#[derive(Clone, Debug)]
pub struct RpcOptions {
    pub url: String,
    /// Pays for everything and must be the programs' upgrade authority (it initialises
    /// them); a test validator's faucet tops it up.
    pub wallet: PathBuf,
    /// The council's timelock there, seconds (a real clock cannot be advanced).
    pub timelock_s: u32,
    /// Half-way through the day, upgrade the oracle to this build through a council
    /// proposal (buffer, proposal, approvals, timelock, execution) while the campus runs.
    pub upgrade_oracle: Option<PathBuf>,
}

/// A chain the day can run on: the embedded one moves its clock, a cluster is waited for.
#[allow(async_fn_in_trait)]
pub trait DayChain: Chain {
    /// Returns once the chain's clock is at `t` or later.
    async fn advance_to(&mut self, t: i64) -> Result<()>;
    fn name(&self) -> String;
}

impl DayChain for EmbeddedChain {
    async fn advance_to(&mut self, t: i64) -> Result<()> {
        self.set_time(t).await
    }
    fn name(&self) -> String {
        "embedded chain".into()
    }
}

impl DayChain for RpcChain {
    async fn advance_to(&mut self, t: i64) -> Result<()> {
        self.wait_for_time(t).await.map(|_| ())
    }
    fn name(&self) -> String {
        format!("cluster at {}", self.url())
    }
}

/// What a campus day measured.
#[derive(Clone, Debug, Default)]
pub struct DayReport {
    pub text: String,
    pub checks_ok: bool,
    pub failures: Vec<String>,
    pub readings_on_chain: u64,
    pub grid_minted_wh: u64,
    pub verified_export_wh: u64,
    pub exported_wh: u64,
    pub traded_wh: u64,
    pub intervals_cleared: u64,
    pub keeper_failures: usize,
    /// IEEE 2030.5: flow reservations the EMSs made, answered, and the energy the answers
    /// say was filled (Wh, both sides).
    pub flow_reservations: u64,
    pub flow_answers: u64,
    pub flow_filled_wh: u64,
    /// Demand response: events issued, responses posted, load shed (Wh).
    pub dr_events: u64,
    pub dr_responses: u64,
    pub shed_wh: u64,
}

/// Days to add to `t` so that the model runs at the nearest summer solstice week on the
/// same weekday (21 June north of the equator, 21 December south of it): the campus exports
/// most in the sunnier months.
pub fn summer_offset_days(site: &Site, t: i64) -> i64 {
    let day = t.div_euclid(86_400);
    // 21 June (or 21 December) of 2026, then whole years of 365.25 days.
    let solstice_2026 = if site.latitude_deg >= 0.0 {
        20_625
    } else {
        20_808
    };
    let years = ((day - solstice_2026) as f64 / 365.25).round() as i64;
    let solstice = solstice_2026 + (years as f64 * 365.25).round() as i64;
    ((solstice - day) as f64 / 7.0).round() as i64 * 7
}

/// [`summer_offset_days`], moved by whole weeks (up to 10 either way, nearest first) to a
/// day the model with `seed` keeps clear at `place` (its local date): a test that needs the
/// campus to export must not depend on the weather drawn for today's date (a cloudy day
/// exports nothing at midday).
pub fn clear_summer_offset_days(place: &Place, t: i64, seed: u64) -> i64 {
    let base = summer_offset_days(place.site(), t);
    (0..=10i64)
        .flat_map(|k| [k, -k])
        .map(|k| base + 7 * k)
        .find(|offset| simulator::profile::clear_day(place, seed, t + offset * 86_400))
        .unwrap_or(base)
}

/// The model offset that moves `end` by `days` days and to `time_of_day_s` seconds after
/// local midnight at `place` (the campus's civil time, daylight saving included).
pub fn offset_to_local_time(place: &Place, end: i64, days: i64, time_of_day_s: i64) -> i64 {
    let shifted = end + days * 86_400;
    let offset = days * 86_400 + time_of_day_s - place.local(shifted).rem_euclid(86_400);
    // A daylight-saving change between `shifted` and the result moves it by its hour: once
    // more, at the result's own offset.
    let mut error = place.local(end + offset).rem_euclid(86_400) - time_of_day_s;
    // Near midnight the error wraps around the day: bring it into half a day either way.
    if error > 43_200 {
        error -= 86_400;
    } else if error <= -43_200 {
        error += 86_400;
    }
    if error.abs() <= 2 * 3600 {
        offset - error
    } else {
        offset
    }
}

/// The model offset that makes a run whose last interval ends at `end` model a clear summer
/// day (same weekday, see [`clear_summer_offset_days`]) ending at `time_of_day_s` seconds
/// after local midnight at the campus: `14 * 3600` gives the sunny hours up to 14:00 campus
/// time, whatever the time and date of the run.
pub fn clear_summer_offset_ending_at(
    place: &Place,
    end: i64,
    seed: u64,
    time_of_day_s: i64,
) -> i64 {
    let days = clear_summer_offset_days(place, end, seed);
    offset_to_local_time(place, end, days, time_of_day_s)
}

/// [`clear_summer_offset_ending_at`] on a workday: the model's day is moved by whole days
/// (up to ten weeks either way, nearest first) to a clear summer workday, whose loads follow
/// working hours, so that a run of a few minutes has buildings importing as well as
/// exporting (on a weekend most loads are light and the market has sellers only).
pub fn clear_summer_workday_offset_ending_at(
    place: &Place,
    end: i64,
    seed: u64,
    time_of_day_s: i64,
) -> i64 {
    let base = summer_offset_days(place.site(), end);
    let offset = (0..=70i64)
        .flat_map(|k| [k, -k])
        .map(|k| offset_to_local_time(place, end, base + k, time_of_day_s))
        .find(|offset| {
            let t = end + offset;
            simulator::profile::clear_day(place, seed, t) && simulator::profile::workday(place, t)
        });
    offset.unwrap_or_else(|| offset_to_local_time(place, end, base, time_of_day_s))
}

/// The campus credit (quote token): 6 decimals; prices are credit base units per kWh.
use migrations::dev::QUOTE_DECIMALS;
const QUOTE_FUNDS: u64 = 2_000_000_000; // 2,000 credits per building
const SOL: u64 = 1_000_000_000;
/// What each owner and council member gets for fees and the rent of their orders and
/// proposals (returned when they close).
const OWNER_FUNDS: u64 = SOL / 10;
/// The rent float an EMS building's owner gives its delegation: the rent of some 300
/// orders (each comes back to the owner's wallet when its order settles).
const RENT_FLOAT: u64 = SOL / 2;

/// A building as the demo runs it.
struct Building {
    code: String,
    lfdi: registry::identity::Lfdi,
    owner: Keypair,
    /// Registers at the end of the last interval (for the forecast).
    last: Registers,
    /// Net export over the last interval, Wh (negative: net import).
    net_wh: i64,
    /// Its trading agent (`cli::agent`): prices, limits, opt-out.
    agent: cli::agent::AgentConfig,
    bought_wh: u64,
    sold_wh: u64,
    paid: u64,
    received: u64,
    /// Trades through its EMS over IEEE 2030.5 (flow reservations the keeper places with
    /// the campus's order delegate), not through its agent.
    ems: bool,
}

/// Every third building (from the second) trades through its EMS over IEEE 2030.5.
fn trades_through_ems(index: usize) -> bool {
    index % 3 == 1
}

#[derive(Clone, Copy, Default)]
struct IntervalResult {
    start: i64,
    price: u64,
    volume_wh: u64,
    buys: u16,
    sells: u16,
    /// Flow reservations buildings' EMSs made for it over IEEE 2030.5.
    reservations: u16,
}

fn credits(units: u64) -> String {
    format!(
        "{:.2}",
        units as f64 / 10f64.powi(i32::from(QUOTE_DECIMALS))
    )
}

fn kwh(wh: u64) -> String {
    format!("{:.1}", wh as f64 / 1000.0)
}

/// Sends `lamports` from the chain's payer to `to`.
pub use migrations::dev::{create_quote_mint, fund};

pub async fn token_balance<C: Chain>(chain: &mut C, account: Pubkey) -> Result<u64> {
    use anchor_lang::solana_program::program_pack::Pack;
    Ok(match chain.account(account).await? {
        Some(a) => spl_token_interface::state::Account::unpack(&a.data)?.amount,
        None => 0,
    })
}

/// On a cluster, orders are sent to an interval only while its gate is this far ahead.
const ORDER_MARGIN_S: i64 = 30;

/// Orders of the buildings' agents unconfirmed at once (independent transactions,
/// each signed by its building's owner).
const ORDERS_IN_FLIGHT: usize = 64;

/// The buildings' agents (`cli::agent::AgentConfig::decide`): each offers its forecast
/// surplus (persistence: what it exported net over the last interval), up to the GRID it
/// holds, at its ask; or bids for its forecast deficit at its bid, up to what its credits
/// cover; an opted-out building places nothing. Balances are read in one go and the orders
/// sent pipelined.
async fn place_orders<C: Chain>(
    chain: &mut C,
    buildings: &[Building],
    quote_mint: &Pubkey,
    interval: u64,
) -> Result<(u16, u16)> {
    use anchor_lang::solana_program::program_pack::Pack;
    let buildings: Vec<&Building> = buildings.iter().filter(|b| !b.ems).collect();
    let keys: Vec<Pubkey> = buildings
        .iter()
        .map(|b| {
            let mint = if b.net_wh >= 0 {
                token_ix::grid_mint()
            } else {
                *quote_mint
            };
            token_ix::ata(&b.owner.pubkey(), &mint)
        })
        .collect();
    let balances = chain.accounts(&keys).await?;
    let mut orders = Vec::new();
    for (&b, account) in buildings.iter().zip(balances) {
        let held = match account {
            Some(a) => spl_token_interface::state::Account::unpack(&a.data)?.amount,
            None => 0,
        };
        // The balance read is the one the forecast's side needs.
        let (grid, quote) = if b.net_wh >= 0 { (held, 0) } else { (0, held) };
        let order = b
            .agent
            .decide(b.net_wh, grid, quote)
            .map(|d| (d.side, d.quantity_wh, d.limit_price));
        if let Some((side, quantity, price)) = order {
            let owner = b.owner.pubkey();
            let ix =
                market_ix::place_order(owner, quote_mint, &b.lfdi, interval, side, quantity, price);
            orders.push((b, side, [ix], [&b.owner]));
        }
    }
    let jobs: Vec<Job<'_>> = orders
        .iter()
        .map(|(_, _, ix, signers)| Job {
            instructions: ix,
            signers,
            tables: None,
        })
        .collect();
    let results =
        send_pipelined_signed(chain, &jobs, &[], SendPolicy::default(), ORDERS_IN_FLIGHT).await;
    let (mut buys, mut sells) = (0, 0);
    for ((b, side, _, _), result) in orders.iter().zip(results) {
        result.map_err(|e| anyhow!("{} order: {}", b.code, e.reason()))?;
        match side {
            Side::Buy => buys += 1,
            Side::Sell => sells += 1,
        }
    }
    Ok((buys, sells))
}

/// Books each settled order's fill (as the program reported it) into its building's
/// totals.
fn book_fills(settlements: &[keeper::keeper::Settlement], buildings: &mut [Building]) {
    for s in settlements {
        let Some(b) = buildings.iter_mut().find(|b| b.lfdi == s.lfdi) else {
            continue;
        };
        if s.buy {
            b.bought_wh += s.filled_wh;
            b.paid += s.quote;
        } else {
            b.sold_wh += s.filled_wh;
            b.received += s.quote;
        }
    }
}

/// What the market owes, from every account it has on chain: open orders' escrow, claimable
/// balances, fees and dust, and the rounding of books not yet closed: `(GRID Wh, quote)`.
/// The vaults must hold exactly this.
async fn market_owed<C: Chain>(chain: &mut C, market: &trading::Market) -> Result<(i128, i128)> {
    let (mut base, mut quote) = (i128::from(market.dust_wh), i128::from(market.fees));
    for (_, a) in chain
        .program_accounts(
            trading::ID,
            <trading::Order as anchor_lang::Discriminator>::DISCRIMINATOR,
        )
        .await?
    {
        let order = zero_copy::<trading::Order>(&a).ok_or_else(|| anyhow!("bad order"))?;
        match order.side()? {
            trading::Side::Buy => quote += i128::from(order.escrow),
            trading::Side::Sell => base += i128::from(order.escrow),
        }
    }
    for (_, a) in chain
        .program_accounts(
            trading::ID,
            <trading::Balance as anchor_lang::Discriminator>::DISCRIMINATOR,
        )
        .await?
    {
        let b = zero_copy::<trading::Balance>(&a).ok_or_else(|| anyhow!("bad balance"))?;
        base += i128::from(b.base);
        quote += i128::from(b.quote);
    }
    for (_, a) in chain
        .program_accounts(
            trading::ID,
            <trading::IntervalBook as anchor_lang::Discriminator>::DISCRIMINATOR,
        )
        .await?
    {
        let b = zero_copy::<trading::IntervalBook>(&a).ok_or_else(|| anyhow!("bad book"))?;
        base += i128::from(b.base_in) - i128::from(b.base_out);
        quote += i128::from(b.quote_in) - i128::from(b.quote_out);
    }
    Ok((base, quote))
}

fn chart_svg(results: &[IntervalResult], interval_s: u32, clock: &CampusTime) -> String {
    let (w, h, left, right, top, bottom) = (960.0, 420.0, 70.0, 70.0, 40.0, 50.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let n = results.len().max(1) as f64;
    let max_volume = results
        .iter()
        .map(|r| r.volume_wh)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let priced: Vec<&IntervalResult> = results.iter().filter(|r| r.volume_wh > 0).collect();
    let max_price = priced.iter().map(|r| r.price).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="22" font-size="15">Campus day: clearing price (line) and traded volume (bars) per {} interval</text>"#,
        interval_name(interval_s)
    );
    for (i, r) in results.iter().enumerate() {
        let bar_h = r.volume_wh as f64 / max_volume * plot_h;
        let x = left + i as f64 / n * plot_w;
        let _ = writeln!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bar_h:.1}" fill="#9ecae1"/>"##,
            top + plot_h - bar_h,
            (plot_w / n * 0.8).max(1.0)
        );
    }
    let points: Vec<String> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.volume_wh > 0)
        .map(|(i, r)| {
            format!(
                "{:.1},{:.1}",
                left + (i as f64 + 0.4) / n * plot_w,
                top + plot_h - r.price as f64 / max_price * plot_h
            )
        })
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#d94801" stroke-width="2"/>"##,
        points.join(" ")
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    for k in 0..=4 {
        let f = f64::from(k) / 4.0;
        let y = top + plot_h - f * plot_h;
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{y:.1}" text-anchor="end" fill="#3182bd">{:.1} kWh</text>"##,
            left - 6.0,
            max_volume * f / 1000.0
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{y:.1}" fill="#d94801">{:.3}/kWh</text>"##,
            left + plot_w + 6.0,
            max_price * f / 1e6
        );
    }
    for (i, r) in results.iter().enumerate() {
        if r.start % 10_800 == 0 || (results.len() <= 24 && interval_s < 900) {
            let x = left + i as f64 / n * plot_w;
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{} {}</text>"#,
                top + plot_h + 18.0,
                fmt_time(clock.local(r.start)),
                zone_label(clock, r.start)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

macro_rules! say {
    ($on:expr, $($t:tt)*) => {
        if $on {
            println!($($t)*);
        }
    };
}

fn interval_name(interval_s: u32) -> String {
    if interval_s.is_multiple_of(60) {
        format!("{}-minute", interval_s / 60)
    } else {
        format!("{interval_s}-second")
    }
}

/// The console's read of the chain, published; a failed read is reported and the day goes
/// on (the page keeps the last snapshot).
async fn publish_console<C: Chain>(
    console: &mut Option<(console::Collector, console::server::Publisher)>,
    chain: &mut C,
) {
    let Some((collector, publisher)) = console.as_mut() else {
        return;
    };
    let published = match collector.read(chain).await {
        Ok(snapshot) => publisher.publish(&snapshot),
        Err(e) => Err(e),
    };
    if let Err(e) = published {
        eprintln!("warning: the console's read failed ({e:#}); the page keeps the last snapshot");
    }
}

/// The output directory and the campus PKI (created where missing).
fn prepare(args: &DayOptions, config: &CampusConfig) -> Result<certs::Pki> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let pki = ensure_pki(&Layout::new(&args.pki), config).context("campus PKI")?;
    say!(
        args.verbose,
        "[1/6] campus PKI in {}: CA, bridge and {} device certificates",
        args.pki.display(),
        pki.meters.len()
    );
    Ok(pki)
}

/// The day on the embedded chain, and the chain as the day left it (for checks of what
/// others, such as the console, show of it).
pub async fn run_embedded(
    args: DayOptions,
    config: CampusConfig,
) -> Result<(DayReport, EmbeddedChain)> {
    anyhow::ensure!(
        args.rpc.is_none(),
        "run_embedded runs on the embedded chain"
    );
    let pki = prepare(&args, &config)?;
    say!(
        args.verbose,
        "[2/6] embedded chain: registry, oracle, energy-token, trading, governance, SPL Token"
    );
    let chain = EmbeddedChain::start().await;
    day(chain, args, config, pki).await
}

/// Runs the day on the embedded chain, or on the cluster `args.rpc` names; `Ok` with the
/// report (whose `checks_ok` says whether the chain agreed).
pub async fn run(args: DayOptions, config: CampusConfig) -> Result<DayReport> {
    let Some(rpc) = args.rpc.clone() else {
        return run_embedded(args, config).await.map(|(report, _)| report);
    };
    let pki = prepare(&args, &config)?;
    let wallet = sdk::settings::expand_home(&rpc.wallet);
    let payer = solana_keypair::read_keypair_file(&wallet)
        .map_err(|e| anyhow!("wallet {}: {e}", wallet.display()))?;
    let mut chain = RpcChain::new(&rpc.url, payer);
    let payer = chain.payer_key();
    let balance = chain
        .client()
        .get_balance(&payer)
        .await
        .with_context(|| format!("getBalance at {} (is the validator running?)", rpc.url))?;
    // The owners' and council's funds, each meter's accounts' rent, and fees.
    let needed = 100 * SOL + (OWNER_FUNDS + SOL / 50) * config.buildings.len() as u64;
    if balance < needed {
        chain.airdrop(&payer, needed - balance + 50 * SOL).await?;
    }
    for program in crate::embedded::PROGRAMS {
        if chain.account(program).await?.is_none() {
            bail!("program {program} is not deployed at {}", rpc.url);
        }
    }
    say!(
        args.verbose,
        "[2/6] cluster at {} (payer {payer}), the five programs deployed",
        rpc.url
    );
    day(chain, args, config, pki)
        .await
        .map(|(report, _)| report)
}

async fn day<C: DayChain>(
    mut chain: C,
    args: DayOptions,
    config: CampusConfig,
    pki: certs::Pki,
) -> Result<(DayReport, C)> {
    // The report speaks the campus's own time zone.
    let clock = CampusTime::new(&config.site)?;
    if args
        .rpc
        .as_ref()
        .is_some_and(|r| r.upgrade_oracle.is_some())
        && args.intervals < 2
    {
        bail!("upgrading the oracle half-way needs at least 2 intervals");
    }
    let interval_s = i64::from(args.interval_s);
    let intervals = u64::from(args.intervals);
    let real_time = args.rpc.is_some();
    let timelock = match &args.rpc {
        Some(rpc) => rpc.timelock_s,
        None => config.council.timelock_seconds,
    };
    // Embedded: whole intervals ending at the last interval boundary before now, replayed
    // at speed; migrations run before, early enough for the council's timelock on the
    // hand-over of the programs' authorities to pass. On a cluster: from the next interval
    // boundary after the set-up, in real time.
    let now = bridge::server::now();
    let (mut start, setup_at) = if real_time {
        let now = chain.clock().await?.unix_timestamp;
        (now - now % interval_s, now)
    } else {
        let end = now - now % interval_s;
        let start = end - intervals as i64 * interval_s;
        (start, start - i64::from(timelock) - 3600)
    };
    let market_start = start;
    if !real_time {
        chain.advance_to(setup_at).await?;
    }
    let genesis = chain.genesis_hash().await?;

    // The bridge, attesting for this chain with the oracle's limits.
    let limits = ReadingLimits {
        max_future_skew_s: 60,
        min_interval_s: 60.min(args.post_rate),
        max_age_s: 2 * 86_400,
        tolerance_bps: 1_000,
    };
    let data_dir = args.out.join("bridge-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let bridge_config = BridgeConfig {
        listen: "127.0.0.1:0".parse()?,
        keeper_listen: "127.0.0.1:0".parse()?,
        metrics_listen: "127.0.0.1:0".parse()?,
        data_dir,
        campus_config: args.config.clone(),
        pki_dir: args.pki.clone(),
        post_rate_s: args.post_rate,
        // The demo attests at the end of each simulated interval itself.
        attest_interval_s: 86_400,
        min_interval_s: limits.min_interval_s,
        max_future_skew_s: limits.max_future_skew_s,
        max_age_s: limits.max_age_s,
        tolerance_bps: limits.tolerance_bps,
        cluster_genesis_hash: Some(Pubkey::new_from_array(genesis).to_string()),
        export_queue: args.history.is_some(),
        ..BridgeConfig::default()
    };
    let running = bridge::server::start(&bridge_config)
        .await
        .context("start the bridge")?;
    say!(
        args.verbose,
        "      bridge: IEEE 2030.5 on {}, keeper interface on {}",
        running.meters_addr,
        running.keeper_addr
    );

    // Migrations: everything the campus needs on chain, owners funded first.
    let setup_began = std::time::Instant::now();
    let quote_mint = create_quote_mint(&mut chain).await?;
    let planned: Vec<PlannedMeter> = pki
        .meters
        .iter()
        .map(|m| PlannedMeter {
            code: m.code.clone(),
            lfdi: m.lfdi,
            owner: Keypair::new(),
        })
        .collect();
    // The council (its members pay for the proposals they make).
    let members: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
    let payer = chain.payer_key();
    let transfers = planned
        .iter()
        .map(|m| m.owner.pubkey())
        .chain(members.iter().map(|m| m.pubkey()))
        .map(|to| {
            anchor_lang::solana_program::system_instruction::transfer(&payer, &to, OWNER_FUNDS)
        })
        .collect();
    migrations::dev::send_packed(&mut chain, "fund the owners and the council", transfers).await?;
    let plan = Plan {
        campus: &config,
        meters: planned,
        attestors: vec![Pubkey::new_from_array(running.attestor.public_key())],
        limits,
        council: CouncilConfig {
            members: members.iter().map(|m| m.pubkey()).collect(),
            guardians: vec![members[0].pubkey()],
            threshold: config.council.threshold.min(3),
            timelock_seconds: timelock,
            max_guardian_pause_s: config.council.max_guardian_pause_s,
            guardian_cooldown_s: config.council.guardian_cooldown_s,
        },
        quote_mint,
        // The campus file's market terms, at the day's interval length.
        market: MarketParams {
            interval_s: args.interval_s,
            ..config
                .market
                .params()
                .ok_or_else(|| anyhow!("the campus file's market ladder is invalid"))?
        },
        market_start,
        council_signers: members,
    };
    let gate_lead_s = plan.market.gate_lead_s;
    let report = migrations::apply(&mut chain, &plan).await?;
    // The council's timelock runs; then the next run executes the hand-over, and a third
    // finds everything done.
    let after_timelock = if real_time {
        chain.clock().await?.unix_timestamp + i64::from(timelock) + 2
    } else {
        setup_at + i64::from(timelock) + 60
    };
    chain.advance_to(after_timelock).await?;
    let handed_over = migrations::apply(&mut chain, &plan).await?;
    let again = migrations::apply(&mut chain, &plan).await?;
    say!(args.verbose,
        "[3/6] migrations: {} steps applied in {} transactions (council, campus, {} meters, oracle, mints, accounts, market, hand-over proposals), {} waiting for the {} s timelock; set-up {:.0} s",
        report.applied.len(),
        report.transactions,
        plan.meters.len(),
        report.waiting.len(),
        timelock,
        setup_began.elapsed().as_secs_f64(),
    );
    say!(args.verbose,
        "      after the timelock: {} steps applied (governance accepts the registry, oracle, energy token and market); a third run applied {} and found {} done",
        handed_over.applied.len(),
        again.applied.len(),
        again.already_done
    );
    if !again.applied.is_empty() || !again.complete() {
        bail!(
            "the third migration run was not a no-op: applied {:?}, waiting {:?}",
            again.applied,
            again.waiting
        );
    }
    // Last, as `migrate` does: the programs' upgrade authority goes to the council (on a
    // cluster whose programs the loader deployed; the embedded chain's are builtins).
    let upgrade_authorities = migrations::deploy::hand_upgrade_authorities(&mut chain).await?;
    let handed = upgrade_authorities
        .iter()
        .filter(|(_, o)| *o == migrations::deploy::AuthorityOutcome::HandedOver)
        .count();
    if handed > 0 {
        say!(
            args.verbose,
            "      upgrade authorities: {handed} of 5 programs handed to the council ({})",
            sdk::loader::council_upgrade_authority()
        );
    }
    let mut mints = Vec::with_capacity(plan.meters.len());
    for m in &plan.meters {
        mints.push(spl_token_interface::instruction::mint_to(
            &anchor_spl::token::ID,
            &quote_mint,
            &token_ix::ata(&m.owner.pubkey(), &quote_mint),
            &payer,
            &[],
            QUOTE_FUNDS,
        )?);
    }
    migrations::dev::send_packed(&mut chain, "the owners' credits", mints).await?;
    let mut buildings = Vec::new();
    for (i, m) in plan.meters.iter().enumerate() {
        // Asks from 0.08 to 0.11 credits/kWh, bids from 0.10 to 0.15 (spread by building).
        let i = i as u64;
        buildings.push(Building {
            code: m.code.clone(),
            lfdi: m.lfdi,
            owner: m.owner.insecure_clone(),
            last: Registers::default(),
            net_wh: 0,
            agent: args
                .agents
                .as_ref()
                .and_then(|a| a.for_building(&m.code))
                .unwrap_or(cli::agent::AgentConfig {
                    opt_out: false,
                    ask: 80_000 + (i * 7 % 31) * 1_000,
                    bid: 100_000 + (i * 11 % 51) * 1_000,
                    min_order_wh: 100,
                    max_order_wh: 0,
                }),
            bought_wh: 0,
            sold_wh: 0,
            paid: 0,
            received: 0,
            ems: trades_through_ems(i as usize),
        });
    }
    // The campus's order delegate (the keeper's): the EMS buildings' owners authorise it
    // for orders only, fund its orders' rent (a float in the delegation, returned to them as
    // the orders settle) and budget what its orders may lock.
    let delegate = Keypair::new();
    let mut delegations = Vec::new();
    for b in buildings.iter().filter(|b| b.ems) {
        fund(&mut chain, &b.owner.pubkey(), RENT_FLOAT).await?;
        delegations.push((
            b,
            [
                market_ix::authorize_delegate(
                    b.owner.pubkey(),
                    &b.lfdi,
                    delegate.pubkey(),
                    RENT_FLOAT,
                ),
                market_ix::approve_order_allowance(b.owner.pubkey(), &quote_mint, QUOTE_FUNDS),
                market_ix::approve_order_allowance(
                    b.owner.pubkey(),
                    &token_ix::grid_mint(),
                    1_000_000_000,
                ),
            ],
            [&b.owner],
        ));
    }
    let jobs: Vec<Job<'_>> = delegations
        .iter()
        .map(|(_, ixs, signers)| Job {
            instructions: ixs,
            signers,
            tables: None,
        })
        .collect();
    for ((b, _, _), result) in delegations.iter().zip(
        send_pipelined_signed(
            &mut chain,
            &jobs,
            &[],
            SendPolicy::default(),
            ORDERS_IN_FLIGHT,
        )
        .await,
    ) {
        result.map_err(|e| anyhow!("{}: delegation: {}", b.code, e.reason()))?;
    }

    // The simulated meters.
    let ca = CertificateDer::from_pem_file(pki.layout.ca_cert()).context("CA certificate")?;
    let place = Place::new(&config.site)?;
    let mut models = Vec::new();
    let mut meters = Vec::new();
    let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(
        simulator::client::DEFAULT_MAX_HANDSHAKES,
    ));
    let connections = args
        .meter_connections
        .map(|n| std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1))));
    for (i, b) in config.buildings.iter().enumerate() {
        let layout = &pki.layout;
        let cert = CertificateDer::from_pem_file(layout.meter_cert(&b.code))?;
        let key = PrivateKeyDer::from_pem_file(layout.meter_key(&b.code))?;
        let lfdi = sdk::identity::lfdi_hex(&sdk::identity::lfdi_from_certificate(&cert));
        let client = MeterClient::new(
            client_config(ca.clone(), cert, key, Suites::Default)?,
            running.meters_addr,
        )
        .with_handshake_limit(handshakes.clone());
        let client = match &connections {
            Some(limit) => client.with_connection_limit(limit.clone()),
            None => client,
        };
        let mut model = BuildingModel::new(b, i, args.seed, &place);
        model.model_offset_s = args.model_offset_s;
        models.push(model);
        meters.push(SimulatedMeter::new(&b.code, &lfdi, client));
    }
    // Each building's EMS beside its meter (its own connection, same certificate): all
    // answer demand response; the EMS buildings also trade through flow reservations.
    let mut emss = Vec::new();
    for (i, (b, building)) in config.buildings.iter().zip(&buildings).enumerate() {
        let layout = &pki.layout;
        let cert = CertificateDer::from_pem_file(layout.meter_cert(&b.code))?;
        let key = PrivateKeyDer::from_pem_file(layout.meter_key(&b.code))?;
        let lfdi = sdk::identity::lfdi_hex(&sdk::identity::lfdi_from_certificate(&cert));
        let client = MeterClient::new(
            client_config(ca.clone(), cert, key, Suites::Default)?,
            running.meters_addr,
        )
        .with_handshake_limit(handshakes.clone());
        let client = match &connections {
            Some(limit) => client.with_connection_limit(limit.clone()),
            None => client,
        };
        let capacity = b
            .capacity()
            .ok_or_else(|| anyhow!("{}: capacity overflows", b.code))?;
        emss.push(simulator::ems::Ems::new(
            &b.code,
            u16::try_from(i)?,
            &lfdi,
            client,
            building.agent.bid,
            building.agent.ask,
            capacity.max_import_w,
            capacity.max_export_w(),
            models[i].peak_load_w,
        ));
    }
    for (ems, b) in emss.iter_mut().zip(&buildings) {
        if b.ems {
            ems.set_price_limits().await?;
        }
    }
    let mut sim = SimCampus { models, meters };
    if real_time {
        // The first whole interval after the set-up.
        let now = chain.clock().await?.unix_timestamp;
        start = now - now.rem_euclid(interval_s) + interval_s;
    }
    let first_interval = ((start - market_start) / interval_s) as u64;
    chain.advance_to(start).await?;
    sim.connect(start, args.post_rate).await?;

    let mut keeper = Keeper::new(
        Some(BridgeClient::new(
            running.keeper_addr,
            running.keeper_token.clone(),
        )),
        buildings.iter().map(|b| b.lfdi).collect(),
    );
    keeper.policy.give_up_after = Duration::from_secs(30);
    keeper.flows.delegate = Some(delegate.insecure_clone());
    let operator = BridgeConfig {
        keeper_listen: running.keeper_addr,
        ..bridge_config.clone()
    };
    // Demand response half-way through the day: every building asked to shed 20 % of its
    // load for one interval.
    // (It covers the interval after `dr_at`, and its completion is answered at the start
    // of the one after that, within the day.)
    let dr_at = (intervals >= 3).then(|| intervals / 2 - 1);
    let mut dr_event: Option<keeper_protocol::market::DrEvent> = None;
    // The flow reservations made, by request mRID: (building, signed Wh).
    let mut reserved: std::collections::BTreeMap<String, (usize, i64)> = Default::default();

    say!(
        args.verbose,
        "[4/6] the day on the {}: {} {} intervals from {} {}, meters posting every {} s",
        chain.name(),
        intervals,
        interval_name(args.interval_s),
        fmt_time(clock.local(start)),
        zone_label(&clock, start),
        args.post_rate
    );
    // The console's reader: building codes from the PKI, the bridge's keeper interface.
    let mut console = args.console.clone().map(|publisher| {
        let names = pki
            .meters
            .iter()
            .map(|m| (m.lfdi, m.code.clone()))
            .collect();
        let bridge = BridgeClient::new(running.keeper_addr, running.keeper_token.clone());
        (
            console::Collector::new(names, 2 * interval_s, Some(bridge))
                .with_time_zone(&config.site.time_zone),
            publisher,
        )
    });
    if console.is_some() {
        publish_console(&mut console, &mut chain).await;
        say!(
            args.verbose,
            "      console: the campus page is updated after every keeper pass"
        );
    }
    let mut results = vec![IntervalResult::default(); intervals as usize];
    let wall = std::time::Instant::now();
    // From the last POST of an interval (answered 204) to its batch confirmed on chain.
    let mut latencies: Vec<Duration> = Vec::new();
    let mut posted: Option<std::time::Instant> = None;
    // The keeper's own CPU time (its polls) and each interval's wall time.
    let mut keeper_cpu = Duration::ZERO;
    let mut interval_walls: Vec<Duration> = Vec::new();
    let mut interval_began = std::time::Instant::now();
    // The oracle's upgrade (slot), and the readings on chain and GRID minted then.
    let mut upgraded: Option<(u64, u64, u64)> = None;
    for k in 0..=intervals {
        let t1 = start + (k as i64 + 1) * interval_s;
        if k < intervals {
            // Demand response: each EMS reads the campus's events and sheds what is asked.
            if dr_at == Some(k) {
                let request = keeper_protocol::market::DrEventRequest {
                    start: t1,
                    duration_s: args.interval_s,
                    description: "Campus peak".into(),
                    duty_cycle_pct: None,
                    reduce_percent: Some(20),
                    reduce_kw: None,
                    mandatory: false,
                };
                dr_event = Some(bridge::admin::dr_issue(&operator, &request).await?);
            }
            if dr_event.is_some() {
                for (ems, model) in emss.iter_mut().zip(sim.models.iter_mut()) {
                    model.load_shed = ems.demand_response(t1 - interval_s).await?;
                }
            }
            // The interval's readings, posted over mutual TLS and attested at its end.
            chain.advance_to(t1).await?;
            sim.advance(t1 - interval_s, t1, args.post_rate, None)
                .await?;
            posted = Some(std::time::Instant::now());
            running.attestor.attest_round(t1)?;
        } else {
            // After the last interval: only clear and settle its auction.
            chain.advance_to(t1).await?;
        }
        let progress = Metered::new(keeper.tick(&mut chain), &mut keeper_cpu).await?;
        publish_console(&mut console, &mut chain).await;
        if let Some(history) = &args.history {
            let bridge = BridgeClient::new(running.keeper_addr, running.keeper_token.clone());
            (history.0)(bridge, k).await.context("the history export")?;
        }
        if let (Some(posted), Some(confirmed)) = (posted.take(), progress.last_batch_confirmed) {
            latencies.push(confirmed.duration_since(posted));
        }
        book_fills(&progress.settlements, &mut buildings);
        for c in &progress.clearings {
            if let Some(r) = c
                .interval
                .checked_sub(first_interval)
                .and_then(|i| results.get_mut(i as usize))
            {
                r.price = c.price;
                r.volume_wh = c.volume_wh;
            }
        }
        if k == intervals {
            break;
        }
        // Forecast from the interval just measured, and orders for the next one.
        for (b, model) in buildings.iter_mut().zip(&sim.models) {
            let now = model.registers();
            b.net_wh = (now.export_wh - b.last.export_wh) as i64
                - (now.import_wh - b.last.import_wh) as i64;
            b.last = now;
        }
        // The interval starting now has closed its gate (and is cleared): orders go to the
        // one after, or (on a cluster, when this interval's work ran late) to the first whose
        // gate is still open, with a margin for the orders to land.
        let mut target = k + 2;
        if real_time {
            let now = chain.clock().await?.unix_timestamp;
            let gate = |t: u64| {
                market_start + (first_interval + t) as i64 * interval_s - i64::from(gate_lead_s)
            };
            while target < intervals && gate(target) - ORDER_MARGIN_S <= now {
                target += 1;
            }
            if target > k + 2 {
                say!(args.verbose,
                    "      interval {} ran late: the agents' orders go to interval {} instead of {}",
                    k + 1, target + 1, k + 3);
            }
        }
        if target < intervals && results[target as usize].buys + results[target as usize].sells == 0
        {
            let (buys, sells) =
                place_orders(&mut chain, &buildings, &quote_mint, first_interval + target).await?;
            results[target as usize].buys = buys;
            results[target as usize].sells = sells;
            // The EMS buildings reserve their forecast over IEEE 2030.5 (when the campus's
            // price suits them), and the keeper places the requests at once, as its next
            // pass would.
            let t_start = market_start + (first_interval + target) as i64 * interval_s;
            let now = chain.clock().await?.unix_timestamp;
            for (i, (ems, b)) in emss.iter_mut().zip(&buildings).enumerate() {
                if !b.ems {
                    continue;
                }
                if let Some(r) = ems.reserve(t_start, args.interval_s, b.net_wh, now).await? {
                    results[target as usize].reservations += 1;
                    reserved.insert(r.mrid, (i, r.energy_wh));
                }
            }
            let registry = keeper.refresh_meters(&mut chain).await?;
            let mut carried = keeper::Progress::default();
            keeper
                .carry_flows(&mut chain, &registry, &mut carried)
                .await?;
        }
        if let Some(build) = args.rpc.as_ref().and_then(|r| r.upgrade_oracle.as_ref()) {
            if k + 1 == intervals / 2 {
                let at = upgrade_oracle(
                    &mut chain,
                    &plan.council_signers,
                    build,
                    timelock,
                    args.verbose,
                )
                .await?;
                upgraded = Some((
                    at,
                    keeper.status.readings_submitted,
                    keeper.status.grid_minted_wh,
                ));
            }
        }
        results[k as usize].start = t1 - interval_s;
        interval_walls.push(interval_began.elapsed());
        interval_began = std::time::Instant::now();
        if (k + 1) % 8 == 0 || k + 1 == intervals || real_time {
            let minted = keeper.status.grid_minted_wh;
            say!(args.verbose,
                "  {} {}  {:>3}/{} intervals  {:>5} readings on chain  {:>8} kWh GRID minted  {:>3} auctions cleared  ({:.0} s)",
                fmt_time(clock.local(t1)),
                zone_label(&clock, t1),
                k + 1,
                intervals,
                keeper.status.readings_submitted,
                kwh(minted),
                keeper.status.intervals_cleared,
                wall.elapsed().as_secs_f64()
            );
        }
    }

    // The report.
    say!(args.verbose, "[5/6] campus report");
    let end = start + intervals as i64 * interval_s;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "GridTokenX campus day: {} on the {}, from {} {} to {} {} {} ({} buildings, seed {})\n",
        config.name,
        chain.name(),
        fmt_date(clock.local(start)),
        fmt_time(clock.local(start)),
        fmt_date(clock.local(end)),
        fmt_time(clock.local(end)),
        zone_label(&clock, end),
        buildings.len(),
        args.seed
    );
    let _ = writeln!(
        text,
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10}",
        "bldg",
        "gen kWh",
        "used kWh",
        "export",
        "import",
        "GRID kWh",
        "bought",
        "sold",
        "paid",
        "received"
    );
    let mut all_ok = true;
    let mut checks = Vec::new();
    let mut totals = [0u64; 6];
    let mut verified_export_wh = 0;
    for (b, model) in buildings.iter().zip(&sim.models) {
        let r = model.registers();
        let state = chain
            .account(oracle_ix::meter_state_address(&b.lfdi))
            .await?
            .and_then(|a| zero_copy::<oracle::MeterState>(&a))
            .ok_or_else(|| anyhow!("{}: no meter state", b.code))?;
        let ledger = chain
            .account(token_ix::ledger_address(&b.lfdi))
            .await?
            .and_then(|a| zero_copy::<energy_token::MeterLedger>(&a))
            .ok_or_else(|| anyhow!("{}: no ledger", b.code))?;
        let _ = writeln!(
            text,
            "{:<8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10}",
            b.code,
            kwh(r.generated_wh),
            kwh(r.consumed_wh),
            kwh(r.export_wh),
            kwh(r.import_wh),
            kwh(ledger.grid_minted_wh),
            kwh(b.bought_wh),
            kwh(b.sold_wh),
            credits(b.paid),
            credits(b.received)
        );
        verified_export_wh += state.verified_export_wh;
        totals[0] += r.generated_wh;
        totals[1] += r.consumed_wh;
        totals[2] += ledger.grid_minted_wh;
        totals[3] += b.bought_wh;
        totals[4] += b.sold_wh;
        totals[5] += b.paid;
        // The chain's registers are the meter's last posted registers; GRID is exactly the
        // export verified since the first (baseline) reading.
        if state.export_wh != r.export_wh || state.import_wh != r.import_wh {
            all_ok = false;
            checks.push(format!(
                "{}: chain registers {}/{} Wh, meter {}/{} Wh",
                b.code, state.import_wh, state.export_wh, r.import_wh, r.export_wh
            ));
        }
        if ledger.grid_minted_wh != state.verified_export_wh {
            all_ok = false;
            checks.push(format!(
                "{}: minted {} Wh, verified export {} Wh",
                b.code, ledger.grid_minted_wh, state.verified_export_wh
            ));
        }
    }
    let _ = writeln!(
        text,
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>10}",
        "total",
        kwh(totals[0]),
        kwh(totals[1]),
        "",
        "",
        kwh(totals[2]),
        kwh(totals[3]),
        kwh(totals[4]),
        credits(totals[5])
    );
    let _ = writeln!(
        text,
        "\ninterval ({})  price/kWh  volume kWh  buys  sells  2030.5",
        zone_label(&clock, start)
    );
    for r in &results {
        let _ = writeln!(
            text,
            "{}        {:>9}  {:>10}  {:>4}  {:>5}  {:>6}",
            fmt_time(clock.local(r.start)),
            if r.volume_wh > 0 {
                credits(r.price)
            } else {
                "-".into()
            },
            kwh(r.volume_wh),
            r.buys,
            r.sells,
            r.reservations
        );
    }
    // Market conservation: the vaults hold exactly what the market owes (every order
    // cleared, settled and swept: the rounding dust and the fees).
    let market = chain
        .account(market_ix::market_address())
        .await?
        .and_then(|a| zero_copy::<trading::Market>(&a))
        .ok_or_else(|| anyhow!("no market"))?;
    let base_vault = token_balance(&mut chain, market_ix::base_vault()).await?;
    let quote_vault = token_balance(&mut chain, market_ix::quote_vault()).await?;
    let (base_owed, quote_owed) = market_owed(&mut chain, &market).await?;
    if i128::from(base_vault) != base_owed || i128::from(quote_vault) != quote_owed {
        all_ok = false;
        checks.push(format!(
            "market: GRID vault {base_vault} vs owed {base_owed}; quote vault {quote_vault} vs owed {quote_owed}"
        ));
    }
    // Buyers receive what sellers delivered, less the rounding of marginal orders (under
    // 1 Wh each), which the market keeps as dust.
    if totals[3] > totals[4] || totals[4] - totals[3] != market.dust_wh {
        all_ok = false;
        checks.push(format!(
            "bought {} Wh, sold {} Wh, dust {} Wh",
            totals[3], totals[4], market.dust_wh
        ));
    }
    // The campus went on after the oracle's upgrade: readings applied and GRID minted by
    // the upgraded program.
    if let Some((slot, readings, minted)) = upgraded {
        let (now_readings, now_minted) = (
            keeper.status.readings_submitted,
            keeper.status.grid_minted_wh,
        );
        let _ = writeln!(
            text,
            "\noracle upgraded through the council in slot {slot}; after it: {} readings applied, {} kWh GRID minted",
            now_readings - readings,
            kwh(now_minted - minted)
        );
        if now_readings <= readings || now_minted <= minted {
            all_ok = false;
            checks.push(format!(
                "after the oracle's upgrade: {} readings applied, {} Wh minted",
                now_readings - readings,
                now_minted - minted
            ));
        }
    }
    // IEEE 2030.5: every reservation answered at its building's /frp with what its order
    // filled, which is what settlement credited the building.
    let mut answers = 0u64;
    let mut filled_wh = 0u64;
    let mut rejected: std::collections::BTreeMap<String, u64> = Default::default();
    let mut answered_by_building = vec![0u64; buildings.len()];
    for (i, ems) in emss.iter_mut().enumerate() {
        if !buildings[i].ems {
            continue;
        }
        for a in ems.answers().await? {
            let Some((building, _)) = reserved.get(&a.subject) else {
                all_ok = false;
                checks.push(format!(
                    "{}: an answer to no request of its own ({})",
                    ems.code, a.subject
                ));
                continue;
            };
            answers += 1;
            filled_wh += a.energy_wh.unsigned_abs();
            answered_by_building[*building] += a.energy_wh.unsigned_abs();
            if a.status == sep2::market::EVENT_CANCELLED {
                *rejected.entry(a.reason.unwrap_or_default()).or_default() += 1;
            }
        }
    }
    for (b, answered) in buildings.iter().zip(&answered_by_building) {
        if b.ems && *answered != b.bought_wh + b.sold_wh {
            all_ok = false;
            checks.push(format!(
                "{}: its FlowReservationResponses say {} Wh filled, settlement {} Wh",
                b.code,
                answered,
                b.bought_wh + b.sold_wh
            ));
        }
    }
    let ems_count = buildings.iter().filter(|b| b.ems).count();
    let _ = writeln!(
        text,
        "\nIEEE 2030.5: {} flow reservations by {} buildings' EMSs ({} placed by the order delegate {}); {} answered at /edev/{{i}}/frp, {} kWh filled = what settlement credited them{}",
        reserved.len(),
        ems_count,
        keeper.flows.placed,
        delegate.pubkey(),
        answers,
        kwh(filled_wh),
        if rejected.is_empty() {
            String::new()
        } else {
            format!(
                "; not placed: {}",
                rejected
                    .iter()
                    .map(|(why, n)| format!("{n} x {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    );
    if answers != reserved.len() as u64 {
        all_ok = false;
        checks.push(format!(
            "{} flow reservations, {} answered",
            reserved.len(),
            answers
        ));
    }
    let shed_wh: u64 = sim.models.iter().map(|m| m.shed_wh()).sum();
    let dr_responses: u64 = emss.iter().map(|e| e.responses_posted).sum();
    if let Some(e) = &dr_event {
        let _ = writeln!(
            text,
            "demand response: event {} ({}: shed 20 % from {} for {} min) answered by {} of {} buildings with {} responses (received, started, completed); {} kWh of load shed",
            e.id,
            e.request.description,
            fmt_time(clock.local(e.request.start)),
            e.request.duration_s / 60,
            emss.iter().filter(|x| x.responses_posted >= 3).count(),
            emss.len(),
            dr_responses,
            kwh(shed_wh)
        );
        if emss.iter().any(|x| x.responses_posted < 3) || shed_wh == 0 {
            all_ok = false;
            checks.push(format!(
                "demand response: {dr_responses} responses, {shed_wh} Wh shed"
            ));
        }
    }
    let status = keeper.status.clone();
    let _ = writeln!(
        text,
        "\nkeeper: {} batches ({} readings) applied, {} transactions (largest {} bytes), {} kWh GRID and {} RECs issued, {} auctions cleared, {} orders settled, {} balances swept, {} failures",
        status.batches_applied,
        status.readings_submitted,
        status.transactions,
        status.largest_transaction,
        kwh(status.grid_minted_wh),
        status.recs_issued,
        status.intervals_cleared,
        status.orders_settled,
        status.balances_swept,
        status.failures.len()
    );
    for f in &status.failures {
        let _ = writeln!(text, "  failure: {}: {}", f.what, f.reason);
    }
    latencies.sort();
    if let (Some(first), Some(last)) = (latencies.first(), latencies.last()) {
        let _ = writeln!(
            text,
            "POST to confirmed: median {} ms, min {} ms, max {} ms over {} intervals ({} readings per transaction; attested at once, a deployed bridge adds up to its attest_interval_s and the keeper its tick_interval_s)",
            latencies[latencies.len() / 2].as_millis(),
            first.as_millis(),
            last.as_millis(),
            latencies.len(),
            status.readings_submitted.checked_div(status.batches_applied).unwrap_or(0),
        );
        let _ = writeln!(
            text,
            "transactions per interval: {:.1} ({} in {} intervals, including minting, clearing, payouts and book closing)",
            status.transactions as f64 / intervals.max(1) as f64,
            status.transactions,
            intervals
        );
    }
    if let Some(slowest) = interval_walls.iter().max() {
        let total: Duration = interval_walls.iter().sum();
        let _ = writeln!(
            text,
            "wall time per interval: mean {:.1} s, slowest {:.1} s (posting, attesting, the keeper's pass and the next orders)",
            total.as_secs_f64() / interval_walls.len() as f64,
            slowest.as_secs_f64(),
        );
    }
    let (_, keeper_heap_peak) = crate::metering::heap();
    let _ = writeln!(
        text,
        "keeper: {:.2} s of CPU in its own polls ({:.2} s per interval){} (the chain's execution and the keeper's HTTP connection task not included)",
        keeper_cpu.as_secs_f64(),
        keeper_cpu.as_secs_f64() / intervals.max(1) as f64,
        if keeper_heap_peak > 0 {
            format!(", heap held at most {:.1} MB", keeper_heap_peak as f64 / 1e6)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        text,
        "market fees: {} credits; checks: {}",
        credits(market.fees),
        if all_ok {
            "chain registers = meter registers, GRID minted = verified export, vaults = balances + escrow + fees + dust: ok".to_string()
        } else {
            checks.join("; ")
        }
    );
    if args.verbose {
        print!("{text}");
    }
    let report_path = args.out.join("campus-day.txt");
    let chart_path = args.out.join("campus-day.svg");
    std::fs::write(&report_path, &text)?;
    std::fs::write(&chart_path, chart_svg(&results, args.interval_s, &clock))?;
    say!(
        args.verbose,
        "[6/6] written {} and {}",
        report_path.display(),
        chart_path.display()
    );
    if let Some(history) = &args.history {
        let bridge = BridgeClient::new(running.keeper_addr, running.keeper_token.clone());
        (history.0)(bridge, u64::MAX)
            .await
            .context("the history export")?;
    }
    running.shutdown().await;
    let exported_wh = sim.models.iter().map(|m| m.registers().export_wh).sum();
    Ok((
        DayReport {
            text,
            checks_ok: all_ok,
            failures: checks,
            readings_on_chain: status.readings_submitted,
            grid_minted_wh: status.grid_minted_wh,
            verified_export_wh,
            exported_wh,
            traded_wh: totals[4],
            intervals_cleared: status.intervals_cleared,
            keeper_failures: status.failures.len(),
            flow_reservations: reserved.len() as u64,
            flow_answers: answers,
            flow_filled_wh: filled_wh,
            dr_events: u64::from(dr_event.is_some()),
            dr_responses,
            shed_wh,
        },
        chain,
    ))
}

/// The campus zone's name at `t` for the report: its abbreviation ("PDT"), or the offset
/// from UTC where the zone has none ("UTC+07").
fn zone_label(clock: &CampusTime, t: i64) -> String {
    let abbreviation = clock.abbreviation(t);
    if abbreviation.starts_with(['+', '-']) {
        format!("UTC{abbreviation}")
    } else {
        abbreviation
    }
}

/// `t`'s date, YYYY-MM-DD (the civil calendar from days since 1970: UTC, or campus time when
/// given `CampusTime::local`).
pub fn fmt_date(t: i64) -> String {
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn fmt_time(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, (secs % 3600) / 60)
}

/// Upgrades the oracle to `build` through the council while the campus runs, as the energy
/// office would: the deploy wallet alone is refused first; then anyone writes a buffer and
/// hands it to the council, a member proposes the upgrade, the members approve, the timelock
/// passes and the proposal executes (governance invokes the loader). Returns the slot of
/// the upgrade, checked in the program's accounts.
async fn upgrade_oracle<C: DayChain>(
    chain: &mut C,
    members: &[Keypair],
    build: &std::path::Path,
    timelock: u32,
    verbose: bool,
) -> Result<u64> {
    use cli::council::{self, Action};
    use sdk::loader::{self, ProgramState};
    let began = std::time::Instant::now();
    let elf = std::fs::read(build).with_context(|| format!("{}", build.display()))?;
    let before = match loader::program_state(chain, &oracle::ID).await? {
        ProgramState::Deployed(d) => d,
        other => bail!("the oracle is not a program of the upgradeable loader here: {other:?}"),
    };
    if before.upgrade_authority != Some(loader::council_upgrade_authority()) {
        bail!(
            "the council does not hold the oracle's upgrade authority: {:?}",
            before.upgrade_authority
        );
    }
    // The wallet that deployed it can no longer take the program back.
    let payer = chain.payer_key();
    let take_back = solana_loader_v3_interface::instruction::set_upgrade_authority(
        &oracle::ID,
        &payer,
        Some(&payer),
    );
    match sdk::chain::send_and_confirm(
        chain,
        &[take_back],
        &[],
        &[],
        sdk::chain::SendPolicy::default(),
    )
    .await
    {
        Err(e) if e.is_program_refusal() => {}
        other => {
            bail!("the deploy wallet's own set-authority on the oracle was not refused: {other:?}")
        }
    }
    let buffer = Keypair::new();
    let written = council::write_buffer(chain, oracle::ID, &elf, &buffer).await?;
    let action = Action::Upgrade {
        program: oracle::ID,
        buffer: buffer.pubkey(),
        spill: payer,
    };
    let index = council::propose(chain, &members[0], &action).await?;
    for m in members {
        council::vote(chain, m, index, true).await?;
    }
    let p = council::proposals(chain, false)
        .await?
        .into_iter()
        .find(|p| p.index == index)
        .ok_or_else(|| anyhow!("proposal {index} vanished"))?;
    let now = chain.clock().await?.unix_timestamp;
    chain.advance_to(p.executable_at.max(now) + 1).await?;
    council::execute(chain, &members[0], index).await?;
    let after = match loader::program_state(chain, &oracle::ID).await? {
        ProgramState::Deployed(d) => d,
        other => bail!("the oracle after its upgrade: {other:?}"),
    };
    if !after.holds(&elf) || after.slot <= before.slot {
        bail!(
            "the oracle's upgrade did not take: slot {} (was {}), holds the build: {}",
            after.slot,
            before.slot,
            after.holds(&elf)
        );
    }
    say!(verbose,
        "      oracle upgraded through the council: buffer {} ({} bytes, sha256 {}, {} transactions), proposal {index} approved by {} members, {} s timelock, executed in slot {} ({:.0} s in all)",
        written.buffer, written.bytes, written.sha256, written.transactions, members.len(), timelock, after.slot, began.elapsed().as_secs_f64()
    );
    Ok(after.slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(fmt_date(0), "1970-01-01");
        assert_eq!(fmt_date(951_782_400), "2000-02-29");
        assert_eq!(fmt_date(1_795_392_000), "2026-11-23");
        assert_eq!(fmt_time(1_795_392_000 + 13 * 3600 + 45 * 60), "13:45");
    }

    /// Whatever the date, the tests model a clear day near the solstice on the same weekday
    /// (2026-12-03 drew a cloudy one for the fault test's seed, which exported nothing), at
    /// the time asked on the campus's own clock: for the repository's campus (Bangkok), for
    /// Stanford (daylight saving) and for one in the southern hemisphere (its summer in
    /// December).
    #[test]
    fn the_tests_model_a_clear_summer_day_on_any_date() {
        let first = 1_767_225_600; // 2026-01-01
        let repository = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
        assert_eq!(repository.site.time_zone, "Asia/Bangkok");
        let places = [
            (
                repository.site.clone(),
                ["04", "05", "06", "07", "08", "09"],
            ),
            (
                Site {
                    latitude_deg: 37.43,
                    longitude_deg: -122.17,
                    time_zone: "America/Los_Angeles".into(),
                },
                ["04", "05", "06", "07", "08", "09"],
            ),
            (
                Site {
                    latitude_deg: -33.92,
                    longitude_deg: 151.23,
                    time_zone: "Australia/Sydney".into(),
                },
                ["10", "11", "12", "01", "02", "03"],
            ),
        ];
        for (site, months) in &places {
            let place = Place::new(site).unwrap();
            for seed in [7, 11] {
                for d in (0..2 * 366).step_by(3) {
                    let t = first + d * 86_400 + 13 * 3600;
                    let offset = clear_summer_offset_days(&place, t, seed);
                    assert_eq!(offset % 7, 0, "{}", fmt_date(t));
                    assert!((offset - summer_offset_days(site, t)).abs() <= 70);
                    let modelled = t + offset * 86_400;
                    assert!(
                        simulator::profile::clear_day(&place, seed, modelled),
                        "{} seed {seed}",
                        fmt_date(t)
                    );
                    // Within 11 weeks of the solstice (10 of search, half of rounding).
                    let month = fmt_date(modelled)[5..7].to_string();
                    assert!(
                        months.contains(&month.as_str()),
                        "{} -> {}",
                        fmt_date(t),
                        fmt_date(modelled)
                    );
                }
            }
            // On a workday too, at the time asked, on the campus clock.
            for d in 0..2 * 366 {
                let end = first + d * 86_400 + 19 * 3600 + 42 * 60;
                let offset = clear_summer_workday_offset_ending_at(&place, end, 7, 13 * 3600);
                let modelled = end + offset;
                assert_eq!(
                    place.local(modelled).rem_euclid(86_400),
                    13 * 3600,
                    "{} {}",
                    site.time_zone,
                    fmt_date(end)
                );
                assert!(
                    simulator::profile::workday(&place, modelled),
                    "{}",
                    fmt_date(end)
                );
                assert!(
                    simulator::profile::clear_day(&place, 7, modelled),
                    "{}",
                    fmt_date(end)
                );
                // And the sun is up: 13:00 campus time is daytime there.
                assert!(
                    simulator::profile::clear_sky(&place, modelled) > 0.5,
                    "{} {}",
                    site.time_zone,
                    fmt_date(end)
                );
                let month = fmt_date(modelled)[5..7].to_string();
                assert!(
                    months[1..5].contains(&month.as_str()),
                    "{} -> {}",
                    fmt_date(end),
                    fmt_date(modelled)
                );
            }
        }
    }
}
