//! Programs under the upgradeable loader on the embedded bank, with its real loader: a
//! deploy through `sdk::loader` (buffer, writes, deploy), idempotent; the upgrade authority
//! handed to the council; then an upgrade only through a council proposal (write-buffer,
//! propose, approve, timelock, execute), which the deploy wallet can no longer do alone.
//!
//! Our own programs run natively here (the bank can't load their SBPF v3 builds), so the
//! program deployed and upgraded is an SPL build the bank can load (Memo, then Token): the
//! loader verifies each ELF as it deploys or upgrades it, and the tests read what the
//! program's accounts hold. Calling the deployed program is left to the validator
//! (`scripts/validator-deploy` upgrades the oracle there while the campus runs): this bank's
//! program cache refuses a program deployed before one of its slot warps.
use anchor_lang::prelude::Pubkey;
use gridtokenx_tests::embedded::EmbeddedChain;
use sdk::chain::{send_and_confirm, Chain, SendPolicy};
use sdk::loader::{self, ProgramState};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// The ELF of an SPL program the bank bundles.
fn spl_elf(id: &str) -> Vec<u8> {
    let id: Pubkey = id.parse().unwrap();
    let accounts =
        solana_program_binaries::by_id(&id, &solana_rent::Rent::default()).expect("bundled");
    solana_account::ReadableAccount::data(&accounts[0].1).to_vec()
}

