//! Governance program: council, proposals, execution by CPI, guardian pause.
use anchor_lang::error::ErrorCode;
use governance::{Council, CouncilConfig, GovernanceError, Proposal, ProposalStatus};
use gridtokenx_tests::fixtures::{self, TIMELOCK};
use gridtokenx_tests::governance_ix::{self, authority_address, council_address, proposal_address};
use gridtokenx_tests::registry_ix::{self, campus_address, meter_address, test_lfdi};
use gridtokenx_tests::{assert_error, without_signature, TestEnv};
use registry::{Campus, Meter, MeterStatus, RegistryError};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Suspends meter 1, signed by the governance authority: what most tests propose.
fn suspend_meter(n: u8) -> Instruction {
    registry_ix::set_meter_status(authority_address(), &test_lfdi(n), MeterStatus::Suspended)
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
    let ix = registry_ix::set_campus_authority(env.payer(), authority_address());
    env.send(&[ix], &[]).await.unwrap();
    (env, council, suspend_meter(1))
}

async fn meter_status(env: &mut TestEnv) -> MeterStatus {
    env.account::<Meter>(meter_address(&test_lfdi(1)))
        .await
        .status
}

// ---- initialize_council ----

#[tokio::test]
async fn initialize_council_stores_config_and_authority_bump() {
    let mut env = TestEnv::start().await;
    let council = fixtures::council(&mut env).await;
    let stored: Council = env.account(council_address()).await;
    assert_eq!(stored.config(), council.config());
    assert_eq!(stored.proposal_count, 0);
    let (authority, bump) = anchor_lang::prelude::Pubkey::find_program_address(
        &[governance::seeds::AUTHORITY],
        &governance::ID,
    );
    assert_eq!(authority, authority_address());
    assert_eq!(stored.authority_bump, bump);
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
        &[governance_ix::propose(proposer.pubkey(), 0, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.index, 0);
    assert_eq!(proposal.proposer, proposer.pubkey());
    assert_eq!(proposal.status, ProposalStatus::Active);
    assert_eq!(proposal.instruction.to_instruction(), suspend);
    assert!(proposal.approvals.is_empty());
    assert_eq!(
        env.account::<Council>(council_address())
            .await
            .proposal_count,
        1
    );
}

#[tokio::test]
async fn propose_needs_a_member() {
    let (mut env, _council, suspend) = governed().await;
    let outsider = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::propose(outsider.pubkey(), 0, &suspend);
    assert_error(
        env.send(&[ix], &[&outsider]).await,
        GovernanceError::NotMember,
    );
    assert!(!env.account_exists(proposal_address(0)).await);
}

#[tokio::test]
async fn propose_rejects_oversized_instruction() {
    let (mut env, council, mut suspend) = governed().await;
    suspend.data = vec![0; governance::MAX_PROPOSAL_DATA + 1];
    let proposer = council.member(0);
    let ix = governance_ix::propose(proposer.pubkey(), 0, &suspend);
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
        &[governance_ix::propose(proposer.pubkey(), 0, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let first = council.member(0);
    env.send(&[governance_ix::approve(first.pubkey(), 0)], &[first])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.status, ProposalStatus::Active);
    assert_eq!(proposal.approved_at, 0);

    let second = council.member(1);
    env.send(&[governance_ix::approve(second.pubkey(), 0)], &[second])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    assert_eq!(proposal.approved_at, env.now().await);
    assert_eq!(proposal.approvals, vec![first.pubkey(), second.pubkey()]);
}

#[tokio::test]
async fn vote_needs_a_member_and_only_once() {
    let (mut env, council, suspend) = governed().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), 0, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let outsider = Keypair::new();
    let ix = governance_ix::approve(outsider.pubkey(), 0);
    assert_error(
        env.send(&[ix], &[&outsider]).await,
        GovernanceError::NotMember,
    );

    let member = council.member(2);
    env.send(&[governance_ix::approve(member.pubkey(), 0)], &[member])
        .await
        .unwrap();
    // Neither a second approval nor a change of mind.
    let ix = governance_ix::reject(member.pubkey(), 0);
    assert_error(
        env.send(&[ix], &[member]).await,
        GovernanceError::AlreadyVoted,
    );
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.approvals.len(), 1);
    assert!(proposal.rejections.is_empty());
}

#[tokio::test]
async fn vote_needs_the_member_signature() {
    let (mut env, council, suspend) = governed().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), 0, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    let member = council.member(1).pubkey();
    let ix = without_signature(governance_ix::approve(member, 0), member);
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotSigner);
}

