//! Migrations on the embedded chain: a half-finished run completes on the next, a finished
//! one is a no-op, and every program's authority ends with governance through the council's
//! own proposal, approvals and timelock. Also the keeper's view of the registry (meters
//! discovered on chain, not from the campus file).
use anchor_lang::prelude::Pubkey;
use governance::CouncilConfig;
use gridtokenx_tests::campus_day::{self, create_quote_mint};
use gridtokenx_tests::embedded::EmbeddedChain;
use keeper::Keeper;
use migrations::{MigrationReport, Plan, PlannedMeter};
use oracle::ReadingLimits;
use sdk::accounts::{anchor_account, zero_copy};
use sdk::chain::{send_and_confirm, Chain, SendPolicy};
use sdk::ix::{
    energy_token as token_ix, governance as gov_ix, oracle as oracle_ix, registry as registry_ix,
    trading as market_ix,
};
use sdk::CampusConfig;
use solana_keypair::Keypair;
use solana_signer::Signer;

const TIMELOCK: u32 = 3_600;

async fn fund(chain: &mut EmbeddedChain, to: &Pubkey) {
    campus_day::fund(chain, to, 1_000_000_000)
        .await
        .expect("fund");
}

struct Setup {
    chain: EmbeddedChain,
    config: CampusConfig,
    meters: Vec<(String, [u8; 20], Keypair)>,
    members: Vec<Keypair>,
    quote_mint: Pubkey,
}

async fn setup() -> Setup {
    let mut chain = EmbeddedChain::start().await;
    let config = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
    let mut meters = Vec::new();
    for (i, b) in config.buildings.iter().enumerate() {
        let owner = Keypair::new();
        fund(&mut chain, &owner.pubkey()).await;
        let mut lfdi = [0u8; 20];
        lfdi[0] = 0xA0;
        lfdi[19] = i as u8;
        meters.push((b.code.clone(), lfdi, owner));
    }
    let members: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
    for m in &members {
        fund(&mut chain, &m.pubkey()).await;
    }
    let quote_mint = create_quote_mint(&mut chain).await.unwrap();
    Setup {
        chain,
        config,
        meters,
        members,
        quote_mint,
    }
}

/// A plan for the first `meters` buildings, signing with `signers` of the council.
fn plan<'a>(
    config: &'a CampusConfig,
    all: &[(String, [u8; 20], Keypair)],
    members: &[Keypair],
    quote_mint: Pubkey,
    meters: usize,
    signers: &[usize],
) -> Plan<'a> {
    Plan {
        campus: config,
        meters: all[..meters]
            .iter()
            .map(|(code, lfdi, owner)| PlannedMeter {
                code: code.clone(),
                lfdi: *lfdi,
                owner: owner.insecure_clone(),
            })
            .collect(),
        attestors: vec![Pubkey::new_unique()],
        limits: ReadingLimits {
            max_future_skew_s: 60,
            min_interval_s: 60,
            max_age_s: 86_400,
            tolerance_bps: 1_000,
        },
        council: CouncilConfig {
            members: members.iter().map(|m| m.pubkey()).collect(),
            guardians: vec![members[0].pubkey()],
            threshold: 2,
            timelock_seconds: TIMELOCK,
            max_guardian_pause_s: gridtokenx_tests::fixtures::GUARDIAN_PAUSE_S,
            guardian_cooldown_s: gridtokenx_tests::fixtures::GUARDIAN_COOLDOWN_S,
        },
        quote_mint,
        market: sdk::campus::MarketTerms::default()
            .params()
            .expect("the default ladder"),
        market_start: 0,
        council_signers: signers
            .iter()
            .map(|&i| members[i].insecure_clone())
            .collect(),
    }
}

impl Setup {
    async fn apply(&mut self, meters: usize, signers: &[usize]) -> MigrationReport {
        let plan = plan(
            &self.config,
            &self.meters,
            &self.members,
            self.quote_mint,
            meters,
            signers,
        );
        migrations::apply(&mut self.chain, &plan)
            .await
            .expect("migrate")
    }

    async fn advance(&mut self, seconds: i64) {
        let now = self.chain.clock().await.unwrap().unix_timestamp;
        self.chain.set_time(now + seconds).await.unwrap();
    }

