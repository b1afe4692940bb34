//! Energy-token program: GRID minted exactly once from verified export, redeemed against
//! verified import, RECs issued per whole MWh and retired with a record; every failure with
//! its exact error code.
use anchor_lang::error::ErrorCode;
use energy_token::events::{GenerationMinted, MeterSkipped, RecsIssued, RecsRetired};
use energy_token::{Retirement, TokenConfig, TokenError};
use gridtokenx_tests::energy_campus::EnergyCampus;
use gridtokenx_tests::energy_token_ix as token_ix;
use gridtokenx_tests::fixtures::{self, SOL};
use gridtokenx_tests::governance_ix::{self, authority_for};
use gridtokenx_tests::oracle_ix::meter_state_address;
use gridtokenx_tests::registry_ix::{self, meter_address, test_lfdi};
use gridtokenx_tests::{assert_error, events, replace_account, TestEnv};
use registry::MeterStatus;
use solana_signer::Signer;

/// SPL Token's own error for a burn above the balance (TokenError::InsufficientFunds).
const SPL_INSUFFICIENT_FUNDS: u32 = 1;

fn code(e: TokenError) -> u32 {
    e.into()
}

async fn config(c: &mut EnergyCampus) -> TokenConfig {
    c.env.zero_copy(token_ix::config_address()).await
}

// ---- initialize ----

#[tokio::test]
async fn initialize_creates_grid_and_rec_mints_only_this_program_can_mint() {
    let mut c = EnergyCampus::new(1).await;
    let grid = c.env.mint_info(token_ix::grid_mint()).await;
    assert_eq!(grid.decimals, 3);
    assert_eq!(grid.mint_authority, Some(token_ix::mint_authority()).into());
    assert_eq!(grid.freeze_authority, None.into());
    assert_eq!(grid.supply, 0);
    let rec = c.env.mint_info(token_ix::rec_mint()).await;
    assert_eq!(rec.decimals, 0);
    assert_eq!(rec.mint_authority, Some(token_ix::mint_authority()).into());
    assert_eq!(rec.freeze_authority, None.into());
    assert_eq!(
        c.env.account_owner(token_ix::grid_mint()).await,
        anchor_spl::token::ID
    );
    let cfg = config(&mut c).await;
    assert_eq!(cfg.authority, c.env.payer());
    assert_eq!(cfg.campus, registry_ix::campus_address());
    assert_eq!(
        (cfg.grid_mint, cfg.rec_mint),
        (token_ix::grid_mint(), token_ix::rec_mint())
    );
    assert_eq!(cfg.paused_until, 0);
}

#[tokio::test]
async fn initialize_needs_the_campus_authority_and_happens_once() {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    let squatter = env.funded_keypair(SOL).await;
    let ix = token_ix::initialize(squatter.pubkey());
    assert_error(
        env.send(&[ix], &[&squatter]).await,
        TokenError::NotCampusAuthority,
    );
    assert!(!env.account_exists(token_ix::config_address()).await);
    let payer = env.payer();
    env.send(&[token_ix::initialize(payer)], &[]).await.unwrap();
    // Again: the mint address is taken (System program: AccountAlreadyInUse).
    assert_error(env.send(&[token_ix::initialize(payer)], &[]).await, 0u32);
}

#[tokio::test]
async fn a_prefunded_mint_or_ledger_address_does_not_block_creation() {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    let lfdi = test_lfdi(1);
    fixtures::meter(&mut env, lfdi).await;
    let payer = env.payer();
    for address in [
        token_ix::grid_mint(),
        token_ix::config_address(),
        token_ix::ledger_address(&lfdi),
    ] {
        let ix =
            anchor_lang::solana_program::system_instruction::transfer(&payer, &address, 5_000_000);
        env.send(&[ix], &[]).await.unwrap();
    }
    env.send(&[token_ix::initialize(payer)], &[]).await.unwrap();
    env.send(&[token_ix::init_ledger(payer, &lfdi)], &[])
        .await
        .unwrap();
    assert_eq!(env.mint_info(token_ix::grid_mint()).await.decimals, 3);
    // A ledger only once.
    assert_error(
        env.send(&[token_ix::init_ledger(payer, &lfdi)], &[]).await,
        TokenError::LedgerExists,
    );
}

// ---- mint_generation ----

