//! Governance program: council, proposals, execution by CPI, guardian pause.
use anchor_lang::error::ErrorCode;
use governance::{Council, CouncilConfig, GovernanceError, Proposal, ProposalStatus};
use gridtokenx_tests::fixtures::{self, TIMELOCK};
use gridtokenx_tests::governance_ix::{self, authority_for, council_address, proposal_address};
use gridtokenx_tests::registry_ix::{self, campus_address, meter_address, test_lfdi};
use gridtokenx_tests::{assert_error, without_signature, TestEnv};
use registry::{Campus, Meter, MeterStatus, RegistryError};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// The first proposal after the hand-over (proposal 0 accepted the registry's authority).
const P: u64 = 1;

/// The registry's governance authority.
fn registry_authority() -> anchor_lang::prelude::Pubkey {
    authority_for(registry::ID)
}

/// Suspends meter `n`, signed by the governance authority: what most tests propose.
fn suspend_meter(n: u8) -> Instruction {
    registry_ix::set_meter_status(registry_authority(), &test_lfdi(n), MeterStatus::Suspended)
}

/// A governed campus without meters.
async fn governed() -> (TestEnv, fixtures::Council, Instruction) {
    let mut env = TestEnv::start().await;
    let council = fixtures::governed_campus(&mut env).await;
    (env, council, suspend_meter(1))
}

/// A campus with meters 1 and 2 registered, then handed to governance.
async fn governed_with_meter() -> (TestEnv, fixtures::Council, Instruction) {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    fixtures::meter(&mut env, test_lfdi(1)).await;
    fixtures::meter(&mut env, test_lfdi(2)).await;
    let council = fixtures::council(&mut env).await;
    let registry_authority = registry_authority();
    let payer = env.payer();
    fixtures::hand_over(
        &mut env,
        &council,
        registry_ix::propose_authority(payer, registry_authority),
        registry_ix::accept_authority(registry_authority),
    )
    .await;
    (env, council, suspend_meter(1))
}

async fn meter_status(env: &mut TestEnv) -> MeterStatus {
    env.account::<Meter>(meter_address(&test_lfdi(1)))
        .await
        .status
}

// ---- initialize_council ----

#[tokio::test]
async fn initialize_council_stores_config() {
    let mut env = TestEnv::start().await;
    let council = fixtures::council(&mut env).await;
    let stored: Council = env.account(council_address()).await;
    assert_eq!(stored.config(), council.config());
    assert_eq!(stored.proposal_count, 0);
    assert_eq!(stored.members_changed_at, env.now().await);
}

#[tokio::test]
async fn initialize_council_needs_the_upgrade_authority() {
    let mut env = TestEnv::start().await;
    let config = CouncilConfig {
        members: vec![Keypair::new().pubkey()],
        guardians: vec![],
        threshold: 1,
        timelock_seconds: 0,
    };
    // Anyone else calling first cannot install their council.
    let squatter = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::initialize_council(squatter.pubkey(), config.clone());
    assert_error(
        env.send(&[ix], &[&squatter]).await,
        GovernanceError::NotUpgradeAuthority,
    );
    // An immutable program (no upgrade authority) cannot be initialised by anyone.
    env.plant_program_data(governance::ID, None);
    let ix = governance_ix::initialize_council(env.payer(), config.clone());
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::NotUpgradeAuthority,
    );
    // A look-alike ProgramData at the right address but not owned by the loader.
    let data = env
        .ctx
        .banks_client
        .get_account(gridtokenx_tests::program_data_address(governance::ID))
        .await
        .unwrap()
        .unwrap()
        .data;
    env.plant_account(
        gridtokenx_tests::program_data_address(governance::ID),
        anchor_lang::system_program::ID,
        data,
    );
    let ix = governance_ix::initialize_council(env.payer(), config);
    assert_error(
        env.send(&[ix], &[]).await,
        ErrorCode::AccountOwnedByWrongProgram,
    );
    assert!(!env.account_exists(council_address()).await);
}

