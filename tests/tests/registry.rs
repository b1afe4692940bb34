//! Registry program: every instruction's success path and each way it must fail.
use anchor_lang::error::ErrorCode;
use gridtokenx_tests::fixtures::{self, SOL};
use gridtokenx_tests::registry_ix::{self, campus_address, meter_address, test_lfdi};
use gridtokenx_tests::{
    anchor_account_data, assert_error, replace_account, transaction_size, without_signature,
    TestEnv, MAX_TRANSACTION_SIZE,
};
use registry::identity::sfdi_from_lfdi;
use registry::{BuildingKind, Campus, Meter, MeterCapacity, MeterStatus, RegistryError};
use solana_keypair::Keypair;
use solana_signer::Signer;

async fn campus_env() -> TestEnv {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    env
}

// ---- initialize_campus ----

#[tokio::test]
async fn initialize_campus_sets_bootstrap_authority() {
    let mut env = campus_env().await;
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.authority, env.payer());
    assert_eq!(campus.name, "Test Campus");
    assert_eq!(campus.meter_count, 0);
    assert_eq!(campus.paused_until, 0);
    assert_eq!(env.account_owner(campus_address()).await, registry::ID);
}

#[tokio::test]
async fn initialize_campus_twice_fails() {
    let mut env = campus_env().await;
    let payer = env.payer();
    let result = env
        .send(&[registry_ix::initialize_campus(payer, "Again")], &[])
        .await;
    // System program: AccountAlreadyInUse.
    assert_error(result, 0u32);
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.name, "Test Campus");
}

#[tokio::test]
async fn initialize_campus_needs_the_upgrade_authority() {
    let mut env = TestEnv::start().await;
    // Whoever calls first after deployment is not enough: only the deployer may.
    let squatter = env.funded_keypair(SOL).await;
    let ix = registry_ix::initialize_campus(squatter.pubkey(), "Mine");
    assert_error(
        env.send(&[ix], &[&squatter]).await,
        RegistryError::NotUpgradeAuthority,
    );
    // A ProgramData account at another address (here: the governance program's) is refused.
    let ix = replace_account(
        registry_ix::initialize_campus(env.payer(), "Mine"),
        gridtokenx_tests::program_data_address(registry::ID),
        gridtokenx_tests::program_data_address(governance::ID),
    );
    assert_error(env.send(&[ix], &[]).await, ErrorCode::ConstraintSeeds);
    // An immutable registry (no upgrade authority) cannot be initialised by anyone.
    env.plant_program_data(registry::ID, None);
    let ix = registry_ix::initialize_campus(env.payer(), "Mine");
    assert_error(
        env.send(&[ix], &[]).await,
        RegistryError::NotUpgradeAuthority,
    );
    assert!(!env.account_exists(campus_address()).await);
}

#[tokio::test]
async fn initialize_campus_rejects_bad_names() {
    let mut env = TestEnv::start().await;
    let payer = env.payer();
    for name in ["", &"x".repeat(33)] {
        let result = env
            .send(&[registry_ix::initialize_campus(payer, name)], &[])
            .await;
        assert_error(result, RegistryError::InvalidCampusName);
    }
    assert!(!env.account_exists(campus_address()).await);
}

// ---- register_meter ----

#[tokio::test]
async fn register_meter_binds_lfdi_to_owner_with_derived_sfdi() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    let owner = fixtures::meter(&mut env, lfdi).await;
    let second = fixtures::meter(&mut env, test_lfdi(2)).await;

    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.lfdi, lfdi);
    assert_eq!(meter.sfdi, sfdi_from_lfdi(&lfdi));
    assert_eq!(meter.owner, owner.pubkey());
    assert_eq!(meter.building_kind, BuildingKind::Academic);
    assert_eq!(meter.capacity, registry_ix::default_capacity());
    assert_eq!(meter.status, MeterStatus::Active);
    assert_eq!(meter.index, 0);
    assert_eq!(meter.registered_at, env.now().await);
    assert_eq!(meter.status_changed_at, meter.registered_at);
    assert_eq!(meter.capacity_changed_at, meter.registered_at);
    assert_eq!(meter.active_since(), Some(meter.registered_at));

    let meter2: Meter = env.account(meter_address(&test_lfdi(2))).await;
    assert_eq!(meter2.index, 1);
    assert_eq!(meter2.owner, second.pubkey());
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.meter_count, 2);
}