/// SPL Memo 3.0: the build deployed first.
fn memo_build() -> Vec<u8> {
    spl_elf("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
}

/// SPL Token 3.5: the build the program is upgraded to. (SPL Memo 1.0 can't be deployed: it
/// uses the retired `sol_alloc_free_` syscall, which the loader refuses in new code.)
fn other_build() -> Vec<u8> {
    spl_elf("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
}

async fn send(
    chain: &mut EmbeddedChain,
    ixs: &[Instruction],
    signers: &[&Keypair],
) -> Result<Vec<String>, String> {
    send_and_confirm(chain, ixs, signers, &[], SendPolicy::default())
        .await
        .map(|c| c.logs)
        .map_err(|e| e.reason())
}

/// Writes a deployed program's two accounts as the loader leaves them (deployed in slot 0).
fn plant_program(
    chain: &mut EmbeddedChain,
    program: Pubkey,
    elf: &[u8],
    capacity: usize,
    authority: Pubkey,
) {
    use solana_loader_v3_interface::state::UpgradeableLoaderState;
    let rent = solana_rent::Rent::default();
    let program_data = loader::program_data_address(&program);
    let mut data = bincode::serialize(&UpgradeableLoaderState::ProgramData {
        slot: 0,
        upgrade_authority_address: Some(authority),
    })
    .unwrap();
    data.resize(loader::PROGRAM_DATA_METADATA, 0);
    data.extend_from_slice(elf);
    data.resize(loader::PROGRAM_DATA_METADATA + capacity, 0);
    let accounts = [
        (program_data, data, false),
        (
            program,
            bincode::serialize(&UpgradeableLoaderState::Program {
                programdata_address: program_data,
            })
            .unwrap(),
            true,
        ),
    ];
    for (address, data, executable) in accounts {
        chain.ctx.set_account(
            &address,
            &solana_account::AccountSharedData::from(solana_account::Account {
                lamports: rent.minimum_balance(data.len()),
                data,
                owner: loader::LOADER,
                executable,
                rent_epoch: 0,
            }),
        );
    }
}

/// Proposing `action` is refused before the vote, saying `why`.
async fn refused(
    chain: &mut EmbeddedChain,
    member: &Keypair,
    action: &cli::council::Action,
    why: &str,
) {
    let err = cli::council::propose(chain, member, action)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains(why), "{err:#}");
}

async fn chain_council_count(chain: &mut EmbeddedChain) -> u64 {
    let account = chain
        .account(sdk::ix::governance::council_address())
        .await
        .unwrap()
        .unwrap();
    sdk::accounts::anchor_account::<governance::Council>(&account)
        .unwrap()
        .proposal_count
}

async fn deployed(chain: &mut EmbeddedChain, program: &Pubkey) -> loader::Deployed {
    match loader::program_state(chain, program).await.unwrap() {
        ProgramState::Deployed(d) => d,
        other => panic!("{program} is not deployed: {other:?}"),
    }
}

/// A council of two (both must approve), 60 s timelock.
async fn council(chain: &mut EmbeddedChain) -> Vec<Keypair> {
    let members = vec![Keypair::new(), Keypair::new()];
    let config = governance::CouncilConfig {
        members: members.iter().map(|m| m.pubkey()).collect(),
        guardians: vec![],
        threshold: 2,
        timelock_seconds: 60,
        max_guardian_pause_s: 3_600,
        guardian_cooldown_s: 7_200,
    };
    let payer = chain.payer_key();
    send(
        chain,
        &[sdk::ix::governance::initialize_council(payer, config)],
        &[],
    )
    .await
    .unwrap();
    for m in &members {
        let ix = anchor_lang::solana_program::system_instruction::transfer(
            &payer,
            &m.pubkey(),
            1_000_000_000,
        );
        send(chain, &[ix], &[]).await.unwrap();
    }
    members
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_is_deployed_once_and_upgraded_only_through_the_council() {
    use cli::council::{self, Action};
    let mut chain = EmbeddedChain::start().await;
    let members = council(&mut chain).await;
    let (v1, v3) = (memo_build(), other_build());
    assert_ne!(v1, v3);

    // A program deployed with the wallet as its upgrade authority (written into the bank:
    // see the module's note; the deploy itself is the next test's).
    let program = Keypair::new();
    let payer = chain.payer_key();
    plant_program(&mut chain, program.pubkey(), &v1, v1.len() * 2, payer);
    let d = deployed(&mut chain, &program.pubkey()).await;
    assert!(d.holds(&v1) && !d.holds(&v3));
    assert_eq!(d.capacity, v1.len() * 2);
    assert_eq!(d.upgrade_authority, Some(payer));

    // Hand the upgrade authority to the council.
    loader::hand_upgrade_authority_to_council(&mut chain, &program.pubkey())
        .await
        .unwrap();
    let d = deployed(&mut chain, &program.pubkey()).await;
    assert_eq!(
        d.upgrade_authority,
        Some(loader::council_upgrade_authority())
    );
    let slot_before = d.slot;

    // The deploy wallet alone can no longer upgrade: the loader refuses its signature.
    let own = Keypair::new();
    loader::write_buffer(&mut chain, &own, &v3, 16)
        .await
        .unwrap();
    let direct = solana_loader_v3_interface::instruction::upgrade(
        &program.pubkey(),
        &own.pubkey(),
        &payer,
        &payer,
    );
    let err = send(&mut chain, &[direct], &[]).await.unwrap_err();
    assert!(err.contains("Incorrect authority provided"), "{err}");

    // Anyone writes a buffer and hands it to the council (council write-buffer).
    let writer = Keypair::new();
    let view = council::write_buffer(&mut chain, program.pubkey(), &v3, &writer)
        .await
        .unwrap();
    assert_eq!(view.sha256, loader::hex(&loader::elf_hash(&v3)));
    let b = loader::buffer(&mut chain, &writer.pubkey())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.authority, Some(loader::council_upgrade_authority()));

    // A buffer the council does not hold is refused before the vote.
    let spill = members[0].pubkey();
    refused(
        &mut chain,
        &members[0],
        &Action::Upgrade {
            program: program.pubkey(),
            buffer: own.pubkey(),
            spill,
        },
        "is not the council's",
    )
    .await;
    // Neither is a program whose upgrade authority the council does not hold.
    refused(
        &mut chain,
        &members[0],
        &Action::Upgrade {
            program: oracle::ID,
            buffer: writer.pubkey(),
            spill,
        },
        "not a program of the upgradeable loader",
    )
    .await;

    // A proposal made around a buffer its writer still holds (bypassing the CLI's check) is
    // shown as such, and no member's approval goes through the CLI: the writer could still
    // change its bytes after the vote.
    let raw = loader::upgrade_instruction(&program.pubkey(), &own.pubkey(), &spill);
    let raw_index = chain_council_count(&mut chain).await;
    send(
        &mut chain,
        &[sdk::ix::governance::propose(
            members[0].pubkey(),
            raw_index,
            &raw,
        )],
        &[&members[0]],
    )
    .await
    .unwrap();
    let listed = council::proposals(&mut chain, false).await.unwrap();
    let shown = listed.iter().find(|p| p.index == raw_index).unwrap();
    assert!(
        shown
            .detail
            .as_deref()
            .unwrap()
            .contains("NOT held by the council"),
        "{shown:?}"
    );
    let err = council::vote(&mut chain, &members[1], raw_index, true)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("NOT held by the council"),
        "{err:#}"
    );
    council::cancel(&mut chain, &members[0], raw_index)
        .await
        .unwrap();

    // A council buffer no upgrade will use is closed by a proposal too, its rent returned;
    // a buffer someone else holds is theirs to close.
    let spare = Keypair::new();
    council::write_buffer(&mut chain, program.pubkey(), &v1, &spare)
        .await
        .unwrap();
    let rent = chain
        .account(spare.pubkey())
        .await
        .unwrap()
        .unwrap()
        .lamports;
    let recipient = Pubkey::new_unique();
    refused(
        &mut chain,
        &members[0],
        &Action::CloseBuffer {
            buffer: own.pubkey(),
            recipient,
        },
        "its holder closes it",
    )
    .await;
    let close = council::propose(
        &mut chain,
        &members[0],
        &Action::CloseBuffer {
            buffer: spare.pubkey(),
            recipient,
        },
    )
    .await
    .unwrap();
    let listed = council::proposals(&mut chain, false).await.unwrap();
    let shown = listed.iter().find(|p| p.index == close).unwrap();
    assert_eq!(
        shown.action,
        format!("loader.close {} (rent to {recipient})", spare.pubkey())
    );
    for m in &members {
        council::vote(&mut chain, m, close, true).await.unwrap();
    }
    let now = chain.clock().await.unwrap().unix_timestamp;
    chain.set_time(now + 61).await.unwrap();
    council::execute(&mut chain, &members[0], close)
        .await
        .unwrap();
    assert!(chain
        .account(spare.pubkey())
        .await
        .unwrap()
        .is_none_or(|a| a.lamports == 0));
    assert_eq!(
        chain.account(recipient).await.unwrap().unwrap().lamports,
        rent
    );

    // Propose, approve (both members), wait out the timelock, execute.
    let action = Action::Upgrade {
        program: program.pubkey(),
        buffer: writer.pubkey(),
        spill,
    };
    let index = council::propose(&mut chain, &members[0], &action)
        .await
        .unwrap();
    let listed = council::proposals(&mut chain, false).await.unwrap();
    assert_eq!(
        listed[0].action,
        format!(
            "upgrade {} from buffer {}",
            program.pubkey(),
            writer.pubkey()
        )
    );
    let hash = loader::hex(&loader::elf_hash(&v3));
    assert_eq!(
        listed[0].detail.as_deref(),
        Some(
            format!(
                "buffer {}: {} bytes, sha256 {hash}, held by the council",
                writer.pubkey(),
                v3.len()
            )
            .as_str()
        )
    );
    // A voter's own build must match the buffer's.
    let err = council::check_upgrade_build(
        &mut chain,
        index,
        Some(&loader::hex(&loader::elf_hash(&v1))),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("holds another build"),
        "{err:#}"
    );
    council::check_upgrade_build(&mut chain, index, Some(&hash.to_uppercase()))
        .await
        .unwrap();
    council::vote(&mut chain, &members[0], index, true)
        .await
        .unwrap();
    council::vote(&mut chain, &members[1], index, true)
        .await
        .unwrap();
    let err = council::execute(&mut chain, &members[1], index)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("timelock runs until"),
        "{err:#}"
    );
    let now = chain.clock().await.unwrap().unix_timestamp;
    chain.set_time(now + 61).await.unwrap();
    let spill_before = chain.account(spill).await.unwrap().unwrap().lamports;
    let buffer_lamports = chain
        .account(writer.pubkey())
        .await
        .unwrap()
        .unwrap()
        .lamports;
    council::execute(&mut chain, &members[1], index)
        .await
        .unwrap();
    chain.skip_slots(2).await.unwrap();

    let d = deployed(&mut chain, &program.pubkey()).await;
    assert!(
        d.holds(&v3) && !d.holds(&v1),
        "the program holds the new build"
    );
    assert!(d.slot > slot_before);
    assert_eq!(
        d.upgrade_authority,
        Some(loader::council_upgrade_authority())
    );
    assert!(chain
        .account(writer.pubkey())
        .await
        .unwrap()
        .is_none_or(|a| a.lamports == 0));
    let spill_after = chain.account(spill).await.unwrap().unwrap().lamports;
    assert!(
        spill_after >= spill_before + buffer_lamports - 10_000,
        "the buffer's rent went to the spill account"
    );
    // The proposal ran once.
    let err = council::execute(&mut chain, &members[1], index)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("nothing to execute"), "{err:#}");
}