#[tokio::test]
async fn initialize_council_rejects_invalid_config() {
    let mut env = TestEnv::start().await;
    let member = Keypair::new().pubkey();
    let config = CouncilConfig {
        members: vec![member],
        guardians: vec![],
        threshold: 2,
        timelock_seconds: 0,
    };
    let ix = governance_ix::initialize_council(env.payer(), config);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::InvalidThreshold,
    );
    assert!(!env.account_exists(council_address()).await);
}

#[tokio::test]
async fn initialize_council_twice_fails() {
    let mut env = TestEnv::start().await;
    let council = fixtures::council(&mut env).await;
    let mut config = council.config();
    config.threshold = 1;
    let ix = governance_ix::initialize_council(env.payer(), config);
    // System program: AccountAlreadyInUse.
    assert_error(env.send(&[ix], &[]).await, 0u32);
    let stored: Council = env.account(council_address()).await;
    assert_eq!(stored.threshold, 2);
}

// ---- propose ----

#[tokio::test]
async fn propose_stores_the_instruction() {
    let (mut env, council, suspend) = governed().await;
    let proposer = council.member(1);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), P, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.index, P);
    assert_eq!(proposal.proposer, proposer.pubkey());
    assert_eq!(proposal.status, ProposalStatus::Active);
    assert_eq!(proposal.instruction.to_instruction(), suspend);
    assert!(proposal.approvals.is_empty());
    assert_eq!(
        env.account::<Council>(council_address())
            .await
            .proposal_count,
        P + 1
    );
}

#[tokio::test]
async fn propose_needs_a_member() {
    let (mut env, _council, suspend) = governed().await;
    let outsider = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::propose(outsider.pubkey(), P, &suspend);
    assert_error(
        env.send(&[ix], &[&outsider]).await,
        GovernanceError::NotMember,
    );
    assert!(!env.account_exists(proposal_address(P)).await);
}

#[tokio::test]
async fn propose_rejects_oversized_instruction() {
    let (mut env, council, mut suspend) = governed().await;
    suspend.data = vec![0; governance::MAX_PROPOSAL_DATA + 1];
    let proposer = council.member(0);
    let ix = governance_ix::propose(proposer.pubkey(), P, &suspend);
    assert_error(
        env.send(&[ix], &[proposer]).await,
        GovernanceError::InstructionTooLarge,
    );
}

#[tokio::test]
async fn propose_rejects_proposal_at_wrong_index() {
    let (mut env, council, suspend) = governed().await;
    let proposer = council.member(0);
    let ix = governance_ix::propose(proposer.pubkey(), 5, &suspend);
    assert_error(
        env.send(&[ix], &[proposer]).await,
        ErrorCode::ConstraintSeeds,
    );
}

// ---- approve / reject ----

#[tokio::test]
async fn approvals_reaching_threshold_approve_the_proposal() {
    let (mut env, council, suspend) = governed().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), P, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let first = council.member(0);
    env.send(&[governance_ix::approve(first.pubkey(), P)], &[first])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Active);
    assert_eq!(proposal.approved_at, 0);

    let second = council.member(1);
    env.send(&[governance_ix::approve(second.pubkey(), P)], &[second])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    assert_eq!(proposal.approved_at, env.now().await);
    assert_eq!(proposal.approvals, vec![first.pubkey(), second.pubkey()]);
}

#[tokio::test]
async fn vote_needs_a_member_and_only_once() {
    let (mut env, council, suspend) = governed().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), P, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let outsider = Keypair::new();
    let ix = governance_ix::approve(outsider.pubkey(), P);
    assert_error(
        env.send(&[ix], &[&outsider]).await,
        GovernanceError::NotMember,
    );

    let member = council.member(2);
    env.send(&[governance_ix::approve(member.pubkey(), P)], &[member])
        .await
        .unwrap();
    // Neither a second approval nor a change of mind.
    let ix = governance_ix::reject(member.pubkey(), P);
    assert_error(
        env.send(&[ix], &[member]).await,
        GovernanceError::AlreadyVoted,
    );
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.approvals.len(), 1);
    assert!(proposal.rejections.is_empty());
}