    /// The four programs' (authority, pending authority).
    async fn authorities(&mut self) -> [(Pubkey, Pubkey); 4] {
        let c = &mut self.chain;
        let campus: registry::Campus = c
            .account(registry_ix::campus_address())
            .await
            .unwrap()
            .as_ref()
            .and_then(anchor_account)
            .unwrap();
        let oracle: oracle::OracleConfig = c
            .account(oracle_ix::config_address())
            .await
            .unwrap()
            .as_ref()
            .and_then(zero_copy)
            .unwrap();
        let token: energy_token::TokenConfig = c
            .account(token_ix::config_address())
            .await
            .unwrap()
            .as_ref()
            .and_then(anchor_account)
            .unwrap();
        let market: trading::Market = c
            .account(market_ix::market_address())
            .await
            .unwrap()
            .as_ref()
            .and_then(zero_copy)
            .unwrap();
        [
            (campus.authority, campus.pending_authority),
            (oracle.authority, oracle.pending_authority),
            (token.authority, token.pending_authority),
            (market.authority, market.pending_authority),
        ]
    }
}

fn governance_authorities() -> [Pubkey; 4] {
    [registry::ID, oracle::ID, energy_token::ID, trading::ID].map(gov_ix::authority_for)
}

#[tokio::test]
async fn a_half_finished_migration_completes_and_hands_every_authority_to_governance() {
    let mut s = setup().await;
    let payer = s.chain.payer_key();

    // A run that stopped after ten meters (as if killed): campus, council, ten meters and
    // everything after them for those ten. No member keys: the hand-over is proposed by the
    // deployer and waits for the council.
    let first = s.apply(10, &[]).await;
    assert!(
        first.applied.contains(&"meter ENG".to_string()),
        "{first:?}"
    );
    assert_eq!(
        first
            .applied
            .iter()
            .filter(|a| a.starts_with("meter "))
            .count(),
        10
    );
    assert_eq!(first.waiting.len(), 4, "{first:?}");
    // Per-meter steps share transactions (as many as fit a packet): ten registrations and
    // ten meters' accounts took far fewer than twenty.
    let per_meter = first
        .applied
        .iter()
        .filter(|a| a.starts_with("meter ") || a.starts_with("accounts of "))
        .count();
    assert_eq!(per_meter, 20);
    assert!(
        first.transactions + per_meter / 2 <= first.applied.len(),
        "{} transactions for {} steps",
        first.transactions,
        first.applied.len()
    );
    assert!(first.waiting[0].contains("council member must propose"));
    let governed = governance_authorities();
    for (i, (current, pending)) in s.authorities().await.into_iter().enumerate() {
        assert_eq!(current, payer, "program {i} still with the deployer");
        assert_eq!(pending, governed[i], "program {i} proposed to governance");
    }

    // The full plan with one member's key: the other fifteen meters, and proposals with one
    // approval each (the threshold is two).
    let second = s.apply(25, &[0]).await;
    assert_eq!(
        second
            .applied
            .iter()
            .filter(|a| a.starts_with("meter "))
            .count(),
        15,
        "{second:?}"
    );
    assert!(second
        .applied
        .iter()
        .all(|a| !a.contains("proposed to governance")));
    assert_eq!(
        second
            .applied
            .iter()
            .filter(|a| a.contains("governance proposal"))
            .count(),
        4
    );
    assert!(
        second
            .waiting
            .iter()
            .all(|w| w.contains("1 of 2 approvals")),
        "{second:?}"
    );
    let registered: registry::Campus = s
        .chain
        .account(registry_ix::campus_address())
        .await
        .unwrap()
        .as_ref()
        .and_then(anchor_account)
        .unwrap();
    assert_eq!(registered.meter_count, 25);

    // A second member approves: the timelock starts; running again before it ends executes
    // nothing.
    let third = s.apply(25, &[1]).await;
    assert_eq!(
        third
            .applied
            .iter()
            .filter(|a| a.contains("approved"))
            .count(),
        4,
        "{third:?}"
    );
    assert!(
        third.waiting.iter().all(|w| w.contains("timelock")),
        "{third:?}"
    );
    s.advance(i64::from(TIMELOCK) - 120).await;
    let early = s.apply(25, &[0, 1, 2]).await;
    assert!(early.applied.is_empty(), "{early:?}");
    assert_eq!(early.waiting.len(), 4);
    for (current, _) in s.authorities().await {
        assert_eq!(current, payer);
    }

    // After the timelock anyone executes (no member key needed).
    s.advance(180).await;
    let executed = s.apply(25, &[]).await;
    assert_eq!(executed.applied.len(), 4, "{executed:?}");
    assert!(executed.complete());
    for (i, (current, pending)) in s.authorities().await.into_iter().enumerate() {
        assert_eq!(current, governed[i], "program {i} governed");
        assert_eq!(pending, Pubkey::default());
    }

    // Finished: a no-op.
    let again = s.apply(25, &[0, 1, 2]).await;
    assert!(again.applied.is_empty(), "{again:?}");
    assert!(again.complete());

    // The deployer can no longer act alone: a privileged call is refused.
    let refused = send_and_confirm(
        &mut s.chain,
        &[registry_ix::set_paused(payer, true)],
        &[],
        &[],
        SendPolicy::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.custom_code(),
        Some(registry::RegistryError::Unauthorized.into()),
        "{refused}"
    );
}