/// The migration's last step hands every GridTokenX program's upgrade authority that the
/// wallet holds to the council; builtins (the embedded chain's programs) are reported as
/// not upgradeable, and a second run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hand_over_of_upgrade_authorities_skips_builtins_and_is_idempotent() {
    use migrations::deploy::{hand_upgrade_authorities, AuthorityOutcome};
    let mut chain = EmbeddedChain::start().await;
    let first = hand_upgrade_authorities(&mut chain).await.unwrap();
    assert_eq!(first.len(), 5);
    assert!(
        first
            .iter()
            .all(|(_, o)| *o == AuthorityOutcome::NotUpgradeable),
        "{first:?}"
    );
    assert_eq!(hand_upgrade_authorities(&mut chain).await.unwrap(), first);
}

/// The deploy step itself (what `migrate --deploy` runs for the five programs), on a program
/// of its own: deployed once with its keypair; left alone when the same build is there;
/// reported and left alone when another build is; and deployed without a keypair into a
/// loader-owned uninitialised account (how a validator stands in for devnet at the declared
/// ids). The buffer's keypair is kept only until its deploy lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_step_is_idempotent_and_leaves_other_builds_alone() {
    use migrations::deploy::{deploy_programs, Outcome, ProgramFile};
    let mut chain = EmbeddedChain::start().await;
    let keys = tempfile::tempdir().unwrap();
    let program = Keypair::new();
    let file = |elf: Vec<u8>, keypair: Option<&Keypair>, id: Pubkey| ProgramFile {
        lib: "memo",
        id,
        elf,
        keypair: keypair.map(|k| k.insecure_clone()),
        path: "memo.so".into(),
    };
    let v1 = memo_build();
    let first = deploy_programs(
        &mut chain,
        &[file(v1.clone(), Some(&program), program.pubkey())],
        keys.path(),
        25,
    )
    .await
    .unwrap();
    match &first[0].outcome {
        Outcome::Deployed {
            elf_len,
            capacity,
            transactions,
            rent_lamports,
        } => {
            assert_eq!(*elf_len, v1.len());
            assert_eq!(*capacity, v1.len() + v1.len() / 4);
            assert!(*transactions > v1.len() / 1_100, "{transactions}");
            assert!(*rent_lamports > 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !keys.path().join("buffers/memo.json").exists(),
        "the spent buffer's key is gone"
    );
    chain.skip_slots(2).await.unwrap();
    let balance = chain
        .account(chain.payer_key())
        .await
        .unwrap()
        .unwrap()
        .lamports;
    let again = deploy_programs(
        &mut chain,
        &[file(v1.clone(), None, program.pubkey())],
        keys.path(),
        25,
    )
    .await
    .unwrap();
    assert_eq!(again[0].outcome, Outcome::InPlace);
    // Another build where this wallet still holds the upgrade authority: refused (handing
    // it over would lock in a build nobody chose).
    let err = deploy_programs(
        &mut chain,
        &[file(other_build(), None, program.pubkey())],
        keys.path(),
        25,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("still holds its upgrade authority"),
        "{err:#}"
    );
    assert_eq!(
        chain
            .account(chain.payer_key())
            .await
            .unwrap()
            .unwrap()
            .lamports,
        balance,
        "a second run sends nothing"
    );
    // Once the council holds it: reported as another build, left alone (an upgrade).
    loader::hand_upgrade_authority_to_council(&mut chain, &program.pubkey())
        .await
        .unwrap();
    let balance = chain
        .account(chain.payer_key())
        .await
        .unwrap()
        .unwrap()
        .lamports;
    let other = deploy_programs(
        &mut chain,
        &[file(other_build(), None, program.pubkey())],
        keys.path(),
        25,
    )
    .await
    .unwrap();
    assert!(
        matches!(other[0].outcome, Outcome::Differs { .. }),
        "{:?}",
        other[0].outcome
    );
    assert_eq!(
        chain
            .account(chain.payer_key())
            .await
            .unwrap()
            .unwrap()
            .lamports,
        balance,
        "a run that finds another build sends nothing"
    );
    assert!(deployed(&mut chain, &program.pubkey()).await.holds(&v1));

    // No keypair and no account: refused with what is needed, nothing spent on a buffer.
    let absent = Pubkey::new_unique();
    let err = deploy_programs(
        &mut chain,
        &[file(v1.clone(), None, absent)],
        keys.path(),
        25,
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("needs its keypair"), "{err:#}");

    // Lamports sent to the id before the first deploy (anyone can): without the keypair the
    // deploy is refused before a buffer is paid for; with it the account is claimed.
    let squatted = Keypair::new();
    let payer = chain.payer_key();
    send(
        &mut chain,
        &[anchor_lang::solana_program::system_instruction::transfer(
            &payer,
            &squatted.pubkey(),
            1_000_000,
        )],
        &[],
    )
    .await
    .unwrap();
    let before = chain.account(payer).await.unwrap().unwrap().lamports;
    let err = deploy_programs(
        &mut chain,
        &[file(v1.clone(), None, squatted.pubkey())],
        keys.path(),
        25,
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("needs its keypair"), "{err:#}");
    assert_eq!(
        chain.account(payer).await.unwrap().unwrap().lamports,
        before
    );
    let claimed = deploy_programs(
        &mut chain,
        &[file(v1.clone(), Some(&squatted), squatted.pubkey())],
        keys.path(),
        25,
    )
    .await
    .unwrap();
    assert!(
        matches!(claimed[0].outcome, Outcome::Deployed { .. }),
        "{:?}",
        claimed[0].outcome
    );
    assert!(deployed(&mut chain, &squatted.pubkey()).await.holds(&v1));

    // A loader-owned uninitialised account at the id: deployed without the keypair.
    let declared = Pubkey::new_unique();
    let size = solana_loader_v3_interface::state::UpgradeableLoaderState::size_of_program();
    chain.ctx.set_account(
        &declared,
        &solana_account::AccountSharedData::from(solana_account::Account {
            lamports: solana_rent::Rent::default().minimum_balance(size),
            data: vec![0; size],
            owner: loader::LOADER,
            executable: false,
            rent_epoch: 0,
        }),
    );
    let placed = deploy_programs(
        &mut chain,
        &[file(v1.clone(), None, declared)],
        keys.path(),
        0,
    )
    .await
    .unwrap();
    assert!(
        matches!(placed[0].outcome, Outcome::Deployed { .. }),
        "{:?}",
        placed[0].outcome
    );
    assert!(deployed(&mut chain, &declared).await.holds(&v1));
}

/// A buffer write that stopped half-way resumes: only the chunks that differ are sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffer_write_resumes_with_the_chunks_that_differ() {
    let mut chain = EmbeddedChain::start().await;
    let elf = memo_build();
    let chunk = loader::write_chunk_len(chain.payer(), &Pubkey::new_unique());
    let chunks = elf.len().div_ceil(chunk);
    // A buffer holding the ELF with its 3rd and 5th chunks missing (zeros, as an
    // interrupted write leaves them).
    let mut partial = elf.clone();
    for i in [2, 4] {
        partial[i * chunk..((i + 1) * chunk).min(elf.len())].fill(0);
    }
    let buffer = Keypair::new();
    loader::write_buffer(&mut chain, &buffer, &partial, 16)
        .await
        .unwrap();
    let resumed = loader::write_buffer(&mut chain, &buffer, &elf, 16)
        .await
        .unwrap();
    assert_eq!(
        (resumed.transactions, resumed.chunks_in_place),
        (2, chunks - 2)
    );
    let b = loader::buffer(&mut chain, &buffer.pubkey())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.code, elf);
    // A buffer of another size, or of another authority, is refused, not overwritten.
    let err = loader::write_buffer(&mut chain, &buffer, &elf[..elf.len() - 1], 16)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("use a new buffer"), "{err:#}");
    loader::hand_buffer_to_council(&mut chain, &buffer.pubkey())
        .await
        .unwrap();
    let err = loader::write_buffer(&mut chain, &buffer, &elf, 16)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("belongs to"), "{err:#}");
}