#[tokio::test]
async fn vote_needs_the_member_signature() {
    let (mut env, council, suspend) = governed().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), P, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let member = council.member(1).pubkey();
    let ix = without_signature(governance_ix::approve(member, P), member);
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotSigner);
}

#[tokio::test]
async fn rejections_that_make_threshold_unreachable_reject_the_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), P, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    // Three members, threshold two: one rejection leaves two possible approvals.
    let a = council.member(1);
    env.send(&[governance_ix::reject(a.pubkey(), P)], &[a])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Proposal>(proposal_address(P)).await.status,
        ProposalStatus::Active
    );
    let b = council.member(2);
    env.send(&[governance_ix::reject(b.pubkey(), P)], &[b])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Proposal>(proposal_address(P)).await.status,
        ProposalStatus::Rejected
    );

    let ix = governance_ix::approve(proposer.pubkey(), P);
    assert_error(
        env.send(&[ix], &[proposer]).await,
        GovernanceError::VotingClosed,
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProposalClosed);
    let ix = governance_ix::cancel(proposer.pubkey(), P);
    assert_error(
        env.send(&[ix], &[proposer]).await,
        GovernanceError::ProposalClosed,
    );
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

// ---- execute ----

#[tokio::test]
async fn execute_runs_the_instruction_after_threshold_and_timelock_once() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;

    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    env.send(&[ix], &[]).await.unwrap();
    assert_eq!(meter_status(&mut env).await, MeterStatus::Suspended);
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Executed);
    assert_eq!(proposal.executed_at, env.now().await);

    // Again, by someone else (a different transaction): refused.
    let other = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::execute(other.pubkey(), P, &suspend);
    assert_error(
        env.send(&[ix], &[&other]).await,
        GovernanceError::AlreadyExecuted,
    );
}

#[tokio::test]
async fn execute_below_threshold_fails() {
    let (mut env, council, suspend) = governed_with_meter().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), P, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    env.send(&[governance_ix::approve(proposer.pubkey(), P)], &[proposer])
        .await
        .unwrap();
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ThresholdNotMet);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn execute_before_timelock_fails() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    env.advance_clock(i64::from(TIMELOCK) - 1).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::TimelockNotElapsed,
    );
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn execute_refuses_accounts_that_differ_from_the_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    // Same proposal, but pointing at another meter.
    let ix = governance_ix::execute(env.payer(), P, &suspend_meter(2));
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::AccountsMismatch,
    );
    // Or at another program.
    let mut wrong_program = suspend.clone();
    wrong_program.program_id = oracle::ID;
    let ix = without_signature(
        governance_ix::execute(env.payer(), P, &wrong_program),
        registry_authority(),
    );
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProgramMismatch);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn removed_members_approvals_stop_counting() {
    let (mut env, council, suspend) = governed_with_meter().await;
    // Proposal P is approved by members 0 and 1 ...
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    // ... then proposal P + 1 removes member 1 from the council.
    let mut smaller = council.config();
    smaller.members.remove(1);
    let update = governance_ix::update_council(smaller.clone());
    fixtures::approved_proposal_by(&mut env, &council, P + 1, &update, &[0, 2]).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P + 1, &update)], &[])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Council>(council_address()).await.config(),
        smaller
    );

    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ThresholdNotMet);
    // A remaining member's approval restores the threshold, and the timelock starts again:
    // the regained approval waits it out like a new one.
    let member = council.member(2);
    env.send(&[governance_ix::approve(member.pubkey(), P)], &[member])
        .await
        .unwrap();
    let regained_at = env.now().await;
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.approved_at, regained_at);
    let executor = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::execute(executor.pubkey(), P, &suspend);
    assert_error(
        env.send(std::slice::from_ref(&ix), &[&executor]).await,
        GovernanceError::TimelockNotElapsed,
    );
    // Votes of the removed member were dropped when the proposal was next voted on.
    assert_eq!(
        proposal.approvals,
        vec![council.member(0).pubkey(), member.pubkey()]
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[ix], &[&executor]).await.unwrap();
    assert_eq!(meter_status(&mut env).await, MeterStatus::Suspended);
}