#[tokio::test]
async fn mint_generation_mints_exactly_the_verified_export() {
    let mut c = EnergyCampus::new(3).await;
    // Meter 0 exports 10 kWh, meter 1 imports only, meter 2 exports 2.5 kWh.
    c.report(&[(0, 0, 10_000), (1, 4_000, 0), (2, 1_000, 2_500)])
        .await;
    let (result, logs) = c
        .env
        .send_with_logs(&[token_ix::mint_generation(&c.meters(&[0, 1, 2]))], &[])
        .await;
    result.unwrap();
    assert_eq!(c.grid_balance(0).await, 10_000);
    assert_eq!(c.grid_balance(1).await, 0);
    assert_eq!(c.grid_balance(2).await, 2_500);
    assert_eq!(c.grid_supply().await, 12_500);
    let minted = events::<GenerationMinted>(&logs);
    assert_eq!(
        minted
            .iter()
            .map(|e| (e.lfdi, e.amount, e.total_minted_wh))
            .collect::<Vec<_>>(),
        vec![(c.lfdis[0], 10_000, 10_000), (c.lfdis[2], 2_500, 2_500)]
    );
    assert_eq!(minted[0].owner, c.owner(0));
    assert_eq!(c.ledger(0).await.grid_minted_wh, 10_000);
    assert_eq!(config(&mut c).await.grid_minted_wh, 12_500);

    // More verified export: only the difference is minted.
    c.report(&[(0, 0, 7_000)]).await;
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0, 2]))], &[])
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 17_000);
    assert_eq!(c.grid_balance(2).await, 2_500);
    assert_eq!(c.grid_supply().await, 19_500);
}

#[tokio::test]
async fn no_form_of_calling_twice_mints_twice() {
    let mut c = EnergyCampus::new(2).await;
    c.report(&[(0, 0, 10_000), (1, 0, 5_000)]).await;
    let ix = token_ix::mint_generation(&c.meters(&[0, 1]));
    // Twice in one transaction.
    c.env.send(&[ix.clone(), ix.clone()], &[]).await.unwrap();
    assert_eq!(
        (c.grid_balance(0).await, c.grid_balance(1).await),
        (10_000, 5_000)
    );
    // Again in another transaction.
    c.env.send(&[ix], &[]).await.unwrap();
    // The same meter listed twice in one call.
    let twice = token_ix::mint_generation(&c.meters(&[0, 0, 1, 0]));
    c.env.send(&[twice], &[]).await.unwrap();
    assert_eq!(
        (c.grid_balance(0).await, c.grid_balance(1).await),
        (10_000, 5_000)
    );
    assert_eq!(c.grid_supply().await, 15_000);
    // Oracle updates in between: each Wh once.
    for _ in 0..3 {
        c.report(&[(0, 0, 1_000)]).await;
        let ix = token_ix::mint_generation(&c.meters(&[0, 0]));
        c.env.send(&[ix], &[]).await.unwrap();
    }
    assert_eq!(c.grid_balance(0).await, 13_000);
    assert_eq!(c.state(0).await.verified_export_wh, 13_000);
}

#[tokio::test]
async fn a_suspended_meter_mints_nothing_until_reactivated_and_a_retired_one_never_again() {
    let mut c = EnergyCampus::new(3).await;
    c.report(&[(0, 0, 10_000), (1, 0, 4_000), (2, 0, 3_000)])
        .await;
    let payer = c.env.payer();
    for (i, status) in [(0, MeterStatus::Suspended), (1, MeterStatus::Retired)] {
        let ix = registry_ix::set_meter_status(payer, &c.lfdis[i], status);
        c.env.send(&[ix], &[]).await.unwrap();
    }
    let (result, logs) = c
        .env
        .send_with_logs(&[token_ix::mint_generation(&c.meters(&[0, 1, 2]))], &[])
        .await;
    result.unwrap();
    // The others are minted; the two are skipped with the reason.
    assert_eq!(c.grid_balance(2).await, 3_000);
    assert_eq!((c.grid_balance(0).await, c.grid_balance(1).await), (0, 0));
    let skipped: Vec<_> = events::<MeterSkipped>(&logs)
        .iter()
        .map(|e| (e.lfdi, e.reason))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (c.lfdis[0], code(TokenError::MeterNotActive)),
            (c.lfdis[1], code(TokenError::MeterNotActive)),
        ]
    );
    // Reactivated: what was verified before the suspension is minted now.
    let ix = registry_ix::set_meter_status(payer, &c.lfdis[0], MeterStatus::Active);
    c.env.send(&[ix], &[]).await.unwrap();
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0, 1]))], &[])
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 10_000);
    // Retired is final: its unminted export stays unminted.
    assert_eq!(c.grid_balance(1).await, 0);
    assert_eq!(c.ledger(1).await.grid_minted_wh, 0);
}

