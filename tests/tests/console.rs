//! The console end to end: a campus day on the embedded chain publishes the campus to a
//! console as it runs; afterwards the console's JSON API and its page, as headless Chromium
//! renders it, must show what the chain holds, read here directly (the registry, oracle
//! and energy-token accounts, the owners' token accounts and the market's balances).
//!
//! Chromium is the Debian package `chromium`; without it the browser half is skipped,
//! unless `GRIDTOKENX_REQUIRE_CHROMIUM=1` (as `.ci/run` sets), when its absence fails.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use gridtokenx_tests::campus_day::{self, DayOptions};
use gridtokenx_tests::http_get as get;
use sdk::chain::Chain;
use sdk::CampusConfig;

/// Wh as the page writes kWh (exactly, three decimals).
fn kwh(wh: u64) -> String {
    format!("{}.{:03}", wh / 1_000, wh % 1_000)
}

/// Quote base units with `decimals` decimals.
fn credits(units: u64, decimals: u32) -> String {
    let unit = 10u64.pow(decimals);
    format!(
        "{}.{:0width$}",
        units / unit,
        units % unit,
        width = decimals as usize
    )
}

/// The cells the page marks `data-b="CODE" data-f="FIELD"` and the cards `data-t="KEY"`,
/// with their text.
fn cells(dom: &str) -> (BTreeMap<(String, String), String>, BTreeMap<String, String>) {
    let mut buildings = BTreeMap::new();
    let mut totals = BTreeMap::new();
    let attr = |s: &str, name: &str| -> Option<(String, usize)> {
        let start = s.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + s[start..].find('"')?;
        Some((s[start..end].to_string(), end))
    };
    for piece in dom.split("<td ").skip(1) {
        let head = &piece[..piece.find('>').unwrap_or(0)];
        if let (Some((b, _)), Some((f, _))) = (attr(head, "data-b"), attr(head, "data-f")) {
            let text = &piece[head.len() + 1..];
            let text = &text[..text.find('<').unwrap_or(text.len())];
            buildings.insert((b, f), text.to_string());
        }
    }
    for piece in dom.split("<div ").skip(1) {
        let head = &piece[..piece.find('>').unwrap_or(0)];
        if let Some((t, _)) = attr(head, "data-t") {
            let text = &piece[head.len() + 1..];
            let text = &text[..text.find('<').unwrap_or(text.len())];
            totals.insert(t, text.to_string());
        }
    }
    (buildings, totals)
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The page's DOM once it has rendered snapshot `version` (Chromium headless, which runs its
/// script and its event stream).
fn rendered_dom(browser: &str, url: &str, version: u64) -> String {
    let profile = tempfile::tempdir().unwrap();
    for _ in 0..10 {
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--timeout=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--dump-dom", url])
            .output()
            .expect("run chromium");
        let dom = String::from_utf8_lossy(&out.stdout).to_string();
        if dom.contains(&format!("data-version=\"{version}\"")) {
            return dom;
        }
    }
    panic!("the page did not render snapshot {version} in Chromium");
}

fn screenshot(browser: &str, url: &str, path: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--timeout=4000",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(status.status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_what_the_chain_holds_in_its_api_and_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let console = console::server::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = console.addr;
    let (status, _) = get(addr, "/api/v1/campus").await;
    assert_eq!(status, 503, "nothing read yet");

    let options = DayOptions {
        console: Some(console.publisher.clone()),
        ..DayOptions::midday_test(dir.path(), 8)
    };
    let config = CampusConfig::load(&options.config).unwrap();
    let (report, mut chain) = campus_day::run_embedded(options, config).await.unwrap();
    assert!(report.checks_ok, "{:?}\n{}", report.failures, report.text);
    assert!(report.traded_wh > 0, "{}", report.text);
    let version = console.publisher.version();
    assert!(
        version >= 9,
        "published after the set-up and every pass: {version}"
    );

    // The chain, read here.
    let buildings =
        cli::Buildings::load(&CampusConfig::in_repository(), &dir.path().join("pki")).unwrap();
    let market = chain
        .account(sdk::ix::trading::market_address())
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::zero_copy::<trading::Market>(&a))
        .unwrap();
    let quote_decimals = u32::from(
        chain
            .account(market.quote_mint)
            .await
            .unwrap()
            .unwrap()
            .data[44],
    );
    let oracle_config = chain
        .account(sdk::ix::oracle::config_address())
        .await
        .unwrap()
        .and_then(|a| sdk::accounts::zero_copy::<oracle::OracleConfig>(&a))
        .unwrap();
    let grid_supply = {
        let mint = chain
            .account(sdk::ix::energy_token::grid_mint())
            .await
            .unwrap()
            .unwrap();
        u64::from_le_bytes(mint.data[36..44].try_into().unwrap())
    };
    let mut expected = BTreeMap::new();
    let mut totals = [0u64; 3];
    for (code, lfdi) in &buildings.buildings {
        let s = cli::status(&mut chain, code, lfdi).await.unwrap();
        for (field, text) in [
            ("status", s.meter_status.clone()),
            ("verified_export_wh", kwh(s.verified_export_wh)),
            ("verified_import_wh", kwh(s.verified_import_wh)),
            ("grid_minted_wh", kwh(s.grid_minted_wh)),
            ("grid_wh", kwh(s.grid_wh)),
            ("quote", credits(s.quote, quote_decimals)),
            ("claimable_grid_wh", kwh(s.claimable_grid_wh)),
            (
                "claimable_quote",
                credits(s.claimable_quote, quote_decimals),
            ),
            ("recs", s.recs.to_string()),
            ("open_orders", s.open_orders.len().to_string()),
        ] {
            expected.insert((code.clone(), field.to_string()), text);
        }
        totals[0] += s.verified_export_wh;
        totals[1] += s.verified_import_wh;
        totals[2] += s.grid_minted_wh;
    }
    let mut expected_totals = BTreeMap::new();
    for (key, text) in [
        ("meters_active", buildings.buildings.len().to_string()),
        ("verified_export_wh", kwh(totals[0])),
        ("verified_import_wh", kwh(totals[1])),
        ("grid_minted_wh", kwh(totals[2])),
        ("grid_supply_wh", kwh(grid_supply)),
        ("last_price", credits(market.last_price, quote_decimals)),
        ("traded_wh", kwh(report.traded_wh)),
        (
            "highest_sequence",
            oracle_config.highest_sequence.to_string(),
        ),
    ] {
        expected_totals.insert(key.to_string(), text);
    }
    assert!(totals[2] > 0 && market.last_price > 0);

    // The API: one building, the campus, and what it refuses.
    let (status, body) = get(addr, "/api/v1/buildings/eng").await;
    assert_eq!(status, 200, "{body}");
    let eng: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (code, lfdi) = buildings.lfdi("ENG").unwrap();
    let s = cli::status(&mut chain, &code, &lfdi).await.unwrap();
    assert_eq!(eng["verified_export_wh"], s.verified_export_wh);
    assert_eq!(eng["grid_wh"], s.grid_wh);
    assert_eq!(eng["quote"], s.quote);
    assert_eq!(eng["owner"], s.owner);
    let (status, body) = get(addr, "/api/v1/campus").await;
    assert_eq!(status, 200);
    let campus: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(campus["totals"]["grid_minted_wh"], totals[2]);
    assert_eq!(campus["history_complete"], true);
    // The campus's own clock (the campus file's [site]: Bangkok, UTC+7 all year).
    assert_eq!(campus["time_zone"], "Asia/Bangkok");
    let chain_time = campus["chain_time"].as_i64().unwrap();
    let (status, body) = get(addr, "/api/v1/intervals").await;
    assert_eq!(status, 200);
    let intervals: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let traded: u64 = intervals
        .iter()
        .map(|i| i["volume_wh"].as_u64().unwrap())
        .sum();
    assert_eq!(
        traded, report.traded_wh,
        "volume cleared = GRID the sellers delivered"
    );
    let (status, body) = get(addr, "/api/v1/buildings/NOPE").await;
    assert_eq!(status, 404);
    assert!(body.contains("/api/v1/buildings lists them"), "{body}");

    // The page in a browser.
    let Some(browser) = chromium() else {
        if std::env::var("GRIDTOKENX_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!(
                "chromium is required (GRIDTOKENX_REQUIRE_CHROMIUM=1): apt-get install chromium"
            );
        }
        eprintln!("chromium not found: the browser half of this test is skipped");
        return;
    };
    let url = format!("http://{addr}/");
    let dom = rendered_dom(browser, &url, version);
    let (shown, shown_totals) = cells(&dom);
    for (key, text) in &expected {
        assert_eq!(shown.get(key), Some(text), "{key:?}");
    }
    for (key, text) in &expected_totals {
        assert_eq!(shown_totals.get(key), Some(text), "card {key}");
    }
    let sold: u64 = buildings
        .buildings
        .iter()
        .map(|(code, _)| {
            let text = &shown[&(code.clone(), "sold_wh".to_string())];
            let (k, w) = text.split_once('.').unwrap();
            k.parse::<u64>().unwrap() * 1_000 + w.parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(sold, report.traded_wh);
    for (code, _) in &buildings.buildings {
        assert!(
            dom.contains(&format!("data-b=\"{code}\" data-health=\"ok\"")),
            "{code} is shown healthy"
        );
    }
    // Times on the campus clock, named: the chain's time in Bangkok.
    let local = chain_time + 7 * 3600;
    let secs = local.rem_euclid(86_400);
    let shown_time = format!(
        "chain time {} {:02}:{:02}:{:02} GMT+7",
        gridtokenx_tests::campus_day::fmt_date(local),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    assert!(dom.contains(&shown_time), "{shown_time} not on the page");
    let png = dir.path().join("console.png");
    screenshot(browser, &url, &png);
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
}

/// The embedded chain answers `transactions_naming` as a node's signature index does:
/// after a transaction, oldest first, the newest `limit` when more wait (`skipped`), and
/// only the program's successful transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_chain_keeps_each_programs_transactions_in_order() {
    use sdk::chain::{send_and_confirm, SendPolicy};
    use solana_signer::Signer;
    let mut chain = gridtokenx_tests::embedded::EmbeddedChain::start().await;
    let system = anchor_lang::solana_program::system_program::ID;
    let payer = chain.payer_key();
    let mut sent = Vec::new();
    for lamports in 1..=4u64 {
        let to = solana_keypair::Keypair::new().pubkey();
        let ix = anchor_lang::solana_program::system_instruction::transfer(
            &payer,
            &to,
            1_000_000 + lamports,
        );
        sent.push(
            send_and_confirm(&mut chain, &[ix], &[], &[], SendPolicy::default())
                .await
                .unwrap()
                .signature,
        );
    }
    // A failing transaction (more lamports than the payer has) is not among them.
    let too_much = anchor_lang::solana_program::system_instruction::transfer(
        &payer,
        &solana_keypair::Keypair::new().pubkey(),
        u64::MAX / 2,
    );
    assert!(
        send_and_confirm(&mut chain, &[too_much], &[], &[], SendPolicy::default())
            .await
            .is_err()
    );
    let all = chain.transactions_naming(system, None, 10).await.unwrap();
    assert!(!all.skipped);
    let got: Vec<_> = all.transactions.iter().map(|t| t.signature).collect();
    assert_eq!(got, sent);
    let after = chain
        .transactions_naming(system, Some(sent[1]), 10)
        .await
        .unwrap();
    let got: Vec<_> = after.transactions.iter().map(|t| t.signature).collect();
    assert_eq!(got, sent[2..]);
    let newest = chain.transactions_naming(system, None, 3).await.unwrap();
    assert!(newest.skipped);
    let got: Vec<_> = newest.transactions.iter().map(|t| t.signature).collect();
    assert_eq!(got, sent[1..]);
    // Another program's: none; an unknown cursor: an error.
    assert!(chain
        .transactions_naming(trading::ID, None, 10)
        .await
        .unwrap()
        .transactions
        .is_empty());
    assert!(chain
        .transactions_naming(system, Some(solana_signature::Signature::default()), 10)
        .await
        .is_err());
}
