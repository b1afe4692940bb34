//! The `gridtokenx` command line's functions against the embedded chain: a building
//! manager reads the building's status, places and cancels an order; bad input (an unknown
//! building, another owner's building, a price off the ladder, a closed or too distant
//! interval, an order that is not there) is refused before anything is sent, naming the fix.
use anchor_lang::prelude::Pubkey;
use certs::{ensure_pki, Layout};
use cli::{Buildings, OrderRequest};
use gridtokenx_tests::embedded::EmbeddedChain;
use gridtokenx_tests::fault::{campus_plan, Terms};
use oracle::ReadingLimits;
use sdk::chain::{send_and_confirm, Chain, SendPolicy};
use sdk::ix::{energy_token as token_ix, trading as market_ix};
use sdk::CampusConfig;
use solana_signer::Signer;
use trading::Side;

const FUNDS: u64 = 5_000_000;

/// A migrated campus on the embedded chain (timelock 2 s), ENG's owner holding quote
/// tokens, and the buildings as the command line reads them.
struct Fixture {
    dir: tempfile::TempDir,
    chain: EmbeddedChain,
    plan: migrations::Plan<'static>,
    buildings: Buildings,
    now: i64,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config: &'static CampusConfig = Box::leak(Box::new(
        CampusConfig::load(&CampusConfig::in_repository()).unwrap(),
    ));
    let pki = ensure_pki(&Layout::new(dir.path().join("pki")), config).unwrap();
    let mut chain = EmbeddedChain::start().await;
    let now = bridge::server::now();
    let setup_at = now - now % 900 - 7_200;
    chain.set_time(setup_at).await.unwrap();
    let terms = Terms {
        limits: ReadingLimits {
            max_future_skew_s: 60,
            min_interval_s: 60,
            max_age_s: 86_400,
            tolerance_bps: 1_000,
        },
        interval_s: 900,
        timelock_seconds: 2,
        market_start: setup_at,
    };
    let plan = campus_plan(&mut chain, config, &pki, Pubkey::new_unique(), terms)
        .await
        .unwrap();
    migrations::apply(&mut chain, &plan).await.unwrap();
    chain.set_time(now).await.unwrap();
    migrations::apply(&mut chain, &plan).await.unwrap();
    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let payer = chain.payer_key();
    let fund = spl_token_interface::instruction::mint_to(
        &anchor_spl::token::ID,
        &plan.quote_mint,
        &token_ix::ata(&eng.owner.pubkey(), &plan.quote_mint),
        &payer,
        &[],
        FUNDS,
    )
    .unwrap();
    send_and_confirm(&mut chain, &[fund], &[], &[], SendPolicy::default())
        .await
        .unwrap();
    let buildings =
        Buildings::load(&CampusConfig::in_repository(), &dir.path().join("pki")).unwrap();
    Fixture {
        dir,
        chain,
        plan,
        buildings,
        now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_building_manager_reads_the_status_and_places_and_cancels_an_order() {
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        ..
    } = fixture().await;
    let config = plan.campus;
    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let phys = plan.meters.iter().find(|m| m.code == "PHYS").unwrap();

    let err = buildings.lfdi("NOPE").unwrap_err();
    assert!(
        format!("{err:#}").contains("unknown building \"NOPE\": the campus has ENG, PHYS"),
        "{err:#}"
    );
    let (code, lfdi) = buildings.lfdi("ENG").unwrap();
    assert_eq!(lfdi, eng.lfdi);
    assert_eq!(
        buildings.lfdi(&sdk::identity::lfdi_hex(&lfdi)).unwrap().0,
        "ENG"
    );
    let status = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert_eq!(status.owner, eng.owner.pubkey().to_string());
    assert_eq!(status.meter_status, "Active");
    assert_eq!(status.quote, FUNDS);
    assert!(status.open_orders.is_empty());

    let params = config.market.params().unwrap();
    let price = params.min_price + 10 * params.price_tick;
    let buy = OrderRequest {
        side: Side::Buy,
        quantity_wh: 2_000,
        limit_price: price,
        interval: None,
    };
    let refused = |e: anyhow::Error| format!("{e:#}");
    // Another owner's building.
    let err = cli::place(&mut chain, &phys.owner, &code, &lfdi, buy)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(
        err.contains("building ENG's orders are signed by its owner"),
        "{err}"
    );
    // A price off the ladder, and the nearest named.
    let off = OrderRequest {
        limit_price: price + params.price_tick / 2,
        ..buy
    };
    let err = cli::place(&mut chain, &eng.owner, &code, &lfdi, off)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(
        err.contains("is not on the market's ladder")
            && err.contains(&format!(
                "nearest: {price} or {}",
                price + params.price_tick
            )),
        "{err}"
    );
    // An interval whose gate has closed, and one beyond the horizon.
    let err = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        OrderRequest {
            interval: Some(0),
            ..buy
        },
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(
        err.contains("gate has closed: the next open interval is"),
        "{err}"
    );
    let err = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        OrderRequest {
            interval: Some(10_000),
            ..buy
        },
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains("beyond the market's horizon"), "{err}");
    // Nothing was sent.
    let status = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert!(status.open_orders.is_empty());
    assert_eq!(status.quote, FUNDS);

    // The order: placed in the next open interval, its escrow locked.
    let placed = cli::place(&mut chain, &eng.owner, &code, &lfdi, buy)
        .await
        .unwrap();
    let status = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert_eq!(status.open_orders.len(), 1, "{status:?}");
    let order = &status.open_orders[0];
    assert_eq!(
        (
            order.interval,
            order.side.as_str(),
            order.quantity_wh,
            order.limit_price
        ),
        (placed.interval, "buy", 2_000, price)
    );
    assert!(order.escrow > 0);
    assert_eq!(status.quote, FUNDS - order.escrow);
    assert!(chain
        .account(market_ix::order_address(placed.interval, &lfdi, Side::Buy))
        .await
        .unwrap()
        .is_some());

    // Cancelled by another key: refused; by the owner: the escrow back.
    let err = cli::cancel(
        &mut chain,
        &phys.owner,
        &code,
        &lfdi,
        placed.interval,
        Side::Buy,
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains("give that keypair with --keypair"), "{err}");
    cli::cancel(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        placed.interval,
        Side::Buy,
    )
    .await
    .unwrap();
    let status = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert!(status.open_orders.is_empty());
    assert_eq!(status.quote, FUNDS);
    let err = cli::cancel(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        placed.interval,
        Side::Buy,
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains("has no buy order in interval"), "{err}");
}