#[tokio::test]
async fn a_program_held_by_someone_else_is_not_taken_over() {
    let mut s = setup().await;
    s.apply(3, &[]).await;
    // The registry's authority moves to another key (outside the migration).
    let other = Keypair::new();
    fund(&mut s.chain, &other.pubkey()).await;
    let payer = s.chain.payer_key();
    let steps = [
        (
            registry_ix::propose_authority(payer, other.pubkey()),
            vec![],
        ),
        (registry_ix::accept_authority(other.pubkey()), vec![&other]),
    ];
    for (ix, signers) in steps {
        send_and_confirm(&mut s.chain, &[ix], &signers, &[], SendPolicy::default())
            .await
            .unwrap();
    }
    let plan = plan(&s.config, &s.meters, &s.members, s.quote_mint, 3, &[0, 1]);
    let err = migrations::apply(&mut s.chain, &plan).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("the registry authority is") && text.contains(&other.pubkey().to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn the_keeper_takes_its_meters_from_the_registry() {
    let mut s = setup().await;
    s.apply(25, &[]).await;
    // Bootstrapped with a stale list (one unknown meter): the registry replaces it.
    let mut keeper = Keeper::new(None, vec![[0xEE; 20]]);
    let meters = keeper.refresh_meters(&mut s.chain).await.unwrap();
    assert_eq!(meters.len(), 25);
    let expected: Vec<[u8; 20]> = s.meters.iter().map(|(_, lfdi, _)| *lfdi).collect();
    assert_eq!(keeper.meters, expected, "in the registry's index order");
    assert_eq!(keeper.status.meters_registered, 25);
    assert_eq!(keeper.status.meters_active, 25);
    assert!(meters
        .iter()
        .enumerate()
        .all(|(i, m)| usize::from(m.index) == i));
}

/// The embedded chain as a flaky RPC node sees it: the per-meter accounts' transactions
/// (the oracle's `init_meter_state` among others) either land with their confirmation lost
/// (`land`) or never reach the chain (`!land`); either way the sender hears only that the
/// blockhash expired.
struct LostConfirmations<'c> {
    inner: &'c mut EmbeddedChain,
    land: bool,
    lost: std::collections::HashSet<solana_signature::Signature>,
}

impl LostConfirmations<'_> {
    fn per_meter(tx: &solana_transaction::versioned::VersionedTransaction) -> bool {
        let keys = tx.message.static_account_keys();
        tx.message
            .instructions()
            .iter()
            .any(|ix| keys[usize::from(ix.program_id_index)] == oracle::ID)
            && tx.message.instructions().len() > 2
    }
}