#[tokio::test]
async fn execute_of_failing_instruction_leaves_proposal_executable() {
    let (mut env, council, _) = governed_with_meter().await;
    // Suspending an unregistered meter fails inside the registry.
    let bad =
        registry_ix::set_meter_status(registry_authority(), &test_lfdi(7), MeterStatus::Suspended);
    fixtures::approved_proposal(&mut env, &council, P, &bad).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &bad);
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotInitialized);
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
}

#[tokio::test]
async fn execute_meter_status_change_fits_in_one_transaction() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    let tx = env.transaction(std::slice::from_ref(&ix), &[]);
    let size = gridtokenx_tests::transaction_size(&tx);
    assert!(
        size <= gridtokenx_tests::MAX_TRANSACTION_SIZE,
        "execute tx is {size} bytes"
    );
    // payer, council, proposal, registry, governance, campus, authority, meter.
    assert_eq!(tx.message.account_keys.len(), 8);
    assert_eq!(size, 376);
    env.send(&[ix], &[]).await.unwrap();
}

// ---- cancel ----

#[tokio::test]
async fn cancel_by_proposer_closes_the_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    let proposer = council.member(0);
    env.send(&[governance_ix::cancel(proposer.pubkey(), P)], &[proposer])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Proposal>(proposal_address(P)).await.status,
        ProposalStatus::Cancelled
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProposalClosed);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn cancel_needs_the_proposer_and_an_unexecuted_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    let other = council.member(1);
    let ix = governance_ix::cancel(other.pubkey(), P);
    assert_error(
        env.send(&[ix], &[other]).await,
        GovernanceError::NotProposer,
    );

    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P, &suspend)], &[])
        .await
        .unwrap();
    let proposer = council.member(0);
    let ix = governance_ix::cancel(proposer.pubkey(), P);
    assert_error(
        env.send(&[ix], &[proposer]).await,
        GovernanceError::AlreadyExecuted,
    );
}

// ---- update_council ----

#[tokio::test]
async fn update_council_cannot_be_called_directly() {
    let (mut env, council, _) = governed().await;
    let mut config = council.config();
    config.threshold = 1;
    // Nobody holds the authority's key, so the instruction can only be sent unsigned.
    let ix = without_signature(
        governance_ix::update_council(config),
        authority_for(governance::ID),
    );
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotSigner);
    assert_eq!(env.account::<Council>(council_address()).await.threshold, 2);
}

#[tokio::test]
async fn update_council_through_a_proposal_changes_members_threshold_timelock_guardians() {
    let (mut env, council, _) = governed().await;
    let newcomer = Keypair::new().pubkey();
    let config = CouncilConfig {
        members: vec![council.member(0).pubkey(), newcomer],
        guardians: vec![],
        threshold: 1,
        timelock_seconds: 60,
    };
    let update = governance_ix::update_council(config.clone());
    fixtures::approved_proposal(&mut env, &council, P, &update).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P, &update)], &[])
        .await
        .unwrap();
    let stored: Council = env.account(council_address()).await;
    assert_eq!(stored.config(), config);
    assert_eq!(stored.proposal_count, P + 1);
    assert_eq!(stored.members_changed_at, env.now().await);
}

