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
        max_guardian_pause_s: fixtures::GUARDIAN_PAUSE_S,
        guardian_cooldown_s: fixtures::GUARDIAN_COOLDOWN_S,
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
        max_guardian_pause_s: fixtures::GUARDIAN_PAUSE_S,
        guardian_cooldown_s: fixtures::GUARDIAN_COOLDOWN_S,
    };
    let ix = governance_ix::initialize_council(env.payer(), config.clone());
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::InvalidThreshold,
    );
    // A cooldown shorter than twice the guardian's pause.
    let short_cooldown = CouncilConfig {
        threshold: 1,
        guardian_cooldown_s: 2 * fixtures::GUARDIAN_PAUSE_S - 1,
        ..config
    };
    let ix = governance_ix::initialize_council(env.payer(), short_cooldown);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::InvalidGuardianPause,
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
    // Member 2 leaves, a newcomer joins: members 0 and 1 (not removed) approve.
    let config = CouncilConfig {
        members: vec![
            council.member(0).pubkey(),
            council.member(1).pubkey(),
            newcomer,
        ],
        guardians: vec![],
        threshold: 1,
        timelock_seconds: 60,
        max_guardian_pause_s: fixtures::GUARDIAN_PAUSE_S,
        guardian_cooldown_s: fixtures::GUARDIAN_COOLDOWN_S,
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
    let now = env.now().await;
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        now + i64::from(fixtures::GUARDIAN_PAUSE_S)
    );

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
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        0
    );
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
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        0
    );
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
async fn one_rejection_in_the_timelock_is_no_veto_the_defeat_count_is() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    // Member 2 did not approve. 3 members, threshold 2: the defeat count is 2 rejections,
    // and one member alone cannot reach it.
    let member = council.member(2);
    env.send(&[governance_ix::reject(member.pubkey(), P)], &[member])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    assert_eq!(proposal.rejections, vec![member.pubkey()]);
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P, &suspend)], &[])
        .await
        .unwrap();
    assert_eq!(meter_status(&mut env).await, MeterStatus::Suspended);
}

#[tokio::test]
async fn rejections_in_the_timelock_defeat_a_proposal_at_the_defeat_count() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    // Approver 1 changes their mind (the approval goes), member 2 rejects: 2 rejections.
    for i in [1, 2] {
        let member = council.member(i);
        env.send(&[governance_ix::reject(member.pubkey(), P)], &[member])
            .await
            .unwrap();
    }
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Rejected);
    assert_eq!(proposal.approvals, vec![council.member(0).pubkey()]);
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ProposalClosed);
    assert_eq!(meter_status(&mut env).await, MeterStatus::Active);
}

#[tokio::test]
async fn an_approver_who_changes_their_mind_withdraws_the_approval_not_the_proposal() {
    let (mut env, council, suspend) = governed_with_meter().await;
    fixtures::approved_proposal(&mut env, &council, P, &suspend).await;
    let approver = council.member(1);
    env.send(&[governance_ix::reject(approver.pubkey(), P)], &[approver])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    assert_eq!(proposal.approvals, vec![council.member(0).pubkey()]);
    assert_eq!(proposal.rejections, vec![approver.pubkey()]);
    // Below the threshold it cannot run, timelock or not.
    env.advance_clock(i64::from(TIMELOCK)).await;
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(env.send(&[ix], &[]).await, GovernanceError::ThresholdNotMet);
    // Rejecting twice is refused; approving after rejecting too.
    let ix = governance_ix::reject(approver.pubkey(), P);
    assert_error(
        env.send(&[ix], &[approver]).await,
        GovernanceError::AlreadyVoted,
    );
    let ix = governance_ix::approve(approver.pubkey(), P);
    assert_error(
        env.send(&[ix], &[approver]).await,
        GovernanceError::AlreadyVoted,
    );
    // Member 2 approves: the threshold is reached again and the timelock starts again.
    let member = council.member(2);
    env.send(&[governance_ix::approve(member.pubkey(), P)], &[member])
        .await
        .unwrap();
    let ix = governance_ix::execute(env.payer(), P, &suspend);
    assert_error(
        env.send(&[ix], &[]).await,
        GovernanceError::TimelockNotElapsed,
    );
    env.advance_clock(i64::from(TIMELOCK)).await;
    env.send(&[governance_ix::execute(env.payer(), P, &suspend)], &[])
        .await
        .unwrap();
    assert_eq!(meter_status(&mut env).await, MeterStatus::Suspended);
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
        max_guardian_pause_s: fixtures::GUARDIAN_PAUSE_S,
        guardian_cooldown_s: fixtures::GUARDIAN_COOLDOWN_S,
    };
    let update = governance_ix::update_council(config);
    assert_eq!(update.data.len(), 797);
    // A member proposes from their own wallet (one signature, one fee payer).
    let proposer = council.member(0);
    let ix = governance_ix::propose(proposer.pubkey(), P, &update);
    let tx = env.transaction_paid_by(std::slice::from_ref(&ix), proposer);
    let size = gridtokenx_tests::transaction_size(&tx);
    assert!(
        size <= gridtokenx_tests::MAX_TRANSACTION_SIZE,
        "{size} bytes"
    );
    assert_eq!(size, 1_183);
    env.ctx.banks_client.process_transaction(tx).await.unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.instruction.data.len(), 797);
}