#[tokio::test]
async fn register_meter_twice_with_same_lfdi_fails() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    fixtures::meter(&mut env, lfdi).await;
    let other = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(env.payer(), other.pubkey(), lfdi);
    assert_error(
        env.send(&[ix], &[&other]).await,
        RegistryError::MeterAlreadyRegistered,
    );
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.meter_count, 1);
}

#[tokio::test]
async fn register_meter_rejects_mismatched_sfdi() {
    let mut env = campus_env().await;
    let owner = env.funded_keypair(SOL).await;
    let lfdi = test_lfdi(1);
    let wrong = sfdi_from_lfdi(&lfdi) + 1;
    let ix = registry_ix::register_meter_with(
        env.payer(),
        owner.pubkey(),
        lfdi,
        wrong,
        BuildingKind::Academic,
        registry_ix::default_capacity(),
    );
    assert_error(
        env.send(&[ix], &[&owner]).await,
        RegistryError::SfdiMismatch,
    );
}

#[tokio::test]
async fn register_meter_rejects_zero_lfdi() {
    let mut env = campus_env().await;
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(env.payer(), owner.pubkey(), [0u8; 20]);
    assert_error(env.send(&[ix], &[&owner]).await, RegistryError::InvalidLfdi);
}

#[tokio::test]
async fn register_meter_rejects_out_of_range_capacity() {
    let mut env = campus_env().await;
    let owner = env.funded_keypair(SOL).await;
    let lfdi = test_lfdi(1);
    let bad = [
        MeterCapacity {
            generation_w: MeterCapacity::MAX_VALUE + 1,
            ..registry_ix::default_capacity()
        },
        MeterCapacity {
            generation_w: 0,
            storage_wh: 10,
            max_import_w: 0,
            max_discharge_w: 0,
        },
        // Discharge power without a battery.
        MeterCapacity {
            storage_wh: 0,
            max_discharge_w: 1,
            ..registry_ix::default_capacity()
        },
        MeterCapacity {
            max_discharge_w: MeterCapacity::MAX_VALUE + 1,
            ..registry_ix::default_capacity()
        },
    ];
    for (i, capacity) in bad.into_iter().enumerate() {
        let lfdi = test_lfdi(10 + i as u8);
        let ix = registry_ix::register_meter_with(
            env.payer(),
            owner.pubkey(),
            lfdi,
            sfdi_from_lfdi(&lfdi),
            BuildingKind::Academic,
            capacity,
        );
        assert_error(
            env.send(&[ix], &[&owner]).await,
            RegistryError::InvalidCapacity,
        );
    }
    assert!(!env.account_exists(meter_address(&lfdi)).await);
}

#[tokio::test]
async fn register_meter_needs_the_campus_authority() {
    let mut env = campus_env().await;
    let owner = env.funded_keypair(SOL).await;
    let impostor = Keypair::new();
    let ix = registry_ix::register_meter(impostor.pubkey(), owner.pubkey(), test_lfdi(1));
    assert_error(
        env.send(&[ix], &[&owner, &impostor]).await,
        RegistryError::Unauthorized,
    );
}

#[tokio::test]
async fn register_meter_needs_the_authority_signature() {
    let mut env = TestEnv::start().await;
    // The authority here is a separate key so the transaction can leave its signature out.
    let authority = env.funded_keypair(SOL).await;
    env.plant_program_data(registry::ID, Some(authority.pubkey()));
    env.send(
        &[registry_ix::initialize_campus(authority.pubkey(), "C")],
        &[&authority],
    )
    .await
    .unwrap();
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(authority.pubkey(), owner.pubkey(), test_lfdi(1));
    let ix = without_signature(ix, authority.pubkey());
    assert_error(
        env.send(&[ix], &[&owner]).await,
        ErrorCode::AccountNotSigner,
    );
}