#[tokio::test]
async fn only_the_registered_owners_account_receives_grid() {
    let mut c = EnergyCampus::new(2).await;
    c.report(&[(0, 0, 10_000), (1, 0, 5_000)]).await;
    // Meter 0's GRID sent to meter 1's owner: skipped, nothing minted for meter 0.
    let mut ix = token_ix::mint_generation(&c.meters(&[0, 1]));
    ix.accounts[4 + 3].pubkey = token_ix::ata(&c.owner(1), &token_ix::grid_mint());
    let (result, logs) = c.env.send_with_logs(&[ix], &[]).await;
    result.unwrap();
    assert_eq!(
        events::<MeterSkipped>(&logs)[0].reason,
        code(TokenError::WrongTokenAccount)
    );
    assert_eq!(
        (c.grid_balance(0).await, c.grid_balance(1).await),
        (0, 5_000)
    );
    // The owner's REC account instead of the GRID one, or an account that does not exist
    // (closed): skipped as well.
    for wrong in [
        token_ix::ata(&c.owner(0), &token_ix::rec_mint()),
        anchor_lang::prelude::Pubkey::new_unique(),
    ] {
        let mut ix = token_ix::mint_generation(&c.meters(&[0]));
        ix.accounts[4 + 3].pubkey = wrong;
        let (result, logs) = c.env.send_with_logs(&[ix], &[]).await;
        result.unwrap();
        assert_eq!(
            events::<MeterSkipped>(&logs)[0].reason,
            code(TokenError::WrongTokenAccount)
        );
    }
    assert_eq!(c.ledger(0).await.grid_minted_wh, 0);
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 10_000);
}