/// The council pauses the market through a proposal (propose, two approvals, the
/// timelock, execute) and the building's order is refused meanwhile; each step out of
/// turn is refused first, naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_council_pauses_the_market_by_proposal_and_orders_wait() {
    use cli::council::{self, Action};
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        now,
    } = fixture().await;
    let members = &plan.council_signers;
    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let refused = |e: anyhow::Error| format!("{e:#}");
    let pause = Action::Pause {
        program: council::program_id("trading").unwrap(),
        until: None,
    };
    let err = council::propose(&mut chain, &eng.owner, &pause)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(err.contains("is not a council member"), "{err}");
    assert!(council::program_id("bank").is_err());

    let index = council::propose(&mut chain, &members[0], &pause)
        .await
        .unwrap();
    let open = council::proposals(&mut chain, false).await.unwrap();
    let p = open.iter().find(|p| p.index == index).unwrap();
    assert_eq!(
        (
            p.status.as_str(),
            p.action.as_str(),
            p.approvals,
            p.threshold
        ),
        ("Active", "trading.set_paused", 0, 2)
    );
    let err = council::execute(&mut chain, &members[1], index)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(
        err.contains("it needs 2 approvals first (it has 0)"),
        "{err}"
    );
    council::vote(&mut chain, &members[0], index, true)
        .await
        .unwrap();
    let err = council::vote(&mut chain, &members[0], index, true)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(err.contains("has voted on proposal"), "{err}");
    let approved = council::vote(&mut chain, &members[1], index, true)
        .await
        .unwrap();
    assert_eq!(approved.status, "Approved");
    assert!(approved.executable_at > 0);
    let err = council::execute(&mut chain, &members[1], index)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(err.contains("timelock runs until"), "{err}");
    chain.set_time(now + 3).await.unwrap();
    // Anyone executes an approved proposal.
    council::execute(&mut chain, &eng.owner, index)
        .await
        .unwrap();
    assert!(council::proposals(&mut chain, false)
        .await
        .unwrap()
        .iter()
        .all(|p| p.index != index));
    let all = council::proposals(&mut chain, true).await.unwrap();
    assert_eq!(
        all.iter().find(|p| p.index == index).unwrap().status,
        "Executed"
    );

    // The market is paused: the order is refused before anything is sent.
    let (code, lfdi) = buildings.lfdi("ENG").unwrap();
    let params = plan.campus.market.params().unwrap();
    let buy = OrderRequest {
        side: Side::Buy,
        quantity_wh: 1_000,
        limit_price: params.min_price,
        interval: None,
    };
    let err = cli::place(&mut chain, &eng.owner, &code, &lfdi, buy)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(err.contains("the market is paused"), "{err}");

    // Lifted by another proposal: the order goes through.
    let unpause = Action::Unpause {
        program: trading::ID,
    };
    let index = council::propose(&mut chain, &members[1], &unpause)
        .await
        .unwrap();
    for m in members {
        council::vote(&mut chain, m, index, true).await.unwrap();
    }
    chain.set_time(now + 6).await.unwrap();
    council::execute(&mut chain, &members[0], index)
        .await
        .unwrap();
    cli::place(&mut chain, &eng.owner, &code, &lfdi, buy)
        .await
        .unwrap();
    // A suspension proposed for a building names its meter's registry entry.
    let suspend = Action::MeterStatus {
        lfdi,
        active: false,
    };
    assert_eq!(
        sdk::names::instruction(&registry::ID, &suspend.instruction().data),
        Some("set_meter_status")
    );
}