#[tokio::test]
async fn register_meter_needs_the_owner_signature() {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    let owner = Keypair::new();
    let ix = registry_ix::register_meter(env.payer(), owner.pubkey(), test_lfdi(1));
    let ix = without_signature(ix, owner.pubkey());
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotSigner);
}

#[tokio::test]
async fn register_meter_refused_while_paused() {
    let mut env = campus_env().await;
    env.send(&[registry_ix::set_paused(env.payer(), true)], &[])
        .await
        .unwrap();
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(env.payer(), owner.pubkey(), test_lfdi(1));
    assert_error(env.send(&[ix], &[&owner]).await, RegistryError::Paused);
}

#[tokio::test]
async fn register_meter_rejects_meter_account_at_wrong_address() {
    let mut env = campus_env().await;
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(env.payer(), owner.pubkey(), test_lfdi(1));
    let ix = replace_account(
        ix,
        meter_address(&test_lfdi(1)),
        meter_address(&test_lfdi(2)),
    );
    assert_error(env.send(&[ix], &[&owner]).await, ErrorCode::ConstraintSeeds);
}

fn fake_campus(authority: anchor_lang::prelude::Pubkey) -> Campus {
    Campus {
        authority,
        pending_authority: anchor_lang::prelude::Pubkey::default(),
        meter_count: 0,
        paused_until: 0,
        bump: 255,
        name: "Fake".into(),
    }
}

#[tokio::test]
async fn register_meter_rejects_campus_at_wrong_address() {
    let mut env = campus_env().await;
    // A well-formed campus owned by the registry, but not at the campus PDA, naming an
    // attacker as authority.
    let attacker = env.funded_keypair(SOL).await;
    let fake = Keypair::new().pubkey();
    env.plant_account(
        fake,
        registry::ID,
        anchor_account_data(&fake_campus(attacker.pubkey())),
    );
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(attacker.pubkey(), owner.pubkey(), test_lfdi(1));
    let ix = replace_account(ix, campus_address(), fake);
    assert_error(
        env.send(&[ix], &[&owner, &attacker]).await,
        ErrorCode::ConstraintSeeds,
    );
}

#[tokio::test]
async fn register_meter_rejects_campus_owned_by_another_program() {
    let mut env = campus_env().await;
    let attacker = env.funded_keypair(SOL).await;
    let fake = Keypair::new().pubkey();
    env.plant_account(
        fake,
        governance::ID,
        anchor_account_data(&fake_campus(attacker.pubkey())),
    );
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(attacker.pubkey(), owner.pubkey(), test_lfdi(1));
    let ix = replace_account(ix, campus_address(), fake);
    assert_error(
        env.send(&[ix], &[&owner, &attacker]).await,
        ErrorCode::AccountOwnedByWrongProgram,
    );
}

#[tokio::test]
async fn register_meter_transaction_fits_in_one_packet() {
    let mut env = TestEnv::start().await;
    // Worst case: payer, campus authority and owner are three different signers.
    let authority = env.funded_keypair(SOL).await;
    env.plant_program_data(registry::ID, Some(authority.pubkey()));
    env.send(
        &[registry_ix::initialize_campus(authority.pubkey(), "C")],
        &[&authority],
    )
    .await
    .unwrap();
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(authority.pubkey(), owner.pubkey(), test_lfdi(1));
    let tx = env.transaction(std::slice::from_ref(&ix), &[&authority, &owner]);
    let size = transaction_size(&tx);
    assert_eq!(tx.signatures.len(), 3);
    // payer, authority, owner, campus, meter, System program, registry.
    assert_eq!(tx.message.account_keys.len(), 7);
    assert!(
        size <= MAX_TRANSACTION_SIZE,
        "register_meter tx is {size} bytes"
    );
    // Pin the size so a layout change is noticed: 3 signatures, 7 keys, 69 bytes of data.
    assert_eq!(ix.data.len(), 8 + 20 + 8 + 1 + 32);
    assert_eq!(size, 531);
    env.send(&[ix], &[&authority, &owner]).await.unwrap();
}

