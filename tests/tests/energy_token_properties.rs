//! Conservation of GRID and RECs under random sequences of oracle readings (plausible or
//! not), mints, REC issues, redemptions, transfers and suspensions: after every step, the
//! GRID supply equals what was minted minus what was redeemed and equals the sum of the
//! holders' balances; no meter has been minted more than its verified export, covered more
//! than its verified import, or certified more RECs than whole MWh it verified.
use energy_token::TokenConfig;
use gridtokenx_tests::energy_campus::EnergyCampus;
use gridtokenx_tests::energy_token_ix as token_ix;
use gridtokenx_tests::registry_ix;
use proptest::prelude::*;
use registry::MeterStatus;
use solana_signer::Signer;

const METERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Report {
        meter: usize,
        import: u64,
        export: u64,
    },
    Mint {
        meters: Vec<usize>,
    },
    IssueRecs {
        meters: Vec<usize>,
    },
    Redeem {
        meter: usize,
        amount: u64,
    },
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    SetActive {
        meter: usize,
        active: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let meter = 0..METERS;
    let meters = proptest::collection::vec(0..METERS, 1..5);
    prop_oneof![
        4 => (meter.clone(), 0u64..30_000, 0u64..600_000)
            .prop_map(|(meter, import, export)| Op::Report { meter, import, export }),
        2 => meters.clone().prop_map(|meters| Op::Mint { meters }),
        1 => meters.prop_map(|meters| Op::IssueRecs { meters }),
        2 => (meter.clone(), 1u64..40_000).prop_map(|(meter, amount)| Op::Redeem { meter, amount }),
        2 => (meter.clone(), meter.clone(), 1u64..80_000)
            .prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        1 => (meter, any::<bool>()).prop_map(|(meter, active)| Op::SetActive { meter, active }),
    ]
}

async fn check(c: &mut EnergyCampus) -> Result<(), TestCaseError> {
    let config: TokenConfig = c.env.zero_copy(token_ix::config_address()).await;
    let supply = c.grid_supply().await;
    prop_assert_eq!(supply, config.grid_minted_wh - config.grid_redeemed_wh);
    let mut balances = 0;
    let (mut minted, mut redeemed, mut recs) = (0, 0, 0);
    for i in 0..METERS {
        balances += c.grid_balance(i).await;
        let state = c.state(i).await;
        let ledger = c.ledger(i).await;
        prop_assert!(ledger.grid_minted_wh <= state.verified_export_wh);
        prop_assert!(ledger.redeemed_wh <= state.verified_import_wh);
        // RECs certify renewable export only, which never exceeds the export.
        prop_assert!(state.verified_renewable_wh <= state.verified_export_wh);
        prop_assert!(ledger.recs_issued <= state.verified_renewable_wh / 1_000_000);
        prop_assert_eq!(ledger.recs_issued * 1_000_000, ledger.rec_certified_wh);
        minted += ledger.grid_minted_wh;
        redeemed += ledger.redeemed_wh;
        recs += ledger.recs_issued;
    }
    prop_assert_eq!(balances, supply);
    prop_assert_eq!(minted, config.grid_minted_wh);
    prop_assert_eq!(redeemed, config.grid_redeemed_wh);
    prop_assert_eq!(recs, config.recs_issued);
    prop_assert_eq!(c.env.mint_info(token_ix::rec_mint()).await.supply, recs);
    Ok(())
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut c = EnergyCampus::new(METERS as u8).await;
    // Meter 0 is a large solar field (2 MW) so that RECs come into play.
    let payer = c.env.payer();
    let field = registry::MeterCapacity {
        generation_w: 2_000_000,
        storage_wh: 0,
        max_import_w: 100_000,
        max_discharge_w: 0,
    };
    c.env
        .send(
            &[registry_ix::update_meter_capacity(
                payer,
                &c.lfdis[0],
                field,
            )],
            &[],
        )
        .await
        .unwrap();
    for op in ops {
        match op {
            Op::Report {
                meter,
                import,
                export,
            } => c.report(&[(meter, import, export)]).await,
            Op::Mint { meters } => {
                let ix = token_ix::mint_generation(&c.meters(&meters));
                c.env.send(&[ix], &[]).await.unwrap();
            }
            Op::IssueRecs { meters } => {
                let ix = token_ix::issue_rec(&c.meters(&meters));
                c.env.send(&[ix], &[]).await.unwrap();
            }
            Op::Redeem { meter, amount } => {
                let owner = c.owners[meter].insecure_clone();
                let ix = token_ix::redeem_for_consumption(&c.lfdis[meter], owner.pubkey(), amount);
                // Refused when it exceeds the uncovered import or the balance.
                let _ = c.env.send(&[ix], &[&owner]).await;
            }
            Op::Transfer { from, to, amount } => {
                let owner = c.owners[from].insecure_clone();
                let to_owner = c.owner(to);
                let ix = spl_token_interface::instruction::transfer(
                    &anchor_spl::token::ID,
                    &token_ix::ata(&owner.pubkey(), &token_ix::grid_mint()),
                    &token_ix::ata(&to_owner, &token_ix::grid_mint()),
                    &owner.pubkey(),
                    &[],
                    amount,
                )
                .unwrap();
                let _ = c.env.send(&[ix], &[&owner]).await;
            }
            Op::SetActive { meter, active } => {
                let status = if active {
                    MeterStatus::Active
                } else {
                    MeterStatus::Suspended
                };
                let ix = registry_ix::set_meter_status(payer, &c.lfdis[meter], status);
                // Refused when unchanged.
                let _ = c.env.send(&[ix], &[]).await;
            }
        }
        check(&mut c).await?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn grid_and_recs_are_conserved(ops in proptest::collection::vec(op(), 1..30)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops))?;
    }
}