/// Passes `action` through the council: proposed, approved by every member, executed once
/// its timelock (`wait` seconds) has passed; `at` is moved on past it.
async fn through_the_council(
    chain: &mut EmbeddedChain,
    members: &[solana_keypair::Keypair],
    action: &cli::council::Action,
    at: &mut i64,
    wait: i64,
) {
    let index = cli::council::propose(chain, &members[0], action)
        .await
        .unwrap();
    for m in members {
        cli::council::vote(chain, m, index, true).await.unwrap();
    }
    *at += wait + 1;
    chain.set_time(*at).await.unwrap();
    cli::council::execute(chain, &members[0], index)
        .await
        .unwrap();
}

/// Every other action the command line proposes executes through the council and changes
/// what it says; values the program would refuse are refused before proposing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_attestors_limits_market_and_council_change_through_proposals() {
    use cli::council::{self, Action};
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        now,
    } = fixture().await;
    let members = &plan.council_signers;
    let mut at = now;
    let lfdi = buildings.lfdi("ENG").unwrap().1;

    let mut capacity = council::current_capacity(&mut chain, &lfdi).await.unwrap();
    capacity.generation_w += 1_000;
    through_the_council(
        &mut chain,
        members,
        &Action::Capacity { lfdi, capacity },
        &mut at,
        2,
    )
    .await;
    assert_eq!(
        council::current_capacity(&mut chain, &lfdi).await.unwrap(),
        capacity
    );

    let (a, b) = (Pubkey::new_unique(), Pubkey::new_unique());
    let err = council::propose(
        &mut chain,
        &members[0],
        &Action::Attestors {
            attestors: vec![a],
            quorum: 2,
        },
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("the program would refuse these values"),
        "{err:#}"
    );
    through_the_council(
        &mut chain,
        members,
        &Action::Attestors {
            attestors: vec![a, b],
            quorum: 1,
        },
        &mut at,
        2,
    )
    .await;
    let config = chain
        .account(sdk::ix::oracle::config_address())
        .await
        .unwrap()
        .and_then(|acc| sdk::accounts::zero_copy::<oracle::OracleConfig>(&acc))
        .unwrap();
    assert_eq!(
        (&config.attestors[..2], config.attestor_count, config.quorum),
        (&[a, b][..], 2, 1)
    );

    let mut limits = council::current_limits(&mut chain).await.unwrap();
    limits.tolerance_bps = 1_500;
    through_the_council(&mut chain, members, &Action::Limits(limits), &mut at, 2).await;
    assert_eq!(council::current_limits(&mut chain).await.unwrap(), limits);

    let mut params = council::current_market_params(&mut chain).await.unwrap();
    params.fee_bps += 10;
    through_the_council(
        &mut chain,
        members,
        &Action::MarketParams(params),
        &mut at,
        2,
    )
    .await;
    assert_eq!(
        council::current_market_params(&mut chain).await.unwrap(),
        params
    );

    let mut config = council::current_council(&mut chain).await.unwrap();
    config.timelock_seconds = 5;
    through_the_council(
        &mut chain,
        members,
        &Action::Council(config.clone()),
        &mut at,
        2,
    )
    .await;
    assert_eq!(council::current_council(&mut chain).await.unwrap(), config);
    assert_eq!(
        council::parse_key(&a.to_string()).unwrap(),
        council::parse_key(&{
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(a.to_bytes())
        })
        .unwrap()
    );
    assert!(council::parse_key("nope").is_err());
}

/// Sets an SPL token account's amount, and its mint's supply with it (the owner's GRID or
/// RECs: the test skips the metering that mints them; what follows is the programs').
async fn give_tokens(chain: &mut EmbeddedChain, owner: &Pubkey, mint: &Pubkey, amount: u64) {
    let address = token_ix::ata(owner, mint);
    if chain.account(address).await.unwrap().is_none() {
        let create = token_ix::create_ata(&chain.payer_key(), owner, mint);
        send_and_confirm(chain, &[create], &[], &[], SendPolicy::default())
            .await
            .unwrap();
    }
    let mut account = chain.account(address).await.unwrap().unwrap();
    let before = u64::from_le_bytes(account.data[64..72].try_into().unwrap());
    account.data[64..72].copy_from_slice(&amount.to_le_bytes());
    chain.ctx.set_account(&address, &account.into());
    // The mint's supply follows (a burn takes it down again).
    let mut mint_account = chain.account(*mint).await.unwrap().unwrap();
    let supply = u64::from_le_bytes(mint_account.data[36..44].try_into().unwrap());
    let supply = supply - before + amount;
    mint_account.data[36..44].copy_from_slice(&supply.to_le_bytes());
    chain.ctx.set_account(mint, &mint_account.into());
}