// ---- set_meter_status ----

#[tokio::test]
async fn set_meter_status_suspends_reactivates_and_retires() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    fixtures::meter(&mut env, lfdi).await;
    let payer = env.payer();
    for status in [
        MeterStatus::Suspended,
        MeterStatus::Active,
        MeterStatus::Retired,
    ] {
        env.advance_clock(600).await;
        env.send(&[registry_ix::set_meter_status(payer, &lfdi, status)], &[])
            .await
            .unwrap();
        let meter: Meter = env.account(meter_address(&lfdi)).await;
        assert_eq!(meter.status, status);
        // When it changed: the oracle verifies nothing measured before a reactivation.
        assert_eq!(meter.status_changed_at, env.now().await);
        assert!(meter.status_changed_at > meter.registered_at);
    }
}

#[tokio::test]
async fn set_meter_status_needs_the_campus_authority() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    let owner = fixtures::meter(&mut env, lfdi).await;
    // Not even the meter's owner may change its status.
    let ix = registry_ix::set_meter_status(owner.pubkey(), &lfdi, MeterStatus::Suspended);
    assert_error(
        env.send(&[ix], &[&owner]).await,
        RegistryError::Unauthorized,
    );
    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.status, MeterStatus::Active);
}

#[tokio::test]
async fn set_meter_status_rejects_no_op_and_retired() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    fixtures::meter(&mut env, lfdi).await;
    let payer = env.payer();
    let ix = registry_ix::set_meter_status(payer, &lfdi, MeterStatus::Active);
    assert_error(env.send(&[ix], &[]).await, RegistryError::StatusUnchanged);
    env.send(
        &[registry_ix::set_meter_status(
            payer,
            &lfdi,
            MeterStatus::Retired,
        )],
        &[],
    )
    .await
    .unwrap();
    let ix = registry_ix::set_meter_status(payer, &lfdi, MeterStatus::Active);
    assert_error(env.send(&[ix], &[]).await, RegistryError::MeterRetired);
}

#[tokio::test]
async fn set_meter_status_rejects_unregistered_meter() {
    let mut env = campus_env().await;
    let ix = registry_ix::set_meter_status(env.payer(), &test_lfdi(9), MeterStatus::Suspended);
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotInitialized);
}

// ---- update_meter_capacity ----

#[tokio::test]
async fn update_meter_capacity_changes_capacity() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    fixtures::meter(&mut env, lfdi).await;
    env.advance_clock(3_600).await;
    let capacity = MeterCapacity {
        generation_w: 70_000,
        storage_wh: 50_000,
        max_import_w: 90_000,
        max_discharge_w: 25_000,
    };
    env.send(
        &[registry_ix::update_meter_capacity(
            env.payer(),
            &lfdi,
            capacity,
        )],
        &[],
    )
    .await
    .unwrap();
    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.capacity, capacity);
    // The change starts the oracle's new period (status unchanged).
    let now = env.now().await;
    assert_eq!(meter.capacity_changed_at, now);
    assert!(meter.status_changed_at < now);
    assert_eq!(meter.active_since(), Some(now));
}