#[tokio::test]
async fn votes_stay_bounded_by_the_current_council_across_rotations() {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    // A full council of 16 that needs 8 approvals.
    let mut old = Vec::new();
    for _ in 0..governance::MAX_MEMBERS {
        old.push(env.funded_keypair(fixtures::SOL).await);
    }
    let guardian = env.funded_keypair(fixtures::SOL).await;
    let council = fixtures::Council {
        members: old,
        guardian,
        threshold: 8,
        timelock_seconds: 0,
    };
    let ix = governance_ix::initialize_council(env.payer(), council.config());
    env.send(&[ix], &[]).await.unwrap();
    // Proposal 0 collects 7 approvals, from members 9..=15, and stays Active.
    let target = registry_ix::set_paused(registry_authority(), true);
    let voters: Vec<usize> = (9..16).collect();
    fixtures::approved_proposal_by(&mut env, &council, 0, &target, &voters).await;
    // Proposal 1 replaces members 8..=15 by 8 new ones; the 8 who stay approve it (those
    // it removes may not vote on it).
    let mut new = Vec::new();
    for _ in 0..8 {
        new.push(env.funded_keypair(fixtures::SOL).await);
    }
    let mut config = council.config();
    config.members = council.members[..8]
        .iter()
        .chain(&new)
        .map(|k| k.pubkey())
        .collect();
    let update = governance_ix::update_council(config.clone());
    let stay: Vec<usize> = (0..8).collect();
    fixtures::approved_proposal_by(&mut env, &council, 1, &update, &stay).await;
    env.send(&[governance_ix::execute(env.payer(), 1, &update)], &[])
        .await
        .unwrap();
    // All 16 current members vote on proposal 0: 7 stale + 16 votes would not fit the
    // account; the stale votes are dropped instead.
    for member in council.members[..8].iter().chain(&new) {
        env.send(&[governance_ix::approve(member.pubkey(), 0)], &[member])
            .await
            .unwrap();
    }
    let proposal: Proposal = env.account(proposal_address(0)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    assert_eq!(proposal.approvals, config.members);
}

// ---- nobody alone halts the campus (issue 25) ----

/// A campus with meter 1, governed by 3 members (threshold 2) of whom member 0 is also the
/// guardian: the rogue of the attack.
async fn council_with_a_rogue_guardian() -> (TestEnv, fixtures::Council, Keypair) {
    council_with_a_rogue_guardian_of(2).await
}

async fn council_with_a_rogue_guardian_of(threshold: u8) -> (TestEnv, fixtures::Council, Keypair) {
    let mut env = TestEnv::start().await;
    fixtures::campus(&mut env).await;
    let owner = fixtures::meter(&mut env, test_lfdi(1)).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(env.funded_keypair(fixtures::SOL).await);
    }
    let council = fixtures::Council {
        guardian: members[0].insecure_clone(),
        members,
        threshold,
        timelock_seconds: TIMELOCK,
    };
    let ix = governance_ix::initialize_council(env.payer(), council.config());
    env.send(&[ix], &[]).await.unwrap();
    let payer = env.payer();
    fixtures::hand_over(
        &mut env,
        &council,
        registry_ix::propose_authority(payer, registry_authority()),
        registry_ix::accept_authority(registry_authority()),
    )
    .await;
    (env, council, owner)
}

async fn registry_paused(env: &mut TestEnv) -> bool {
    let now = env.now().await;
    env.account::<Campus>(campus_address()).await.is_paused(now)
}