/// ENG sells, PHYS buys (its order replaced first); the auction clears and settles; each
/// withdraws what it can claim, and a second withdrawal finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trade_settles_and_each_side_withdraws_what_it_can_claim() {
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        ..
    } = fixture().await;
    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let phys = plan.meters.iter().find(|m| m.code == "PHYS").unwrap();
    give_tokens(
        &mut chain,
        &eng.owner.pubkey(),
        &token_ix::grid_mint(),
        5_000,
    )
    .await;
    give_tokens(&mut chain, &phys.owner.pubkey(), &plan.quote_mint, FUNDS).await;
    let err = cli::withdraw(&mut chain, &eng.owner).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("has nothing to claim"),
        "{err:#}"
    );

    let params = plan.campus.market.params().unwrap();
    let (e, p) = (
        buildings.lfdi("ENG").unwrap(),
        buildings.lfdi("PHYS").unwrap(),
    );
    let sell = OrderRequest {
        side: Side::Sell,
        quantity_wh: 2_000,
        limit_price: params.min_price + 5 * params.price_tick,
        interval: None,
    };
    let placed = cli::place(&mut chain, &eng.owner, &e.0, &e.1, sell)
        .await
        .unwrap();
    let k = placed.interval;
    let buy = OrderRequest {
        side: Side::Buy,
        quantity_wh: 2_000,
        limit_price: params.min_price + 10 * params.price_tick,
        interval: Some(k),
    };
    cli::place(&mut chain, &phys.owner, &p.0, &p.1, buy)
        .await
        .unwrap();
    let err = cli::replace(
        &mut chain,
        &phys.owner,
        &p.0,
        &p.1,
        OrderRequest {
            interval: Some(k + 1),
            ..buy
        },
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("no buy order in interval"),
        "{err:#}"
    );
    cli::replace(
        &mut chain,
        &phys.owner,
        &p.0,
        &p.1,
        OrderRequest {
            quantity_wh: 1_500,
            ..buy
        },
    )
    .await
    .unwrap();
    let status = cli::status(&mut chain, &p.0, &p.1).await.unwrap();
    assert_eq!(status.open_orders.len(), 1);
    assert_eq!(status.open_orders[0].quantity_wh, 1_500);

    // The gate closes; the auction clears (every interval before it first) and settles.
    let market = chain
        .account(market_ix::market_address())
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
        .unwrap();
    chain.set_time(market.gate(k).unwrap() + 1).await.unwrap();
    let intervals: Vec<u64> = (market.next_clear..=k).collect();
    for chunk in intervals.chunks(8) {
        let clears: Vec<_> = chunk
            .iter()
            .map(|j| market_ix::clear_interval(*j))
            .collect();
        send_and_confirm(&mut chain, &clears, &[], &[], SendPolicy::default())
            .await
            .unwrap();
    }
    let settle = market_ix::settle_orders(
        k,
        &[
            (
                market_ix::order_address(k, &e.1, Side::Sell),
                eng.owner.pubkey(),
            ),
            (
                market_ix::order_address(k, &p.1, Side::Buy),
                phys.owner.pubkey(),
            ),
        ],
    );
    send_and_confirm(&mut chain, &[settle], &[], &[], SendPolicy::default())
        .await
        .unwrap();
    let buyer = cli::status(&mut chain, &p.0, &p.1).await.unwrap();
    assert!(buyer.open_orders.is_empty());
    assert_eq!(buyer.claimable_grid_wh, 1_500);
    let seller = cli::status(&mut chain, &e.0, &e.1).await.unwrap();
    assert!(seller.claimable_quote > 0);
    assert_eq!(seller.grid_wh, 5_000 - 2_000);

    let got = cli::withdraw(&mut chain, &phys.owner).await.unwrap();
    assert_eq!(got.grid_wh, 1_500);
    let buyer_after = cli::status(&mut chain, &p.0, &p.1).await.unwrap();
    assert_eq!(buyer_after.grid_wh, 1_500);
    assert_eq!(
        (buyer_after.claimable_grid_wh, buyer_after.claimable_quote),
        (0, 0)
    );
    assert_eq!(buyer_after.quote, buyer.quote + got.quote);
    let got = cli::withdraw(&mut chain, &eng.owner).await.unwrap();
    assert_eq!(got.quote, seller.claimable_quote);
    let seller_after = cli::status(&mut chain, &e.0, &e.1).await.unwrap();
    assert_eq!(seller_after.quote, seller.quote + got.quote);
    // The unsold 500 Wh came back to the seller's claimable balance and now its wallet.
    assert_eq!(seller_after.grid_wh, 5_000 - 1_500);
    assert!(cli::withdraw(&mut chain, &eng.owner).await.is_err());
    // Each side's status lists its fill, from the market's events.
    assert_eq!(
        buyer_after
            .fills
            .iter()
            .map(|f| (f.interval, f.side.as_str(), f.filled_wh))
            .collect::<Vec<_>>(),
        [(k, "buy", 1_500)]
    );
    assert_eq!(
        seller_after
            .fills
            .iter()
            .map(|f| (f.interval, f.side.as_str(), f.filled_wh, f.quote))
            .collect::<Vec<_>>(),
        [(k, "sell", 1_500, seller.claimable_quote)]
    );

    // The book closes and its sellers' fees go to the market; the council pays them out.
    let book = chain
        .account(market_ix::book_address(k))
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::zero_copy::<trading::IntervalBook>(&a))
        .unwrap();
    send_and_confirm(
        &mut chain,
        &[market_ix::close_book(k, book.payer)],
        &[],
        &[],
        SendPolicy::default(),
    )
    .await
    .unwrap();
    let fees = chain
        .account(market_ix::market_address())
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
        .unwrap()
        .fees;
    assert!(fees > 0);
    let members = &plan.council_signers;
    let treasurer = members[0].pubkey();
    give_tokens(&mut chain, &treasurer, &plan.quote_mint, 0).await;
    give_tokens(&mut chain, &treasurer, &token_ix::grid_mint(), 0).await;
    let withdraw = |quote, quote_to| cli::council::Action::WithdrawFees {
        quote,
        grid_wh: 0,
        quote_to,
        grid_to: token_ix::ata(&treasurer, &token_ix::grid_mint()),
    };
    let quote_ata = token_ix::ata(&treasurer, &plan.quote_mint);
    let err = cli::council::propose(&mut chain, &members[0], &withdraw(fees + 1, quote_ata))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains(&format!("the market holds {fees} quote units of fees")),
        "{err:#}"
    );
    // The GRID account where the quote should go.
    let grid_ata = token_ix::ata(&treasurer, &token_ix::grid_mint());
    let err = cli::council::propose(&mut chain, &members[0], &withdraw(fees, grid_ata))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("is not a quote token account"),
        "{err:#}"
    );
    let mut at = chain.clock().await.unwrap().unix_timestamp;
    through_the_council(&mut chain, members, &withdraw(fees, quote_ata), &mut at, 2).await;
    assert_eq!(
        sdk::accounts::zero_copy::<trading::Market>(
            &chain
                .account(market_ix::market_address())
                .await
                .unwrap()
                .unwrap()
        )
        .unwrap()
        .fees,
        0
    );
    let paid = chain.account(quote_ata).await.unwrap().unwrap();
    assert_eq!(
        u64::from_le_bytes(paid.data[64..72].try_into().unwrap()),
        fees
    );
}