#[tokio::test]
async fn forged_or_mismatched_meter_accounts_are_refused() {
    let mut c = EnergyCampus::new(2).await;
    c.report(&[(0, 0, 10_000)]).await;
    let ix = token_ix::mint_generation(&c.meters(&[0]));
    // A forged MeterState: the right layout and a huge verified export, but owned by
    // another program.
    let mut forged = c
        .env
        .ctx
        .banks_client
        .get_account(meter_state_address(&c.lfdis[0]))
        .await
        .unwrap()
        .unwrap()
        .data;
    let at = 8 + std::mem::offset_of!(oracle::MeterState, verified_export_wh);
    forged[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let fake = anchor_lang::prelude::Pubkey::new_unique();
    c.env.plant_account(fake, energy_token::ID, forged);
    let with_fake = replace_account(ix.clone(), meter_state_address(&c.lfdis[0]), fake);
    assert_error(
        c.env.send(&[with_fake], &[]).await,
        TokenError::MeterMismatch,
    );
    // Another meter's state, ledger or registry meter.
    for (from, to) in [
        (
            meter_state_address(&c.lfdis[0]),
            meter_state_address(&c.lfdis[1]),
        ),
        (
            token_ix::ledger_address(&c.lfdis[0]),
            token_ix::ledger_address(&c.lfdis[1]),
        ),
        (meter_address(&c.lfdis[0]), meter_address(&c.lfdis[1])),
    ] {
        let swapped = replace_account(ix.clone(), from, to);
        assert_error(c.env.send(&[swapped], &[]).await, TokenError::MeterMismatch);
    }
    // Wrong mint, or accounts not in groups of four.
    let wrong_mint = replace_account(ix.clone(), token_ix::grid_mint(), token_ix::rec_mint());
    assert_error(
        c.env.send(&[wrong_mint], &[]).await,
        ErrorCode::ConstraintHasOne,
    );
    let mut short = ix.clone();
    short.accounts.pop();
    assert_error(
        c.env.send(&[short], &[]).await,
        TokenError::AccountsMismatch,
    );
    let mut read_only_ledger = ix.clone();
    read_only_ledger.accounts[4 + 2].is_writable = false;
    assert_error(
        c.env.send(&[read_only_ledger], &[]).await,
        TokenError::AccountsMismatch,
    );
    assert_eq!(c.grid_supply().await, 0);
    c.env.send(&[ix], &[]).await.unwrap();
    assert_eq!(c.grid_supply().await, 10_000);
}

#[tokio::test]
async fn pausing_stops_minting_and_issuance_but_not_redemption_or_retirement() {
    let mut c = EnergyCampus::new(1).await;
    c.report(&[(0, 0, 10_000)]).await;
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    c.report(&[(0, 3_000, 1_000)]).await;
    let payer = c.env.payer();
    c.env
        .send(&[token_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    for ix in [
        token_ix::mint_generation(&c.meters(&[0])),
        token_ix::issue_rec(&c.meters(&[0])),
    ] {
        assert_error(c.env.send(&[ix], &[]).await, TokenError::Paused);
    }
    // Redemption goes on.
    let owner = c.owners[0].insecure_clone();
    c.env
        .send(
            &[token_ix::redeem_for_consumption(
                &c.lfdis[0],
                owner.pubkey(),
                3_000,
            )],
            &[&owner],
        )
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 7_000);
    c.env
        .send(&[token_ix::set_paused(payer, false)], &[])
        .await
        .unwrap();
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 8_000);
}

/// A pause until a time ends by itself; a time not after the clock is refused.
#[tokio::test]
async fn a_timed_pause_lapses_and_a_past_time_is_refused() {
    let mut c = EnergyCampus::new(1).await;
    let payer = c.env.payer();
    let now = c.env.now().await;
    for past in [1, now] {
        assert_error(
            c.env.send(&[token_ix::pause_until(payer, past)], &[]).await,
            TokenError::InvalidPause,
        );
    }
    assert!(!config(&mut c).await.is_paused(now));
    c.env
        .send(&[token_ix::pause_until(payer, now + 3_600)], &[])
        .await
        .unwrap();
    assert_eq!(config(&mut c).await.paused_until, now + 3_600);
    // (The report moves the clock 15 minutes on.)
    c.report(&[(0, 0, 1_000)]).await;
    let ix = token_ix::mint_generation(&c.meters(&[0]));
    assert_error(c.env.send(&[ix], &[]).await, TokenError::Paused);
    c.env.advance_clock(2_700).await;
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 1_000);
}

#[tokio::test]
async fn a_guardian_pauses_minting_under_governance() {
    let mut c = EnergyCampus::new(1).await;
    let council = fixtures::council(&mut c.env).await;
    let payer = c.env.payer();
    let authority = authority_for(energy_token::ID);
    fixtures::hand_over(
        &mut c.env,
        &council,
        token_ix::propose_authority(payer, authority),
        token_ix::accept_authority(authority),
    )
    .await;
    assert_eq!(config(&mut c).await.authority, authority);
    // The bootstrap key no longer can.
    let ix = token_ix::set_paused(payer, true);
    assert_error(c.env.send(&[ix], &[]).await, TokenError::Unauthorized);
    let ix = governance_ix::guardian_pause(
        council.guardian.pubkey(),
        energy_token::ID,
        token_ix::config_address(),
    );
    c.env.send(&[ix], &[&council.guardian]).await.unwrap();
    let now = c.env.now().await;
    assert!(config(&mut c).await.is_paused(now));
    c.report(&[(0, 0, 1_000)]).await;
    let ix = token_ix::mint_generation(&c.meters(&[0]));
    assert_error(c.env.send(&[ix], &[]).await, TokenError::Paused);
    // Unpausing takes a proposal.
    let unpause = token_ix::set_paused(authority, false);
    fixtures::run_proposal(&mut c.env, &council, &unpause).await;
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 1_000);
}

#[tokio::test]
async fn hand_over_failures() {
    let mut c = EnergyCampus::new(1).await;
    let impostor = c.env.funded_keypair(SOL).await;
    for ix in [
        token_ix::set_paused(impostor.pubkey(), true),
        token_ix::propose_authority(impostor.pubkey(), impostor.pubkey()),
    ] {
        assert_error(
            c.env.send(&[ix], &[&impostor]).await,
            TokenError::Unauthorized,
        );
    }
    let payer = c.env.payer();
    let ix = token_ix::propose_authority(payer, payer);
    assert_error(c.env.send(&[ix], &[]).await, TokenError::InvalidAuthority);
    let ix = token_ix::accept_authority(impostor.pubkey());
    assert_error(
        c.env.send(&[ix], &[&impostor]).await,
        TokenError::NotPendingAuthority,
    );
}

