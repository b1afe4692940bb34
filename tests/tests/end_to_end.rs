//! From bootstrap to governed operation: the registry is handed to the council, and a meter
//! is suspended through a proposal that waits out its timelock.
use governance::GovernanceError;
use governance::{Proposal, ProposalStatus};
use gridtokenx_tests::fixtures::{self, TIMELOCK};
use gridtokenx_tests::governance_ix::{self, authority_for, proposal_address};
use gridtokenx_tests::registry_ix::{self, campus_address, meter_address, test_lfdi};
use gridtokenx_tests::{assert_error, TestEnv};
use registry::{Campus, Meter, MeterStatus, RegistryError};
use solana_signer::Signer;

#[tokio::test]
async fn suspend_a_meter_through_governance_after_the_timelock() {
    let mut env = TestEnv::start().await;

    // Bootstrap: the deployer creates the campus and registers the buildings' meters.
    fixtures::campus(&mut env).await;
    let lfdis: Vec<_> = (0..3).map(test_lfdi).collect();
    for lfdi in &lfdis {
        fixtures::meter(&mut env, *lfdi).await;
    }
    let council = fixtures::council(&mut env).await;

    // Hand-over in two steps: the deployer proposes the registry's governance authority,
    // and the council accepts through proposal 0. From then on only governance rules.
    let payer = env.payer();
    let authority = authority_for(registry::ID);
    env.send(&[registry_ix::propose_authority(payer, authority)], &[])
        .await
        .unwrap();
    let accept = registry_ix::accept_authority(authority);
    fixtures::approved_proposal(&mut env, &council, 0, &accept).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(payer, 0, &accept)], &[])
        .await
        .unwrap();
    let campus: Campus = env.account(campus_address()).await;
    assert_eq!(campus.authority, authority);
    let ix = registry_ix::set_meter_status(payer, &lfdis[1], MeterStatus::Suspended);
    assert_error(env.send(&[ix], &[]).await, RegistryError::Unauthorized);

    // The council proposes and approves suspending meter 1.
    let suspend = registry_ix::set_meter_status(authority, &lfdis[1], MeterStatus::Suspended);
    fixtures::approved_proposal(&mut env, &council, 1, &suspend).await;
    let approved_at = env
        .account::<Proposal>(proposal_address(1))
        .await
        .approved_at;

    // Too early: one second before the timelock ends.
    env.advance_clock(i64::from(TIMELOCK) - 1).await;
    let executor = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::execute(executor.pubkey(), 1, &suspend);
    assert_error(
        env.send(std::slice::from_ref(&ix), &[&executor]).await,
        GovernanceError::TimelockNotElapsed,
    );
    assert_eq!(
        env.account::<Meter>(meter_address(&lfdis[1])).await.status,
        MeterStatus::Active
    );

    // On time: anyone can execute.
    env.advance_clock(1).await;
    assert_eq!(env.now().await, approved_at + i64::from(TIMELOCK));
    env.send(&[ix], &[&executor]).await.unwrap();

    assert_eq!(
        env.account::<Meter>(meter_address(&lfdis[1])).await.status,
        MeterStatus::Suspended
    );
    for other in [&lfdis[0], &lfdis[2]] {
        assert_eq!(
            env.account::<Meter>(meter_address(other)).await.status,
            MeterStatus::Active
        );
    }
    let proposal: Proposal = env.account(proposal_address(1)).await;
    assert_eq!(proposal.status, ProposalStatus::Executed);
}

#[tokio::test]
async fn the_harness_carries_the_real_spl_token_and_associated_token_programs() {
    let env = TestEnv::start().await;
    for program in [anchor_spl::token::ID, anchor_spl::associated_token::ID] {
        let account = env
            .ctx
            .banks_client
            .get_account(program)
            .await
            .unwrap()
            .expect("program present");
        assert!(account.executable, "{program} is executable");
    }
}