/// The attack: a member who is also a guardian pauses the registry, then rejects the
/// approved unpause and the approved proposal removing them. Now the unpause runs (one
/// rejection is not the defeat count), the rogue may not vote on their own removal, and a
/// council of 3 with threshold 2 removes them against their will.
#[tokio::test]
async fn a_member_who_is_a_guardian_cannot_halt_the_campus_and_is_removed() {
    let (mut env, council, _) = council_with_a_rogue_guardian().await;
    let rogue = council.member(0);
    let ix = governance_ix::guardian_pause(rogue.pubkey(), registry::ID, campus_address());
    env.send(&[ix], &[rogue]).await.unwrap();
    assert!(registry_paused(&mut env).await);

    let unpause = registry_ix::set_paused(registry_authority(), false);
    let mut removal = council.config();
    removal.members.remove(0);
    removal.guardians.clear();
    let removal = governance_ix::update_council(removal);
    let (unpause_index, removal_index) = (P, P + 1);
    fixtures::approved_proposal_by(&mut env, &council, unpause_index, &unpause, &[1, 2]).await;
    fixtures::approved_proposal_by(&mut env, &council, removal_index, &removal, &[1, 2]).await;
    // The rogue rejects the unpause in its timelock: one rejection of the defeat count of 2.
    env.send(
        &[governance_ix::reject(rogue.pubkey(), unpause_index)],
        &[rogue],
    )
    .await
    .unwrap();
    let proposal: Proposal = env.account(proposal_address(unpause_index)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    // And may not vote on their own removal at all.
    for vote in [
        governance_ix::reject(rogue.pubkey(), removal_index),
        governance_ix::approve(rogue.pubkey(), removal_index),
    ] {
        assert_error(
            env.send(&[vote], &[rogue]).await,
            GovernanceError::VoteOnOwnRemoval,
        );
    }
    env.advance_clock(i64::from(TIMELOCK)).await;
    for (index, ix) in [(unpause_index, &unpause), (removal_index, &removal)] {
        env.send(&[governance_ix::execute(env.payer(), index, ix)], &[])
            .await
            .unwrap();
    }
    assert!(!registry_paused(&mut env).await);
    let stored: Council = env.account(council_address()).await;
    assert_eq!(
        stored.members,
        vec![council.member(1).pubkey(), council.member(2).pubkey()]
    );
    assert!(stored.guardians.is_empty());
    // Out of the council, the rogue can neither vote nor pause.
    let ix = governance_ix::guardian_pause(rogue.pubkey(), registry::ID, campus_address());
    assert_error(
        env.send(&[ix], &[rogue]).await,
        GovernanceError::NotGuardian,
    );
}

/// A unanimous council (3 of 3) is no hostage of its rogue: removing one member needs the
/// approval of every other one, and a lone member can never remove the other two.
#[tokio::test]
async fn a_unanimous_council_removes_a_rogue_and_a_minority_removes_nobody() {
    let (mut env, council, _) = council_with_a_rogue_guardian_of(3).await;
    let mut removal = council.config();
    removal.members.remove(0);
    removal.guardians.clear();
    removal.threshold = 2;
    let removal = governance_ix::update_council(removal);
    fixtures::approved_proposal_by(&mut env, &council, P, &removal, &[1]).await;
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Active);
    let member = council.member(2);
    env.send(&[governance_ix::approve(member.pubkey(), P)], &[member])
        .await
        .unwrap();
    let proposal: Proposal = env.account(proposal_address(P)).await;
    assert_eq!(proposal.status, ProposalStatus::Approved);
    // Member 1 alone proposes to remove members 0 and 2: one approval of the three the
    // threshold needs (the one left is no majority), so it never passes.
    let mut coup = council.config();
    coup.members.retain(|m| *m == council.member(1).pubkey());
    coup.threshold = 1;
    let coup = governance_ix::update_council(coup);
    fixtures::approved_proposal_by(&mut env, &council, P + 1, &coup, &[1]).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    assert_error(
        env.send(&[governance_ix::execute(env.payer(), P + 1, &coup)], &[])
            .await,
        GovernanceError::ThresholdNotMet,
    );
    env.send(&[governance_ix::execute(env.payer(), P, &removal)], &[])
        .await
        .unwrap();
    let stored: Council = env.account(council_address()).await;
    assert_eq!(
        stored.members,
        vec![council.member(1).pubkey(), council.member(2).pubkey()]
    );
    assert_eq!(stored.threshold, 2);
}