// ---- redeem_for_consumption ----

#[tokio::test]
async fn redemption_burns_grid_against_verified_import_never_beyond_it() {
    let mut c = EnergyCampus::new(2).await;
    // Meter 1 exports and sells to meter 0, which imported 6 kWh.
    c.report(&[(0, 6_000, 0), (1, 0, 10_000)]).await;
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[1]))], &[])
        .await
        .unwrap();
    let (seller, buyer) = (c.owners[1].insecure_clone(), c.owners[0].insecure_clone());
    let transfer = spl_token_interface::instruction::transfer(
        &anchor_spl::token::ID,
        &token_ix::ata(&seller.pubkey(), &token_ix::grid_mint()),
        &token_ix::ata(&buyer.pubkey(), &token_ix::grid_mint()),
        &seller.pubkey(),
        &[],
        8_000,
    )
    .unwrap();
    c.env.send(&[transfer], &[&seller]).await.unwrap();
    // Not the owner of meter 0.
    let ix = token_ix::redeem_for_consumption(&c.lfdis[0], seller.pubkey(), 1_000);
    assert_error(
        c.env.send(&[ix], &[&seller]).await,
        TokenError::NotMeterOwner,
    );
    // More than the 6 kWh imported.
    let ix = token_ix::redeem_for_consumption(&c.lfdis[0], buyer.pubkey(), 6_001);
    assert_error(
        c.env.send(&[ix], &[&buyer]).await,
        TokenError::RedemptionExceedsImport,
    );
    let ix = token_ix::redeem_for_consumption(&c.lfdis[0], buyer.pubkey(), 0);
    assert_error(c.env.send(&[ix], &[&buyer]).await, TokenError::ZeroAmount);
    // Up to it, in parts.
    for amount in [4_000, 2_000] {
        let ix = token_ix::redeem_for_consumption(&c.lfdis[0], buyer.pubkey(), amount);
        c.env.send(&[ix], &[&buyer]).await.unwrap();
    }
    let ix = token_ix::redeem_for_consumption(&c.lfdis[0], buyer.pubkey(), 1);
    assert_error(
        c.env.send(&[ix], &[&buyer]).await,
        TokenError::RedemptionExceedsImport,
    );
    assert_eq!(c.grid_balance(0).await, 2_000);
    assert_eq!(c.ledger(0).await.redeemed_wh, 6_000);
    assert_eq!(c.grid_supply().await, 10_000 - 6_000);
    let cfg = config(&mut c).await;
    assert_eq!((cfg.grid_minted_wh, cfg.grid_redeemed_wh), (10_000, 6_000));
    // More import later can be covered again.
    c.report(&[(0, 1_500, 0)]).await;
    let ix = token_ix::redeem_for_consumption(&c.lfdis[0], buyer.pubkey(), 1_500);
    c.env.send(&[ix], &[&buyer]).await.unwrap();
    // Burning more than one holds is refused by SPL Token itself.
    c.report(&[(0, 5_000, 0)]).await;
    let ix = token_ix::redeem_for_consumption(&c.lfdis[0], buyer.pubkey(), 600);
    assert_error(c.env.send(&[ix], &[&buyer]).await, SPL_INSUFFICIENT_FUNDS);
}

// ---- RECs ----

