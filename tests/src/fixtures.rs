//! Common starting states: a campus with meters, a council, a hand-over to governance.
use governance::CouncilConfig;
use registry::identity::Lfdi;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::{governance_ix, registry_ix, TestEnv};

pub const SOL: u64 = 1_000_000_000;

/// A campus whose bootstrap authority is the payer.
pub async fn campus(env: &mut TestEnv) {
    let payer = env.payer();
    env.send(&[registry_ix::initialize_campus(payer, "Test Campus")], &[])
        .await
        .expect("initialize campus");
}

/// Registers a meter for a new, funded owner; returns the owner.
pub async fn meter(env: &mut TestEnv, lfdi: Lfdi) -> Keypair {
    let owner = env.funded_keypair(SOL).await;
    let ix = registry_ix::register_meter(env.payer(), owner.pubkey(), lfdi);
    env.send(&[ix], &[&owner]).await.expect("register meter");
    owner
}

/// A council of funded members with one guardian.
pub struct Council {
    pub members: Vec<Keypair>,
    pub guardian: Keypair,
    pub threshold: u8,
    pub timelock_seconds: u32,
}

impl Council {
    pub fn config(&self) -> CouncilConfig {
        CouncilConfig {
            members: self.members.iter().map(|m| m.pubkey()).collect(),
            guardians: vec![self.guardian.pubkey()],
            threshold: self.threshold,
            timelock_seconds: self.timelock_seconds,
            max_guardian_pause_s: GUARDIAN_PAUSE_S,
            guardian_cooldown_s: GUARDIAN_COOLDOWN_S,
        }
    }

    pub fn member(&self, i: usize) -> &Keypair {
        &self.members[i]
    }
}

pub const TIMELOCK: u32 = 3600;
/// A guardian's pause lapses after 72 hours; the same guardian may pause the same program
/// again a week after its last pause (the campus file's defaults).
pub const GUARDIAN_PAUSE_S: u32 = 72 * 3600;
pub const GUARDIAN_COOLDOWN_S: u32 = 7 * 86_400;

/// Three members, threshold two, a one-hour timelock.
pub async fn council(env: &mut TestEnv) -> Council {
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(env.funded_keypair(SOL).await);
    }
    let guardian = env.funded_keypair(SOL).await;
    let council = Council {
        members,
        guardian,
        threshold: 2,
        timelock_seconds: TIMELOCK,
    };
    let ix = governance_ix::initialize_council(env.payer(), council.config());
    env.send(&[ix], &[]).await.expect("initialize council");
    council
}

/// Campus and council, with the registry handed over to governance.
pub async fn governed_campus(env: &mut TestEnv) -> Council {
    campus(env).await;
    let council = council(env).await;
    hand_over(
        env,
        &council,
        registry_ix::propose_authority(env.payer(), governance_ix::authority_for(registry::ID)),
        registry_ix::accept_authority(governance_ix::authority_for(registry::ID)),
    )
    .await;
    council
}

/// Hands a program to governance in two steps: the payer (its authority) sends `propose`,
/// then the council accepts through a proposal that runs `accept` (timelock included).
pub async fn hand_over(
    env: &mut TestEnv,
    council: &Council,
    propose: solana_instruction::Instruction,
    accept: solana_instruction::Instruction,
) {
    env.send(&[propose], &[]).await.expect("propose authority");
    run_proposal(env, council, &accept).await;
}

/// Proposes `target`, has the threshold approve it, waits out the timelock and executes it.
pub async fn run_proposal(
    env: &mut TestEnv,
    council: &Council,
    target: &solana_instruction::Instruction,
) {
    let index = next_proposal_index(env).await;
    approved_proposal(env, council, index, target).await;
    env.advance_clock(i64::from(council.timelock_seconds)).await;
    let payer = env.payer();
    env.send(&[governance_ix::execute(payer, index, target)], &[])
        .await
        .expect("execute proposal");
}

/// The index the next proposal will get.
pub async fn next_proposal_index(env: &mut TestEnv) -> u64 {
    let council: governance::Council = env.account(governance_ix::council_address()).await;
    council.proposal_count
}

/// Proposes `target` as proposal `index` and has the first `threshold` members approve it.
pub async fn approved_proposal(
    env: &mut TestEnv,
    council: &Council,
    index: u64,
    target: &solana_instruction::Instruction,
) {
    let voters: Vec<usize> = (0..usize::from(council.threshold)).collect();
    approved_proposal_by(env, council, index, target, &voters).await;
}

/// Member `voters[0]` proposes `target` as proposal `index`; each of `voters` approves it.
pub async fn approved_proposal_by(
    env: &mut TestEnv,
    council: &Council,
    index: u64,
    target: &solana_instruction::Instruction,
    voters: &[usize],
) {
    let proposer = council.member(voters[0]);
    env.send(
        &[governance_ix::propose(proposer.pubkey(), index, target)],
        &[proposer],
    )
    .await
    .expect("propose");
    for &i in voters {
        let member = council.member(i);
        env.send(&[governance_ix::approve(member.pubkey(), index)], &[member])
            .await
            .expect("approve");
    }
}