#[tokio::test]
async fn update_meter_capacity_failures() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    let owner = fixtures::meter(&mut env, lfdi).await;
    let payer = env.payer();
    let capacity = MeterCapacity {
        generation_w: 1,
        storage_wh: 1,
        max_import_w: 1,
        max_discharge_w: 1,
    };

    let ix = registry_ix::update_meter_capacity(owner.pubkey(), &lfdi, capacity);
    assert_error(
        env.send(&[ix], &[&owner]).await,
        RegistryError::Unauthorized,
    );

    let invalid = MeterCapacity {
        max_import_w: MeterCapacity::MAX_VALUE + 1,
        ..capacity
    };
    let ix = registry_ix::update_meter_capacity(payer, &lfdi, invalid);
    assert_error(env.send(&[ix], &[]).await, RegistryError::InvalidCapacity);

    env.send(
        &[registry_ix::set_meter_status(
            payer,
            &lfdi,
            MeterStatus::Retired,
        )],
        &[],
    )
    .await
    .unwrap();
    let ix = registry_ix::update_meter_capacity(payer, &lfdi, capacity);
    assert_error(env.send(&[ix], &[]).await, RegistryError::MeterRetired);

    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.capacity, registry_ix::default_capacity());
}

// ---- transfer_meter_ownership ----

#[tokio::test]
async fn transfer_meter_ownership_moves_the_meter() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    let owner = fixtures::meter(&mut env, lfdi).await;
    let new_owner = Keypair::new();
    let ix = registry_ix::transfer_meter_ownership(&lfdi, owner.pubkey(), new_owner.pubkey());
    env.send(&[ix], &[&owner, &new_owner]).await.unwrap();
    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.owner, new_owner.pubkey());
}

#[tokio::test]
async fn transfer_meter_ownership_needs_the_current_owner() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    let owner = fixtures::meter(&mut env, lfdi).await;
    let thief = Keypair::new();
    let ix = registry_ix::transfer_meter_ownership(&lfdi, thief.pubkey(), thief.pubkey());
    // Same key twice: the owner check fires first.
    assert_error(
        env.send(&[ix], &[&thief]).await,
        RegistryError::NotMeterOwner,
    );
    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.owner, owner.pubkey());
}

#[tokio::test]
async fn transfer_meter_ownership_needs_the_new_owner_signature() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    let owner = fixtures::meter(&mut env, lfdi).await;
    let new_owner = Keypair::new();
    let ix = registry_ix::transfer_meter_ownership(&lfdi, owner.pubkey(), new_owner.pubkey());
    let ix = without_signature(ix, new_owner.pubkey());
    assert_error(
        env.send(&[ix], &[&owner]).await,
        ErrorCode::AccountNotSigner,
    );
}