#[tokio::test]
async fn recs_are_issued_per_whole_mwh_with_the_remainder_carried() {
    let mut c = EnergyCampus::new(2).await;
    // 2.4 MWh of export in 15-minute steps of at most 17.875 kWh would take long; give the
    // meter a larger capacity instead.
    let payer = c.env.payer();
    let big = registry::MeterCapacity {
        generation_w: 20_000_000,
        storage_wh: 0,
        max_import_w: 1_000,
        max_discharge_w: 0,
    };
    let ix = registry_ix::update_meter_capacity(payer, &c.lfdis[0], big);
    c.env.send(&[ix], &[]).await.unwrap();
    // The meter now has no battery (the 30 kWh its baseline assumed full of grid energy is
    // cut to the new storage, 0): all 2.43 MWh exported are renewable.
    c.report(&[(0, 0, 2_430_000), (1, 0, 10_000)]).await;
    assert_eq!(c.state(0).await.verified_renewable_wh, 2_430_000);
    let (result, logs) = c
        .env
        .send_with_logs(&[token_ix::issue_rec(&c.meters(&[0, 1]))], &[])
        .await;
    result.unwrap();
    assert_eq!((c.rec_balance(0).await, c.rec_balance(1).await), (2, 0));
    let issued = events::<RecsIssued>(&logs);
    assert_eq!(
        (issued.len(), issued[0].amount, issued[0].total_certified_wh),
        (1, 2, 2_000_000)
    );
    // 2.9 MWh: still 2. 3.0 MWh: 3.
    c.report(&[(0, 0, 500_000)]).await;
    c.env
        .send(&[token_ix::issue_rec(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    assert_eq!(c.rec_balance(0).await, 2);
    c.report(&[(0, 0, 100_000)]).await;
    c.env
        .send(&[token_ix::issue_rec(&c.meters(&[0, 0]))], &[])
        .await
        .unwrap();
    assert_eq!(c.rec_balance(0).await, 3);
    let ledger = c.ledger(0).await;
    assert_eq!(
        (ledger.rec_certified_wh, ledger.recs_issued),
        (3_000_000, 3)
    );
    // GRID is independent: all 3.03 MWh are still mintable.
    c.env
        .send(&[token_ix::mint_generation(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    assert_eq!(c.grid_balance(0).await, 3_030_000);
    assert_eq!(config(&mut c).await.recs_issued, 3);
}

/// An honest building charges its battery from the campus grid at night and discharges it
/// at noon. GRID is minted for all it delivers (grid energy given back included: it is
/// energy delivered when the campus needed it, and its import is redeemed separately); RECs
/// certify only the renewable part, never the grid energy cycled through the battery.
#[tokio::test]
async fn recs_certify_renewable_export_not_grid_energy_cycled_through_a_battery() {
    let mut c = EnergyCampus::new(1).await;
    let big = registry::MeterCapacity {
        generation_w: 20_000_000,
        storage_wh: 2_000_000,
        max_import_w: 10_000_000,
        max_discharge_w: 4_000_000,
    };
    let ix = registry_ix::update_meter_capacity(c.env.payer(), &c.lfdis[0], big);
    c.env.send(&[ix], &[]).await.unwrap();
    // The 30 kWh the meter's first reading assumed to be grid energy go out first.
    c.report(&[(0, 0, 30_000)]).await;
    // Night: 2 MWh from the grid into the battery. Noon: 3 MWh exported, 2 of them from the
    // battery.
    c.report(&[(0, 2_000_000, 0)]).await;
    c.report(&[(0, 0, 3_000_000)]).await;
    let state = c.state(0).await;
    assert_eq!(
        (
            state.verified_import_wh,
            state.verified_export_wh,
            state.verified_renewable_wh
        ),
        (2_000_000, 3_030_000, 1_000_000)
    );
    c.env
        .send(
            &[
                token_ix::issue_rec(&c.meters(&[0])),
                token_ix::mint_generation(&c.meters(&[0])),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(c.rec_balance(0).await, 1);
    assert_eq!(c.grid_balance(0).await, 3_030_000);
}

/// Before, a record's address was the campus-wide next index: two holders retiring at once
/// collided, and anyone could take an index first. Now each holder numbers their own.
#[tokio::test]
async fn two_holders_retiring_at_once_both_succeed_each_with_their_own_record() {
    let mut c = EnergyCampus::new(2).await;
    let big = registry::MeterCapacity {
        generation_w: 20_000_000,
        storage_wh: 0,
        max_import_w: 1_000,
        max_discharge_w: 0,
    };
    for i in 0..2 {
        let ix = registry_ix::update_meter_capacity(c.env.payer(), &c.lfdis[i], big);
        c.env.send(&[ix], &[]).await.unwrap();
    }
    c.report(&[(0, 0, 1_030_000), (1, 0, 2_030_000)]).await;
    c.env
        .send(&[token_ix::issue_rec(&c.meters(&[0, 1]))], &[])
        .await
        .unwrap();
    let (a, b) = (c.owners[0].insecure_clone(), c.owners[1].insecure_clone());
    // Both pick id 0, in one transaction.
    c.env
        .send(
            &[
                token_ix::retire_rec(a.pubkey(), 0, 1, "Library", "2026"),
                token_ix::retire_rec(b.pubkey(), 0, 2, "Gym", "2026"),
            ],
            &[&a, &b],
        )
        .await
        .unwrap();
    let first: Retirement = c
        .env
        .zero_copy(token_ix::retirement_address(&a.pubkey(), 0))
        .await;
    let second: Retirement = c
        .env
        .zero_copy(token_ix::retirement_address(&b.pubkey(), 0))
        .await;
    assert_eq!(
        (first.index, first.holder, first.amount),
        (0, a.pubkey(), 1)
    );
    assert_eq!(
        (second.index, second.holder, second.amount),
        (1, b.pubkey(), 2)
    );
    assert_eq!(first.beneficiary(), "Library");
    assert_eq!(second.beneficiary(), "Gym");
    // Nobody can write into another holder's numbering: the address names the signer.
    let ix = token_ix::retire_rec(a.pubkey(), 1, 1, "X", "Y");
    let mut forged = ix.clone();
    forged.accounts[4].pubkey = token_ix::retirement_address(&b.pubkey(), 1);
    assert_error(
        c.env.send(&[forged], &[&a]).await,
        ErrorCode::ConstraintSeeds,
    );
    assert_eq!(config(&mut c).await.retirement_count, 2);
}

#[tokio::test]
async fn retiring_recs_burns_them_and_writes_a_permanent_record() {
    let mut c = EnergyCampus::new(1).await;
    let payer = c.env.payer();
    let big = registry::MeterCapacity {
        generation_w: 20_000_000,
        storage_wh: 0,
        max_import_w: 1_000,
        max_discharge_w: 0,
    };
    let ix = registry_ix::update_meter_capacity(payer, &c.lfdis[0], big);
    c.env.send(&[ix], &[]).await.unwrap();
    // 5 MWh renewable (after the 30 kWh counted as grid energy at the first reading).
    c.report(&[(0, 0, 5_030_000)]).await;
    c.env
        .send(&[token_ix::issue_rec(&c.meters(&[0]))], &[])
        .await
        .unwrap();
    let holder = c.owners[0].insecure_clone();
    let (result, logs) = c
        .env
        .send_with_logs(
            &[token_ix::retire_rec(
                holder.pubkey(),
                0,
                2,
                "Physics Department",
                "Scope 2 reporting 2026",
            )],
            &[&holder],
        )
        .await;
    result.unwrap();
    assert_eq!(c.rec_balance(0).await, 3);
    let record: Retirement = c
        .env
        .zero_copy(token_ix::retirement_address(&holder.pubkey(), 0))
        .await;
    assert_eq!(
        (record.index, record.id, record.holder, record.amount),
        (0, 0, holder.pubkey(), 2)
    );
    assert_eq!(record.beneficiary(), "Physics Department");
    assert_eq!(record.reason(), "Scope 2 reporting 2026");
    assert_eq!(record.retired_at, c.env.now().await);
    // The read_retirement view (its values are checked on SBF).
    c.env
        .simulate(&[token_ix::read_retirement(&holder.pubkey(), 0)])
        .await
        .unwrap();
    // No record 1 yet (an empty, system-owned address).
    assert_error(
        c.env
            .simulate(&[token_ix::read_retirement(&holder.pubkey(), 1)])
            .await,
        ErrorCode::AccountOwnedByWrongProgram,
    );
    let retired = events::<RecsRetired>(&logs);
    assert_eq!((retired[0].index, retired[0].amount), (0, 2));
    let cfg = config(&mut c).await;
    assert_eq!((cfg.retirement_count, cfg.recs_retired), (1, 2));
    assert_eq!(c.env.mint_info(token_ix::rec_mint()).await.supply, 3);

    // An id is used once per holder.
    let ix = token_ix::retire_rec(holder.pubkey(), 0, 1, "X", "Y");
    assert_error(
        c.env.send(&[ix], &[&holder]).await,
        TokenError::RetirementIdUsed,
    );
    // Texts must be present and bounded; amounts positive and held.
    for (beneficiary, reason) in [("", "why"), ("who", ""), (&*"b".repeat(65), "why")] {
        let ix = token_ix::retire_rec(holder.pubkey(), 1, 1, beneficiary, reason);
        assert_error(
            c.env.send(&[ix], &[&holder]).await,
            TokenError::InvalidRetirementText,
        );
    }
    let ix = token_ix::retire_rec(holder.pubkey(), 1, 0, "who", "why");
    assert_error(c.env.send(&[ix], &[&holder]).await, TokenError::ZeroAmount);
    let ix = token_ix::retire_rec(holder.pubkey(), 1, 4, "who", "why");
    assert_error(c.env.send(&[ix], &[&holder]).await, SPL_INSUFFICIENT_FUNDS);
    assert!(
        !c.env
            .account_exists(token_ix::retirement_address(&holder.pubkey(), 1))
            .await
    );
    // Retirement works while paused.
    c.env
        .send(&[token_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    let ix = token_ix::retire_rec(holder.pubkey(), 1, 3, "Campus", "Annual");
    c.env.send(&[ix], &[&holder]).await.unwrap();
    assert_eq!(c.env.mint_info(token_ix::rec_mint()).await.supply, 0);
}

// ---- size ----

/// A compute-unit limit instruction, as the keeper sends with every crank.
fn compute_limit(units: u32) -> solana_instruction::Instruction {
    let mut data = vec![2u8];
    data.extend_from_slice(&units.to_le_bytes());
    solana_instruction::Instruction {
        program_id: solana_sdk_ids::compute_budget::ID,
        accounts: vec![],
        data,
    }
}

#[tokio::test]
async fn meters_per_mint_transaction() {
    let env = TestEnv::start().await;
    // With every account of the call in a lookup table, a meter costs 8 bytes of the
    // transaction, so the account limit binds first: at most 64 accounts per transaction
    // (128 once the cluster activates `increase_tx_account_lock_limit`).
    let build = |n: u8| {
        let meters: Vec<_> = (0..n)
            .map(|i| (test_lfdi(i), anchor_lang::prelude::Pubkey::new_unique()))
            .collect();
        let ix = token_ix::mint_generation(&meters);
        let table: Vec<_> = ix
            .accounts
            .iter()
            .map(|m| m.pubkey)
            .filter(|k| *k != anchor_spl::token::ID)
            .collect();
        let tx = env.v0_transaction(
            &[compute_limit(200_000), ix],
            &[],
            anchor_lang::prelude::Pubkey::new_unique(),
            &table,
        );
        let accounts = tx.message.static_account_keys().len()
            + tx.message
                .address_table_lookups()
                .map(|l| {
                    l.iter()
                        .map(|t| t.writable_indexes.len() + t.readonly_indexes.len())
                        .sum()
                })
                .unwrap_or(0);
        (gridtokenx_tests::versioned_transaction_size(&tx), accounts)
    };
    let fits = |n: u8| {
        let (size, accounts) = build(n);
        size <= gridtokenx_tests::MAX_TRANSACTION_SIZE && accounts <= 64
    };
    let most = (1..=64u8).take_while(|&n| fits(n)).last().unwrap();
    assert_eq!(most, 14);
    let (size, accounts) = build(14);
    assert_eq!((size, accounts), (size, 63));
    assert!(size < 700, "{size}");
    // So the 25 campus meters are minted in two transactions.
    assert_eq!(25usize.div_ceil(usize::from(most)), 2);
}

#[tokio::test]
async fn fourteen_meters_mint_in_one_transaction() {
    let mut c = EnergyCampus::new(14).await;
    let deltas: Vec<(usize, u64, u64)> = (0..14).map(|i| (i, 0, 1_000 + i as u64)).collect();
    c.report(&deltas).await;
    let ix = token_ix::mint_generation(&c.meters(&(0..14).collect::<Vec<_>>()));
    let table: Vec<_> = ix
        .accounts
        .iter()
        .map(|m| m.pubkey)
        .filter(|k| *k != anchor_spl::token::ID)
        .collect();
    let alt = c.env.plant_lookup_table(table.clone());
    let tx = c
        .env
        .v0_transaction(&[compute_limit(200_000), ix], &[], alt, &table);
    c.env.send_v0(tx).await.unwrap();
    for i in 0..14 {
        assert_eq!(c.grid_balance(i).await, 1_000 + i as u64);
    }
}