#[tokio::test]
async fn a_guardian_pause_lapses_by_itself_after_the_councils_limit() {
    let (mut env, council, owner) = council_with_a_rogue_guardian().await;
    let guardian = &council.guardian;
    let ix = governance_ix::guardian_pause(guardian.pubkey(), registry::ID, campus_address());
    env.send(&[ix], &[guardian]).await.unwrap();
    // While paused, the owner cannot hand the building over.
    let buyer = Keypair::new();
    let transfer =
        registry_ix::transfer_meter_ownership(&test_lfdi(1), owner.pubkey(), buyer.pubkey());
    assert_error(
        env.send(std::slice::from_ref(&transfer), &[&owner, &buyer])
            .await,
        RegistryError::Paused,
    );
    env.advance_clock(i64::from(fixtures::GUARDIAN_PAUSE_S) - 1)
        .await;
    assert!(registry_paused(&mut env).await);
    env.advance_clock(1).await;
    // No proposal: the pause is over.
    assert!(!registry_paused(&mut env).await);
    env.send(&[transfer], &[&owner, &buyer]).await.unwrap();
}

#[tokio::test]
async fn a_guardian_cannot_pause_the_same_program_again_within_the_cooldown() {
    let (mut env, council, _) = council_with_a_rogue_guardian().await;
    let guardian = &council.guardian;
    let pause = governance_ix::guardian_pause(guardian.pubkey(), registry::ID, campus_address());
    env.send(std::slice::from_ref(&pause), &[guardian])
        .await
        .unwrap();
    // Lapsed, and at once paused again: refused until the cooldown has passed.
    env.advance_clock(i64::from(fixtures::GUARDIAN_PAUSE_S))
        .await;
    assert_error(
        env.send(std::slice::from_ref(&pause), &[guardian]).await,
        GovernanceError::GuardianCooldown,
    );
    assert!(!registry_paused(&mut env).await);
    env.advance_clock(i64::from(
        fixtures::GUARDIAN_COOLDOWN_S - fixtures::GUARDIAN_PAUSE_S,
    ))
    .await;
    env.send(&[pause], &[guardian]).await.unwrap();
    assert!(registry_paused(&mut env).await);
}

#[tokio::test]
async fn a_guardian_pause_never_shortens_one_the_council_voted() {
    let (mut env, council, _) = council_with_a_rogue_guardian().await;
    let pause = registry_ix::set_paused(registry_authority(), true);
    fixtures::run_proposal(&mut env, &council, &pause).await;
    let guardian = &council.guardian;
    let ix = governance_ix::guardian_pause(guardian.pubkey(), registry::ID, campus_address());
    env.send(&[ix], &[guardian]).await.unwrap();
    env.advance_clock(i64::from(fixtures::GUARDIAN_PAUSE_S) + 1)
        .await;
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        program_common::pause::INDEFINITELY
    );
}

#[tokio::test]
async fn a_council_extends_a_guardian_pause_or_lifts_it_early() {
    let (mut env, council, _) = council_with_a_rogue_guardian().await;
    let guardian = &council.guardian;
    let ix = governance_ix::guardian_pause(guardian.pubkey(), registry::ID, campus_address());
    env.send(&[ix], &[guardian]).await.unwrap();
    // Extended to a week from now (the proposal runs after its one-hour timelock).
    let until = env.now().await + 7 * 86_400;
    let extend = registry_ix::pause_until(registry_authority(), until);
    fixtures::run_proposal(&mut env, &council, &extend).await;
    assert_eq!(
        env.account::<Campus>(campus_address()).await.paused_until,
        until
    );
    env.advance_clock(i64::from(fixtures::GUARDIAN_PAUSE_S))
        .await;
    assert!(registry_paused(&mut env).await);
    // A time not after the clock is refused; 0 lifts the pause.
    let past = registry_ix::pause_until(registry_authority(), 1);
    let index = fixtures::next_proposal_index(&mut env).await;
    fixtures::approved_proposal(&mut env, &council, index, &past).await;
    env.advance_clock(i64::from(TIMELOCK)).await;
    assert_error(
        env.send(&[governance_ix::execute(env.payer(), index, &past)], &[])
            .await,
        RegistryError::InvalidPause,
    );
    let lift = registry_ix::set_paused(registry_authority(), false);
    fixtures::run_proposal(&mut env, &council, &lift).await;
    assert!(!registry_paused(&mut env).await);
}