impl Chain for LostConfirmations<'_> {
    fn payer(&self) -> &Keypair {
        self.inner.payer()
    }
    async fn genesis_hash(&mut self) -> anyhow::Result<[u8; 32]> {
        self.inner.genesis_hash().await
    }
    async fn clock(&mut self) -> anyhow::Result<anchor_lang::prelude::Clock> {
        self.inner.clock().await
    }
    async fn accounts(
        &mut self,
        keys: &[Pubkey],
    ) -> anyhow::Result<Vec<Option<solana_account::Account>>> {
        self.inner.accounts(keys).await
    }
    async fn program_accounts_matching(
        &mut self,
        program: Pubkey,
        discriminator: &[u8],
        matching: &[(usize, Vec<u8>)],
    ) -> anyhow::Result<Vec<(Pubkey, solana_account::Account)>> {
        self.inner
            .program_accounts_matching(program, discriminator, matching)
            .await
    }
    async fn latest_blockhash(&mut self) -> anyhow::Result<solana_hash::Hash> {
        self.inner.latest_blockhash().await
    }
    async fn blockhash_valid(&mut self, blockhash: &solana_hash::Hash) -> anyhow::Result<bool> {
        self.inner.blockhash_valid(blockhash).await
    }
    async fn simulate(
        &mut self,
        tx: &solana_transaction::versioned::VersionedTransaction,
    ) -> anyhow::Result<sdk::chain::Simulation> {
        self.inner.simulate(tx).await
    }
    async fn send(
        &mut self,
        tx: &solana_transaction::versioned::VersionedTransaction,
    ) -> anyhow::Result<solana_signature::Signature> {
        if !Self::per_meter(tx) {
            return self.inner.send(tx).await;
        }
        self.lost.insert(tx.signatures[0]);
        if self.land {
            self.inner.send(tx).await
        } else {
            Ok(tx.signatures[0])
        }
    }
    async fn outcome(
        &mut self,
        signature: &solana_signature::Signature,
    ) -> anyhow::Result<sdk::chain::Outcome> {
        if self.lost.contains(signature) {
            return Ok(sdk::chain::Outcome::Failed {
                error: solana_transaction::TransactionError::BlockhashNotFound,
                logs: Vec::new(),
            });
        }
        self.inner.outcome(signature).await
    }
    async fn wait_for_slot_after(&mut self, slot: u64) -> anyhow::Result<()> {
        self.inner.wait_for_slot_after(slot).await
    }
}

/// Per-meter accounts of `meters` buildings that exist on chain.
async fn accounts_present(s: &mut Setup, meters: usize) -> usize {
    let keys: Vec<Pubkey> = s.meters[..meters]
        .iter()
        .flat_map(|(_, lfdi, owner)| {
            [
                oracle_ix::meter_state_address(lfdi),
                token_ix::ledger_address(lfdi),
                token_ix::ata(&owner.pubkey(), &token_ix::grid_mint()),
            ]
        })
        .collect();
    let found = s.chain.accounts(&keys).await.unwrap();
    found.iter().filter(|a| a.is_some()).count()
}

#[tokio::test]
async fn per_meter_steps_whose_confirmation_was_lost_are_found_on_chain() {
    let mut s = setup().await;
    let plan = plan(&s.config, &s.meters, &s.members, s.quote_mint, 25, &[]);
    let mut flaky = LostConfirmations {
        inner: &mut s.chain,
        land: true,
        lost: Default::default(),
    };
    let report = migrations::apply(&mut flaky, &plan).await.expect("migrate");
    let lost = flaky.lost.len();
    assert!(lost >= 2, "the per-meter steps took {lost} transactions");
    // Every step is reported applied, once, although none of its transactions confirmed.
    let accounts_of: Vec<_> = report
        .applied
        .iter()
        .filter(|a| a.starts_with("accounts of "))
        .collect();
    assert_eq!(accounts_of.len(), 25, "{report:?}");
    assert_eq!(accounts_present(&mut s, 25).await, 75);
    let again = s.apply(25, &[]).await;
    assert!(
        again.applied.iter().all(|a| !a.starts_with("accounts of ")),
        "{again:?}"
    );
}

#[tokio::test]
async fn per_meter_steps_that_never_landed_fail_the_run_and_the_next_run_applies_them() {
    let mut s = setup().await;
    let plan = plan(&s.config, &s.meters, &s.members, s.quote_mint, 25, &[]);
    let mut flaky = LostConfirmations {
        inner: &mut s.chain,
        land: false,
        lost: Default::default(),
    };
    let error = migrations::apply(&mut flaky, &plan)
        .await
        .expect_err("the accounts never reached the chain");
    let lost = flaky.lost.len();
    let message = format!("{error:#}");
    assert!(
        message.starts_with(&format!("{lost} migration transaction(s) failed")),
        "{message}"
    );
    assert!(message.contains("accounts of ENG"), "{message}");
    assert!(message.contains("run the migrations again"), "{message}");
    assert_eq!(accounts_present(&mut s, 25).await, 0);
    // The registrations before them landed; the next run applies only what is missing.
    let again = s.apply(25, &[]).await;
    assert!(
        again.applied.iter().all(|a| !a.starts_with("meter ")),
        "{again:?}"
    );
    assert_eq!(
        again
            .applied
            .iter()
            .filter(|a| a.starts_with("accounts of "))
            .count(),
        25
    );
    assert_eq!(accounts_present(&mut s, 25).await, 75);
}