#[tokio::test]
async fn update_council_validates_the_new_config() {
    let (mut env, council, _) = governed().await;
    let mut config = council.config();
    config.threshold = 4;
    let update = governance_ix::update_council(config);
    fixtures::approved_proposal(&mut env, &council, P, &update).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &update);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::InvalidThreshold,
    );
    assert_eq!(
        env.account::<Council>(council_address()).await.config(),
        council.config()
    );
}

// ---- guardian_pause ----

#[tokio::test]
async fn guardian_pauses_at_once_and_unpausing_needs_a_proposal() {
    let (mut env, council, _) = governed_with_meter().await;
    let guardian = &council.guardian;
    let ix = governance_ix::guardian_pause(guardian.pubkey(), registry::ID, campus_address());
    env.send(&[ix], &[guardian]).await.unwrap();
    assert!(env.account::<Campus>(campus_address()).await.paused);

    // The guardian cannot unpause; only an executed proposal can.
    let unpause = registry_ix::set_paused(registry_authority(), false);
    fixtures::approved_proposal(&mut env, &council, P, &unpause).await;
    let ix = governance_ix::execute(env.payer(), P, &unpause);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::TimelockNotElapsed,
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P, &unpause)], &[])
        .await
        .unwrap();
    assert!(!env.account::<Campus>(campus_address()).await.paused);
}

#[tokio::test]
async fn guardian_pause_needs_a_guardian() {
    let (mut env, council, _) = governed_with_meter().await;
    // A council member is not a guardian.
    let member = council.member(0);
    let ix = governance_ix::guardian_pause(member.pubkey(), registry::ID, campus_address());
    assert_error(
        env.send(&[ix], &[member]).await,
        GovernanceError::NotGuardian,
    );
    assert!(!env.account::<Campus>(campus_address()).await.paused);
}

#[tokio::test]
async fn guardian_pause_only_targets_gridtokenx_programs() {
    let (mut env, council, _) = governed_with_meter().await;
    let guardian = &council.guardian;
    // Governance itself, or any other program, must never receive the authority signature.
    for program in [governance::ID, anchor_lang::system_program::ID] {
        let ix = governance_ix::guardian_pause(guardian.pubkey(), program, campus_address());
        assert_error(
            env.send(&[ix], &[guardian]).await,
            GovernanceError::NotPausable,
        );
    }
}

#[tokio::test]
async fn guardian_pause_fails_where_governance_is_not_the_authority() {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    let council = fixtures::council(&mut env).await;
    // The registry is still under its bootstrap authority.
    let ix =
        governance_ix::guardian_pause(council.guardian.pubkey(), registry::ID, campus_address());
    assert_error(
        env.send(&[ix], &[&council.guardian]).await,
        RegistryError::Unauthorized,
    );
}

#[test]
fn set_paused_discriminator_is_anchors_global_namespace_hash() {
    use sha2::{Digest, Sha256};
    // Every GridTokenX program's `set_paused` shares this discriminator.
    let hash = Sha256::digest(b"global:set_paused");
    assert_eq!(governance::SET_PAUSED_DISCRIMINATOR, hash[..8]);
}

#[tokio::test]
async fn propose_works_when_the_next_proposal_address_was_prefunded() {
    let (mut env, council, suspend) = governed().await;
    // Proposal addresses are predictable; lamports sent there must not block governance.
    let ix = anchor_lang::solana_program::system_instruction::transfer(
        &env.payer(),
        &proposal_address(P),
        1_000_000,
    );
    env.send(&[ix], &[]).await.unwrap();
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
}

// ---- veto, cancel, scoped authority, bounded votes ----