/// The council's remaining actions: a meter retired for good, a program's authority
/// handed over, a proposal cancelled by its proposer (and only by it), and a guardian's
/// immediate pause (only a guardian's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_council_retires_a_meter_hands_over_cancels_and_a_guardian_pauses() {
    use cli::council::{self, Action};
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        now,
    } = fixture().await;
    let members = &plan.council_signers;
    let mut at = now;
    let lfdi = buildings.lfdi("PHYS").unwrap().1;
    let text = |e: anyhow::Error| format!("{e:#}");

    through_the_council(&mut chain, members, &Action::Retire { lfdi }, &mut at, 2).await;
    let meter = chain
        .account(sdk::ix::registry::meter_address(&lfdi))
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::anchor_account::<registry::Meter>(&a))
        .unwrap();
    assert_eq!(meter.status, registry::MeterStatus::Retired);
    let err = council::propose(&mut chain, &members[0], &Action::Retire { lfdi })
        .await
        .map_err(text)
        .unwrap_err();
    assert!(err.contains("the meter is retired already"), "{err}");
    let err = council::propose(
        &mut chain,
        &members[0],
        &Action::MeterStatus { lfdi, active: true },
    )
    .await
    .map_err(text)
    .unwrap_err();
    assert!(err.contains("its status never changes again"), "{err}");

    // A hand-over: the market's pending authority is the new key (which must accept).
    let successor = Pubkey::new_unique();
    let hand_over = Action::HandOver {
        program: trading::ID,
        to: successor,
    };
    assert_eq!(
        sdk::names::instruction(&trading::ID, &hand_over.instruction().data),
        Some("propose_authority")
    );
    let err = council::propose(
        &mut chain,
        &members[0],
        &Action::HandOver {
            program: trading::ID,
            to: sdk::ix::governance::authority_for(trading::ID),
        },
    )
    .await
    .map_err(text)
    .unwrap_err();
    assert!(err.contains("the council's own authority"), "{err}");
    through_the_council(&mut chain, members, &hand_over, &mut at, 2).await;
    let market = sdk::accounts::zero_copy::<trading::Market>(
        &chain
            .account(market_ix::market_address())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(market.pending_authority, successor);
    assert_eq!(
        market.authority,
        sdk::ix::governance::authority_for(trading::ID)
    );

    // Cancelled by its proposer only.
    let pause = Action::Pause {
        program: oracle::ID,
        until: None,
    };
    let index = council::propose(&mut chain, &members[0], &pause)
        .await
        .unwrap();
    let err = council::cancel(&mut chain, &members[1], index)
        .await
        .map_err(text)
        .unwrap_err();
    assert!(err.contains("only its proposer cancels it"), "{err}");
    council::cancel(&mut chain, &members[0], index)
        .await
        .unwrap();
    let all = council::proposals(&mut chain, true).await.unwrap();
    assert_eq!(
        all.iter().find(|p| p.index == index).unwrap().status,
        "Cancelled"
    );
    let err = council::cancel(&mut chain, &members[0], index)
        .await
        .map_err(text)
        .unwrap_err();
    assert!(err.contains("is Cancelled: nothing to cancel"), "{err}");

    // A guardian pause: refused to a member who is not a guardian; one is made, pauses.
    let err = council::guardian_pause(&mut chain, &members[1], trading::ID)
        .await
        .map_err(text)
        .unwrap_err();
    assert!(
        err.contains("is not one of the council's guardians"),
        "{err}"
    );
    let mut config = council::current_council(&mut chain).await.unwrap();
    config.guardians = vec![members[1].pubkey()];
    through_the_council(
        &mut chain,
        members,
        &Action::Council(config.clone()),
        &mut at,
        2,
    )
    .await;
    let until = council::guardian_pause(&mut chain, &members[1], trading::ID)
        .await
        .unwrap();
    assert_eq!(until, at + i64::from(config.max_guardian_pause_s));
    let market = sdk::accounts::zero_copy::<trading::Market>(
        &chain
            .account(market_ix::market_address())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(market.paused_until, until);
    // Again at once: the cooldown refuses it before anything is sent.
    let err = council::guardian_pause(&mut chain, &members[1], trading::ID)
        .await
        .map_err(text)
        .unwrap_err();
    assert!(
        err.contains("may again only after the council's")
            && err.contains(&format!("{} s cooldown", config.guardian_cooldown_s)),
        "{err}"
    );
}

/// GRID redeemed against verified import (never more than the import not yet redeemed, nor
/// more than the owner holds), and RECs retired with a record each under its own id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_is_redeemed_against_verified_import_and_recs_are_retired() {
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        ..
    } = fixture().await;
    let phys = plan.meters.iter().find(|m| m.code == "PHYS").unwrap();
    let (code, lfdi) = buildings.lfdi("PHYS").unwrap();
    let err = cli::redeem(&mut chain, &phys.owner, &code, &lfdi, 10)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("has 0 Wh of verified import not yet redeemed"),
        "{err:#}"
    );
    // The oracle's verified import (the test skips the metering that verifies it).
    let address = sdk::ix::oracle::meter_state_address(&lfdi);
    let mut account = chain.account(address).await.unwrap().unwrap();
    let size = std::mem::size_of::<oracle::MeterState>();
    let state: &mut oracle::MeterState = bytemuck::from_bytes_mut(&mut account.data[8..8 + size]);
    state.verified_import_wh = 3_000;
    chain.ctx.set_account(&address, &account.into());
    give_tokens(
        &mut chain,
        &phys.owner.pubkey(),
        &token_ix::grid_mint(),
        2_000,
    )
    .await;

    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let err = cli::redeem(&mut chain, &eng.owner, &code, &lfdi, 100)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("redeemed by its owner"),
        "{err:#}"
    );
    let err = cli::redeem(&mut chain, &phys.owner, &code, &lfdi, 2_500)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("holds 2000 Wh of GRID"),
        "{err:#}"
    );
    cli::redeem(&mut chain, &phys.owner, &code, &lfdi, 1_500)
        .await
        .unwrap();
    let status = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert_eq!((status.redeemed_wh, status.grid_wh), (1_500, 500));
    let err = cli::redeem(&mut chain, &phys.owner, &code, &lfdi, 1_600)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("has 1500 Wh of verified import not yet redeemed"),
        "{err:#}"
    );

    give_tokens(&mut chain, &phys.owner.pubkey(), &token_ix::rec_mint(), 3).await;
    let err = cli::retire(&mut chain, &phys.owner, 5, "campus", "2026")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("holds 3 RECs"), "{err:#}");
    let long = "x".repeat(200);
    assert!(cli::retire(&mut chain, &phys.owner, 1, "campus", &long)
        .await
        .is_err());
    let first = cli::retire(&mut chain, &phys.owner, 2, "Physics", "2026 electricity")
        .await
        .unwrap();
    let second = cli::retire(&mut chain, &phys.owner, 1, "Physics", "2026 heat pumps")
        .await
        .unwrap();
    assert_eq!((first.id, second.id), (0, 1));
    assert!(chain
        .account(first.address.parse().unwrap())
        .await
        .unwrap()
        .is_some());
    assert_eq!(cli::status(&mut chain, &code, &lfdi).await.unwrap().recs, 0);
}

