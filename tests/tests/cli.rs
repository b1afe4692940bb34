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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_building_manager_reads_the_status_and_places_and_cancels_an_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
    let pki = ensure_pki(&Layout::new(dir.path().join("pki")), &config).unwrap();
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
    let plan = campus_plan(&mut chain, &config, &pki, Pubkey::new_unique(), terms)
        .await
        .unwrap();
    migrations::apply(&mut chain, &plan).await.unwrap();
    chain.set_time(now).await.unwrap();
    migrations::apply(&mut chain, &plan).await.unwrap();
    let eng = plan.meters.iter().find(|m| m.code == "ENG").unwrap();
    let phys = plan.meters.iter().find(|m| m.code == "PHYS").unwrap();
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