#[tokio::test]
async fn any_member_can_veto_an_approved_proposal_during_its_timelock() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    // Member 2 did not approve; one rejection during the timelock is a veto.
    let member = council.member(2);
    env.send(&[governance_ix::reject(member.pubkey(), P)], &[member])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Rejected);
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProposalClosed);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn an_approver_can_change_their_mind_and_veto() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    let approver = council.member(1);
    env.send(&[governance_ix::reject(approver.pubkey(), P)], &[approver])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Rejected);
    assert_eq!(proposal.approvals, vec![council.member(0).pubkey()]);
    assert_eq!(proposal.rejections, vec![approver.pubkey()]);
    // Rejecting twice is refused.
    let ix = governance_ix::reject(approver.pubkey(), P);
    assert_error(
        env.send(&[ix], &[approver]).await,
        GovernanceError::VotingClosed,
    );
}

#[tokio::test]
async fn a_removed_member_cannot_cancel_their_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    // Member 1 proposes P; then the council removes member 1.
    fixtures::approved_proposal_by(&mut env, &council, P, &suspend, &[1, 0]).await;
    let mut smaller = council.config();
    smaller.members.remove(1);
    let update = governance_ix::update_council(smaller);
    fixtures::approved_proposal_by(&mut env, &council, P + 1, &update, &[0, 2]).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P + 1, &update)], &[])
        .await
        .unwrap();
    let former = council.member(1);
    let ix = governance_ix::cancel(former.pubkey(), P);
    assert_error(env.send(&[ix], &[former]).await, GovernanceError::NotMember);
    assert_ne!(
        env.account::<Proposal>(proposal_address(P)).await.status,
        ProposalStatus::Cancelled
    );
}

#[tokio::test]
async fn a_council_change_restarts_the_timelock_of_approved_proposals() {
    let (mut env, council, suspend) = governed_with_meter().await;
    // Both approved at the same time: the suspension and a council change.
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    let mut config = council.config();
    config.guardians.clear();
    config.threshold = 3;
    let update = governance_ix::update_council(config);
    fixtures::approved_proposal(&mut env, &council, P + 1, &update).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P + 1, &update)], &[])
        .await
        .unwrap();
    // The threshold is now 3: two approvals no longer suffice.
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(
        env.send(std::slice::from_ref(&ix), &[]).await,
        GovernanceError::ThresholdNotMet,
    );
    let third = council.member(2);
    env.send(&[governance_ix::approve(third.pubkey(), P)], &[third])
        .await
        .unwrap();
    // Three approvals under the new rules, but the timelock runs from the change.
    assert_error(
        env.send(std::slice::from_ref(&ix), &[]).await,
        GovernanceError::TimelockNotElapsed,
    );
    env.advance_clock(i64::from(TIMELOCK) - 1).await;
    assert_error(
        env.send(std::slice::from_ref(&ix), &[]).await,
        GovernanceError::TimelockNotElapsed,
    );
    env.advance_clock(1).await;
    env.send(&[ix], &[]).await.unwrap();
    assert_eq!(meter_status(&mut env).await, MeterStatus::Suspended);
}

#[tokio::test]
async fn the_authority_signs_only_for_the_proposals_own_program() {
    let (mut env, council, _) = governed_with_meter().await;
    // The registry's governance authority holds lamports. A proposal that calls the System
    // program gets only the System program's governance signer, never the registry's: the
    // transfer out of the registry's authority fails for want of its signature.
    let registry_authority = registry_authority();
    let fund = anchor_lang::solana_program::system_instruction::transfer(
        &env.payer(),
        &registry_authority,
        10_000_000,
    );
    env.send(&[fund], &[]).await.unwrap();
    let thief = Keypair::new().pubkey();
    let steal = anchor_lang::solana_program::system_instruction::transfer(
        &registry_authority,
        &thief,
        5_000_000,
    );
    fixtures::approved_proposal(&mut env, &council, P, &steal).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    // Nobody can sign for the registry's authority in the outer transaction either.
    let ix = without_signature(
        governance_ix::execute(env.payer(), P, &steal),
        registry_authority,
    );
    let result = env.send(&[ix], &[]).await;
    // The runtime refuses the CPI's unsigned signer (PrivilegeEscalation on SBF; the native
    // test stub aborts the program instead, ProgramFailedToComplete).
    use solana_instruction::error::InstructionError;
    assert!(
        matches!(
            result,
            Err(solana_program_test::BanksClientError::TransactionError(
                solana_transaction::TransactionError::InstructionError(
                    0,
                    InstructionError::PrivilegeEscalation
                        | InstructionError::ProgramFailedToComplete
                )
            ))
        ),
        "{result:?}"
    );
    assert_eq!(
        env.account::<Proposal>(proposal_address(P)).await.status,
        ProposalStatus::Approved
    );
    assert!(!env.account_exists(thief).await);
    // Each program's authority is its own PDA.
    assert_ne!(authority_for(registry::ID), authority_for(oracle::ID));
    assert_ne!(
        authority_for(registry::ID),
        authority_for(anchor_lang::system_program::ID)
    );
}