/// A new meter registered through the council: proposed with its owner, approved, and
/// executed by the owner (the registry needs the owner's signature; a member alone is
/// refused first, naming whose keypair executes it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_meter_is_registered_through_the_council_and_executed_by_its_owner() {
    use cli::council::{self, Action};
    let Fixture {
        dir,
        mut chain,
        plan,
        now,
        ..
    } = fixture().await;
    let members = &plan.council_signers;
    let layout = Layout::new(dir.path().join("pki"));
    let now_t = time::OffsetDateTime::now_utc();
    let (der, _key) = certs::issue_device_certificate(
        &layout,
        b"GTX-0026-NEW",
        now_t - time::Duration::days(1),
        certs::no_expiry(),
    )
    .unwrap();
    let lfdi = sdk::identity::lfdi_from_certificate(&der);
    let owner = solana_keypair::Keypair::new();
    migrations::dev::fund(&mut chain, &owner.pubkey(), 1_000_000_000)
        .await
        .unwrap();
    let capacity = council::current_capacity(&mut chain, &plan.meters[0].lfdi)
        .await
        .unwrap();
    let register = Action::Register {
        lfdi,
        owner: owner.pubkey(),
        kind: registry::BuildingKind::Research,
        capacity,
    };
    let index = council::propose(&mut chain, &members[0], &register)
        .await
        .unwrap();
    for m in members {
        council::vote(&mut chain, m, index, true).await.unwrap();
    }
    chain.set_time(now + 3).await.unwrap();
    let err = council::execute(&mut chain, &members[0], index)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains(&format!("needs {}'s signature too", owner.pubkey())),
        "{err:#}"
    );
    council::execute(&mut chain, &owner, index).await.unwrap();
    let meter = chain
        .account(sdk::ix::registry::meter_address(&lfdi))
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::anchor_account::<registry::Meter>(&a))
        .unwrap();
    assert_eq!(
        (meter.owner, meter.building_kind, meter.capacity),
        (owner.pubkey(), registry::BuildingKind::Research, capacity)
    );
    // And what it needs to be attested, minted and trade: its oracle state, its ledger,
    // its owner's token accounts.
    for address in [
        sdk::ix::oracle::meter_state_address(&lfdi),
        token_ix::ledger_address(&lfdi),
        token_ix::ata(&owner.pubkey(), &token_ix::grid_mint()),
        token_ix::ata(&owner.pubkey(), &token_ix::rec_mint()),
        token_ix::ata(&owner.pubkey(), &plan.quote_mint),
    ] {
        assert!(chain.account(address).await.unwrap().is_some(), "{address}");
    }
}