/// The hand-over of upgrade authorities: the wallet's is handed over, the council's left in
/// place, and a program that someone else can upgrade (or nobody) reported as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hand_over_moves_the_wallets_upgrade_authorities_and_reports_the_others() {
    use migrations::deploy::{hand_upgrade_authorities_of, AuthorityOutcome};
    let mut chain = EmbeddedChain::start().await;
    let elf = memo_build();
    let payer = chain.payer_key();
    let (mine, stranger, frozen) = (
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
    );
    let outsider = Pubkey::new_unique();
    plant_program(&mut chain, mine, &elf, elf.len(), payer);
    plant_program(&mut chain, stranger, &elf, elf.len(), outsider);
    plant_program(&mut chain, frozen, &elf, elf.len(), payer);
    // An immutable program: its authority set to none.
    let ix = solana_loader_v3_interface::instruction::set_upgrade_authority(&frozen, &payer, None);
    send(&mut chain, &[ix], &[]).await.unwrap();
    let programs = [
        ("mine", mine),
        ("stranger", stranger),
        ("frozen", frozen),
        ("registry", registry::ID),
    ];
    let first = hand_upgrade_authorities_of(&mut chain, &programs)
        .await
        .unwrap();
    assert_eq!(
        first,
        vec![
            ("mine", AuthorityOutcome::HandedOver),
            ("stranger", AuthorityOutcome::Elsewhere(Some(outsider))),
            ("frozen", AuthorityOutcome::Elsewhere(None)),
            ("registry", AuthorityOutcome::NotUpgradeable),
        ]
    );
    assert_eq!(
        deployed(&mut chain, &mine).await.upgrade_authority,
        Some(loader::council_upgrade_authority())
    );
    let second = hand_upgrade_authorities_of(&mut chain, &programs)
        .await
        .unwrap();
    assert_eq!(second[0], ("mine", AuthorityOutcome::WithCouncil));
    assert_eq!(second[1..], first[1..]);
}