#[tokio::test]
async fn transfer_meter_ownership_rejects_same_owner_paused_and_retired() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    let owner = fixtures::meter(&mut env, lfdi).await;
    let payer = env.payer();
    let ix = registry_ix::transfer_meter_ownership(&lfdi, owner.pubkey(), owner.pubkey());
    assert_error(env.send(&[ix], &[&owner]).await, RegistryError::SameOwner);

    let new_owner = Keypair::new();
    let transfer = registry_ix::transfer_meter_ownership(&lfdi, owner.pubkey(), new_owner.pubkey());
    env.send(&[registry_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    assert_error(
        env.send(std::slice::from_ref(&transfer), &[&owner, &new_owner])
            .await,
        RegistryError::Paused,
    );
    env.send(&[registry_ix::set_paused(payer, false)], &[])
        .await
        .unwrap();

    env.send(
        &[registry_ix::set_meter_status(
            payer,
            &lfdi,
            MeterStatus::Retired,
        )],
        &[],
    )
    .await
    .unwrap();
    // A different new owner, so the bank does not treat this as the earlier transaction.
    let other = Keypair::new();
    let ix = registry_ix::transfer_meter_ownership(&lfdi, owner.pubkey(), other.pubkey());
    assert_error(
        env.send(&[ix], &[&owner, &other]).await,
        RegistryError::MeterRetired,
    );
}

// ---- propose_authority / accept_authority ----

#[tokio::test]
async fn hand_over_takes_a_proposal_and_an_acceptance() {
    let mut env = campus_env().await;
    let payer = env.payer();
    let successor = env.funded_keypair(SOL).await;
    env.send(
        &[registry_ix::propose_authority(payer, successor.pubkey())],
        &[],
    )
    .await
    .unwrap();
    // Proposed only: the old key still rules.
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.authority, payer);
    assert_eq!(campus.pending_authority, successor.pubkey());
    env.send(&[registry_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    env.send(
        &[registry_ix::accept_authority(successor.pubkey())],
        &[&successor],
    )
    .await
    .unwrap();
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.authority, successor.pubkey());
    assert_eq!(
        campus.pending_authority,
        anchor_lang::prelude::Pubkey::default()
    );
    let ix = registry_ix::set_paused(payer, false);
    assert_error(env.send(&[ix], &[]).await, RegistryError::Unauthorized);
    env.send(
        &[registry_ix::set_paused(successor.pubkey(), false)],
        &[&successor],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn hand_over_failures() {
    let mut env = campus_env().await;
    let payer = env.payer();
    let impostor = env.funded_keypair(SOL).await;
    let ix = registry_ix::propose_authority(impostor.pubkey(), impostor.pubkey());
    assert_error(
        env.send(&[ix], &[&impostor]).await,
        RegistryError::Unauthorized,
    );
    for bad in [anchor_lang::prelude::Pubkey::default(), payer] {
        let ix = registry_ix::propose_authority(payer, bad);
        assert_error(env.send(&[ix], &[]).await, RegistryError::InvalidAuthority);
    }
    // Nobody proposed: nobody can accept.
    let ix = registry_ix::accept_authority(impostor.pubkey());
    assert_error(
        env.send(&[ix], &[&impostor]).await,
        RegistryError::NotPendingAuthority,
    );
    // Only the proposed key can accept, and only with its signature.
    let successor = env.funded_keypair(SOL).await;
    env.send(
        &[registry_ix::propose_authority(payer, successor.pubkey())],
        &[],
    )
    .await
    .unwrap();
    let ix = registry_ix::accept_authority(impostor.pubkey());
    assert_error(
        env.send(&[ix], &[&impostor]).await,
        RegistryError::NotPendingAuthority,
    );
    let ix = without_signature(
        registry_ix::accept_authority(successor.pubkey()),
        successor.pubkey(),
    );
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotSigner);
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.authority, payer);
}

// ---- set_paused ----

#[tokio::test]
async fn set_paused_toggles_and_needs_the_authority() {
    let mut env = campus_env().await;
    let payer = env.payer();
    env.send(&[registry_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        program_common::pause::INDEFINITELY
    );
    let impostor = env.funded_keypair(SOL).await;
    let ix = registry_ix::set_paused(impostor.pubkey(), false);
    assert_error(
        env.send(&[ix], &[&impostor]).await,
        RegistryError::Unauthorized,
    );
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        program_common::pause::INDEFINITELY
    );
    env.send(&[registry_ix::set_paused(payer, false)], &[])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        0
    );
}

#[tokio::test]
async fn admin_actions_still_work_while_paused() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    fixtures::meter(&mut env, lfdi).await;
    let payer = env.payer();
    env.send(&[registry_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    // Suspending a misbehaving meter is exactly what one does during an incident.
    env.send(
        &[registry_ix::set_meter_status(
            payer,
            &lfdi,
            MeterStatus::Suspended,
        )],
        &[],
    )
    .await
    .unwrap();
    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.status, MeterStatus::Suspended);
}

#[tokio::test]
async fn register_meter_works_when_its_address_was_prefunded() {
    let mut env = campus_env().await;
    let lfdi = test_lfdi(1);
    // Anyone can send lamports to a meter's future address; that must not block registration.
    let ix = anchor_lang::solana_program::system_instruction::transfer(
        &env.payer(),
        &meter_address(&lfdi),
        5_000_000,
    );
    env.send(&[ix], &[]).await.unwrap();
    fixtures::meter(&mut env, lfdi).await;
    let meter: Meter = env.account(meter_address(&lfdi)).await;
    assert_eq!(meter.lfdi, lfdi);
}