#[tokio::test]
async fn rejections_that_make_threshold_unreachable_reject_the_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    let proposer = council.member(0);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), 0, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    // Three members, threshold two: one rejection leaves two possible approvals.
    let a = council.member(1);
    env.send(&[governance_ix::reject(a.pubkey(), 0)], &[a])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Proposal>(proposal_address(0)).await.status,
        ProposalStatus::Active
    );
    let b = council.member(2);
    env.send(&[governance_ix::reject(b.pubkey(), 0)], &[b])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Proposal>(proposal_address(0)).await.status,
        ProposalStatus::Rejected
    );

    let ix = governance_ix::approve(proposer.pubkey(), 0);
    assert_error(
        env.send(&[ix], &[proposer]).await,
        GovernanceError::VotingClosed,
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), 0, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProposalClosed);
    let ix = governance_ix::cancel(proposer.pubkey(), 0);
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
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;

    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), 0, &suspend);
    env.send(&[ix], &[]).await.unwrap();
    assert_eq!(meter_status(&mut env).await, MeterStatus::Suspended);
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.status, ProposalStatus::Executed);
    assert_eq!(proposal.executed_at, env.now().await);

    // Again, by someone else (a different transaction): refused.
    let other = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::execute(other.pubkey(), 0, &suspend);
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
        &[governance_ix::propose(proposer.pubkey(), 0, &suspend)],
        &[proposer],
    )
    .await
    .unwrap();
    env.send(&[governance_ix::approve(proposer.pubkey(), 0)], &[proposer])
        .await
        .unwrap();
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), 0, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ThresholdNotMet);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn execute_before_timelock_fails() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;
    env.advance_clock(i64::from(TIMELOCK) - 1).await;
    let ix = governance_ix::execute(env.payer(), 0, &suspend);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::TimelockNotElapsed,
    );
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn execute_refuses_accounts_that_differ_from_the_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    // Same proposal, but pointing at another meter.
    let ix = governance_ix::execute(env.payer(), 0, &suspend_meter(2));
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::AccountsMismatch,
    );
    // Or at another program.
    let mut wrong_program = suspend.clone();
    wrong_program.program_id = oracle::ID;
    let ix = governance_ix::execute(env.payer(), 0, &wrong_program);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProgramMismatch);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn removed_members_approvals_stop_counting() {
    let (mut env, council, suspend) = governed_with_meter().await;
    // Proposal 0 is approved by members 0 and 1 ...
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;
    // ... then proposal 1 removes member 1 from the council.
    let mut smaller = council.config();
    smaller.members.remove(1);
    let update = governance_ix::update_council(smaller.clone());
    fixtures::approved_proposal_by(&mut env, &council, 1, &update, &[0, 2]).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), 1, &update)], &[])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Council>(council_address()).await.config(),
        smaller
    );

    let ix = governance_ix::execute(env.payer(), 0, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ThresholdNotMet);
    // A remaining member's approval restores it.
    let member = council.member(2);
    env.send(&[governance_ix::approve(member.pubkey(), 0)], &[member])
        .await
        .unwrap();
    let executor = env.funded_keypair(fixtures::SOL).await;
    let ix = governance_ix::execute(executor.pubkey(), 0, &suspend);
    env.send(&[ix], &[&executor]).await.unwrap();
    assert_eq!(meter_status(&mut env).await, MeterStatus::Suspended);
}

#[tokio::test]
async fn execute_of_failing_instruction_leaves_proposal_executable() {
    let (mut env, council, _) = governed_with_meter().await;
    // Suspending an unregistered meter fails inside the registry.
    let bad =
        registry_ix::set_meter_status(authority_address(), &test_lfdi(7), MeterStatus::Suspended);
    fixtures::approved_proposal(&mut env, &council, 0, &bad).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), 0, &bad);
    assert_error(env.send(&[ix], &[]).await, ErrorCode::AccountNotInitialized);
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
}

#[tokio::test]
async fn execute_meter_status_change_fits_in_one_transaction() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), 0, &suspend);
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
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;
    let proposer = council.member(0);
    env.send(&[governance_ix::cancel(proposer.pubkey(), 0)], &[proposer])
        .await
        .unwrap();
    assert_eq!(
        env.account::<Proposal>(proposal_address(0)).await.status,
        ProposalStatus::Cancelled
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), 0, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProposalClosed);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn cancel_needs_the_proposer_and_an_unexecuted_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;
    let other = council.member(1);
    let ix = governance_ix::cancel(other.pubkey(), 0);
    assert_error(
        env.send(&[ix], &[other]).await,
        GovernanceError::NotProposer,
    );

    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), 0, &suspend)], &[])
        .await
        .unwrap();
    let proposer = council.member(0);
    let ix = governance_ix::cancel(proposer.pubkey(), 0);
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
    let ix = without_signature(governance_ix::update_council(config), authority_address());
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
    fixtures::approved_proposal(&mut env, &council, 0, &update).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), 0, &update)], &[])
        .await
        .unwrap();
    let stored: Council = env.account(council_address()).await;
    assert_eq!(stored.config(), config);
    assert_eq!(stored.proposal_count, 1);
}

#[tokio::test]
async fn update_council_validates_the_new_config() {
    let (mut env, council, _) = governed().await;
    let mut config = council.config();
    config.threshold = 4;
    let update = governance_ix::update_council(config);
    fixtures::approved_proposal(&mut env, &council, 0, &update).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), 0, &update);
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
    let unpause = registry_ix::set_paused(authority_address(), false);
    fixtures::approved_proposal(&mut env, &council, 0, &unpause).await;
    let ix = governance_ix::execute(env.payer(), 0, &unpause);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::TimelockNotElapsed,
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), 0, &unpause)], &[])
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
        &proposal_address(0),
        1_000_000,
    );
    env.send(&[ix], &[]).await.unwrap();
    fixtures::approved_proposal(&mut env, &council, 0, &suspend).await;
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
}