/// Sets the oracle's registers of a meter (the test skips the metering that applies them).
async fn registers(
    chain: &mut EmbeddedChain,
    lfdi: &registry::identity::Lfdi,
    import: u64,
    export: u64,
    at: i64,
) {
    let address = sdk::ix::oracle::meter_state_address(lfdi);
    let mut account = chain.account(address).await.unwrap().unwrap();
    let size = std::mem::size_of::<oracle::MeterState>();
    let state: &mut oracle::MeterState = bytemuck::from_bytes_mut(&mut account.data[8..8 + size]);
    state.import_wh = import;
    state.export_wh = export;
    state.last_timestamp = at;
    chain.ctx.set_account(&address, &account.into());
}

/// A building's agent: the first look records the registers; after a new reading it sells
/// the last interval's net export (up to the GRID held) at its ask in the next open
/// interval, and after a net import it bids; an opted-out building's agent places nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buildings_agent_orders_its_forecast_surplus_or_deficit() {
    use cli::agent::{self, AgentConfig};
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        now,
        ..
    } = fixture().await;
    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let (code, lfdi) = buildings.lfdi("ENG").unwrap();
    let params = plan.campus.market.params().unwrap();
    let config = AgentConfig {
        opt_out: false,
        ask: params.min_price + 4 * params.price_tick,
        bid: params.min_price + 20 * params.price_tick,
        min_order_wh: 100,
        max_order_wh: 0,
    };
    give_tokens(
        &mut chain,
        &eng.owner.pubkey(),
        &token_ix::grid_mint(),
        2_000,
    )
    .await;
    let mut seen = None;
    registers(&mut chain, &lfdi, 1_000, 1_000, now - 900).await;
    assert!(
        agent::step(&mut chain, &eng.owner, &code, &lfdi, &config, &mut seen)
            .await
            .unwrap()
            .is_none()
    );
    // No new reading: nothing.
    assert!(
        agent::step(&mut chain, &eng.owner, &code, &lfdi, &config, &mut seen)
            .await
            .unwrap()
            .is_none()
    );
    // 3,000 Wh out and 200 Wh in over the interval: 2,800 Wh forecast, 2,000 Wh held.
    registers(&mut chain, &lfdi, 1_200, 4_000, now).await;
    let sold = agent::step(&mut chain, &eng.owner, &code, &lfdi, &config, &mut seen)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (sold.side.as_str(), sold.quantity_wh, sold.limit_price),
        ("sell", 2_000, config.ask)
    );
    let status = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert_eq!(status.open_orders.len(), 1);
    // Then a net import of 1,500 Wh: a bid (ENG holds the fixture's quote tokens).
    chain.set_time(now + 900).await.unwrap();
    registers(&mut chain, &lfdi, 2_700, 4_000, now + 900).await;
    let bought = agent::step(&mut chain, &eng.owner, &code, &lfdi, &config, &mut seen)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (bought.side.as_str(), bought.quantity_wh, bought.limit_price),
        ("buy", 1_500, config.bid)
    );
    assert!(bought.interval > sold.interval);
    // Opted out: nothing, whatever the forecast.
    let out = AgentConfig {
        opt_out: true,
        ..config
    };
    registers(&mut chain, &lfdi, 2_700, 9_000, now + 1_000).await;
    assert!(
        agent::step(&mut chain, &eng.owner, &code, &lfdi, &out, &mut seen)
            .await
            .unwrap()
            .is_none()
    );
}