#[tokio::test]
async fn a_full_council_update_fits_a_proposal_transaction() {
    let (mut env, council, _) = governed().await;
    let config = CouncilConfig {
        members: (0..governance::MAX_MEMBERS)
            .map(|_| Keypair::new().pubkey())
            .collect(),
        guardians: (0..governance::MAX_GUARDIANS)
            .map(|_| Keypair::new().pubkey())
            .collect(),
        threshold: 9,
        timelock_seconds: 3_600,
    };
    let update = governance_ix::update_council(config);
    assert_eq!(update.data.len(), 789);
    // A member proposes from their own wallet (one signature, one fee payer).
    let proposer = council.member(0);
    let ix = governance_ix::propose(proposer.pubkey(), P, &update);
    let tx = env.transaction_paid_by(std::slice::from_ref(&ix), proposer);
    let size = gridtokenx_tests::transaction_size(&tx);
    assert!(
        size <= gridtokenx_tests::MAX_TRANSACTION_SIZE,
        "{size} bytes"
    );
    assert_eq!(size, 1_175);
    env.ctx.banks_client.process_transaction(tx).await.unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.instruction.data.len(), 789);
}

#[tokio::test]
async fn votes_stay_bounded_by_the_current_council_across_rotations() {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    // A full council of 16 that needs all 16 approvals.
    let mut old = Vec::new();
    for _ in 0..governance::MAX_MEMBERS {
        old.push(env.funded_keypair(fixtures::SOL).await);
    }
    let guardian = env.funded_keypair(fixtures::SOL).await;
    let council = fixtures::Council {
        members: old,
        guardian,
        threshold: governance::MAX_MEMBERS as u8,
        timelock_seconds: 0,
    };
    let ix = governance_ix::initialize_council(env.payer(), council.config());
    env.send(&[ix], &[]).await.unwrap();
    // Proposal 0 collects 15 approvals and stays Active.
    let target = registry_ix::set_paused(registry_authority(), true);
    let voters: Vec<usize> = (0..15).collect();
    fixtures::approved_proposal_by(&mut env, &council, 0, &target, &voters).await;
    // Proposal 1 replaces the whole council by 16 new members.
    let mut new = Vec::new();
    for _ in 0..governance::MAX_MEMBERS {
        new.push(env.funded_keypair(fixtures::SOL).await);
    }
    let mut config = council.config();
    config.members = new.iter().map(|k| k.pubkey()).collect();
    let update = governance_ix::update_council(config.clone());
    let all: Vec<usize> = (0..16).collect();
    fixtures::approved_proposal_by(&mut env, &council, 1, &update, &all).await;
    env.send(&[governance_ix::execute(env.payer(), 1, &update)], &[])
        .await
        .unwrap();
    // The 16 new members vote on proposal 0: 15 stale + 16 new votes would not fit the
    // account; stale votes are dropped instead.
    for member in &new {
        env.send(&[governance_ix::approve(member.pubkey(), 0)], &[member])
            .await
            .unwrap();
    }
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    assert_eq!(proposal.approvals, config.members);
}