/// What the market would refuse is refused first: an order beyond the meter's capacity in
/// an interval, more GRID than held, more than the quote covers, both sides in one
/// interval, a cancellation after the gate; and the council's proposals the programs would
/// refuse at execution (a skip of nothing, a meter already suspended, already registered,
/// a pause ending before the timelock), and a rejection turning an approval during the
/// timelock, which defeats the proposal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_the_programs_would_make_come_first_and_a_rejection_in_the_timelock_defeats() {
    use cli::council::{self, Action};
    let Fixture {
        dir: _dir,
        mut chain,
        plan,
        buildings,
        now,
    } = fixture().await;
    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let (code, lfdi) = buildings.lfdi("ENG").unwrap();
    let params = plan.campus.market.params().unwrap();
    let refused = |e: anyhow::Error| format!("{e:#}");
    let order = |side, quantity_wh, limit_price| OrderRequest {
        side,
        quantity_wh,
        limit_price,
        interval: None,
    };
    let err = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        order(Side::Buy, 10_000_000_000, params.min_price),
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(
        err.contains("more than building ENG's meter can import in one interval"),
        "{err}"
    );
    let err = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        order(Side::Sell, 1_000, params.min_price),
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains("the owner holds 0 Wh of GRID"), "{err}");
    let max = params.min_price + u64::from(params.ticks - 1) * params.price_tick;
    let err = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        order(Side::Buy, 20_000, max),
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains("the owner holds 5000000"), "{err}");
    let err = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        order(Side::Buy, 1_000, max + params.price_tick),
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains(&format!("(nearest: {max})")), "{err}");
    let placed = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        order(Side::Buy, 1_000, params.min_price),
    )
    .await
    .unwrap();
    give_tokens(
        &mut chain,
        &eng.owner.pubkey(),
        &token_ix::grid_mint(),
        1_000,
    )
    .await;
    let err = cli::place(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        OrderRequest {
            interval: Some(placed.interval),
            ..order(Side::Sell, 500, params.min_price)
        },
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains("has a buy order in interval"), "{err}");
    // After the gate the order stands.
    let market = chain
        .account(market_ix::market_address())
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
        .unwrap();
    chain
        .set_time(market.gate(placed.interval).unwrap() + 1)
        .await
        .unwrap();
    let err = cli::cancel(
        &mut chain,
        &eng.owner,
        &code,
        &lfdi,
        placed.interval,
        Side::Buy,
    )
    .await
    .map_err(refused)
    .unwrap_err();
    assert!(err.contains("gate closed at"), "{err}");
    let status = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert_eq!(
        status.open_orders[0].state,
        "gate closed, awaiting clearing"
    );

    // The council's refusals before the vote.
    let members = &plan.council_signers;
    let at = chain.clock().await.unwrap().unix_timestamp;
    for (action, says) in [
        (Action::SkipBatches { through: 0 }, "nothing to skip"),
        (
            Action::MeterStatus { lfdi, active: true },
            "is Active already",
        ),
        (
            Action::Register {
                lfdi,
                owner: eng.owner.pubkey(),
                kind: registry::BuildingKind::Academic,
                capacity: council::current_capacity(&mut chain, &lfdi).await.unwrap(),
            },
            "registered already",
        ),
        (
            Action::Pause {
                program: trading::ID,
                until: Some(at + 1),
            },
            "executes after the council's",
        ),
    ] {
        let err = council::propose(&mut chain, &members[0], &action)
            .await
            .map_err(refused)
            .unwrap_err();
        assert!(err.contains(says), "{says}: {err}");
    }
    // Approved, then an approver rejects in the timelock: with 2 members, defeated.
    let suspend = Action::MeterStatus {
        lfdi,
        active: false,
    };
    let index = council::propose(&mut chain, &members[0], &suspend)
        .await
        .unwrap();
    council::vote(&mut chain, &members[0], index, true)
        .await
        .unwrap();
    let err = council::vote(&mut chain, &members[0], index, false)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(err.contains("only once the proposal is approved"), "{err}");
    let approved = council::vote(&mut chain, &members[1], index, true)
        .await
        .unwrap();
    assert_eq!(approved.status, "Approved");
    let after = council::vote(&mut chain, &members[1], index, false)
        .await
        .unwrap();
    assert_ne!(after.status, "Approved", "{after:?}");
    let err = council::execute(&mut chain, &members[0], index)
        .await
        .map_err(refused)
        .unwrap_err();
    assert!(err.contains("nothing to execute"), "{err}");
    let _ = now;
}
