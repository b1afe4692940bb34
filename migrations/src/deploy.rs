//! Deploying the five programs under the upgradeable loader, and handing their upgrade
//! authority to the council, idempotently.
//!
//! A program already deployed with the same ELF is left alone; one deployed with another
//! ELF is reported and left alone too (changing it is an upgrade, which only the council
//! executes once it holds the upgrade authority). A deploy writes a buffer (its keypair kept
//! in `keys_dir/buffers/` until the deploy lands, so a run that stopped half-way resumes
//! the write), then deploys from it with room for `headroom_percent` more bytes than the
//! ELF for later upgrades.
use std::path::{Path, PathBuf};

use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Context, Result};
use sdk::chain::Chain;
use sdk::loader::{self, ProgramState};
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::config::{keypair_at, Missing};

/// Writes in flight at once while filling a buffer.
pub const WRITES_IN_FLIGHT: usize = 64;

/// One program to deploy: its name as Anchor builds it (`<lib>.so`, `<lib>-keypair.json`).
pub struct ProgramFile {
    pub lib: &'static str,
    pub id: Pubkey,
    pub elf: Vec<u8>,
    /// The program's keypair, needed only when its account does not exist yet.
    pub keypair: Option<Keypair>,
    pub path: PathBuf,
}

/// The five programs, in the order they are deployed (governance first: the others'
/// authorities are its PDAs).
pub const PROGRAMS: [(&str, Pubkey); 5] = [
    ("governance", governance::ID),
    ("registry", registry::ID),
    ("oracle", oracle::ID),
    ("energy_token", energy_token::ID),
    ("trading", trading::ID),
];

/// Reads the programs' `.so` files (and their keypairs, where present) from `dir`, laid out
/// as `anchor build` leaves `target/deploy`. A keypair that is not the program's declared
/// id is refused: the programs are built with their ids.
pub fn load_programs(dir: &Path) -> Result<Vec<ProgramFile>> {
    let mut out = Vec::new();
    for (lib, id) in PROGRAMS {
        let path = dir.join(format!("{lib}.so"));
        let elf = std::fs::read(&path).with_context(|| {
            format!(
                "{}: build the programs first (scripts/sbf-build)",
                path.display()
            )
        })?;
        if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
            bail!("{} is not an ELF file", path.display());
        }
        // A program built with another `declare_id!` (before `anchor keys sync`, or another
        // checkout's) would refuse its own accounts: its id's bytes must be in it.
        if !elf.windows(32).any(|w| w == id.as_ref()) {
            bail!(
                "{} does not contain {lib}'s id {id}: it was built with another declare_id! (rebuild it)",
                path.display()
            );
        }
        let key_path = dir.join(format!("{lib}-keypair.json"));
        let keypair = if key_path.exists() {
            let key = sdk::settings::read_keypair(&key_path)?;
            if key.pubkey() != id {
                bail!(
                    "{} is the keypair of {}, but {lib} is built with the id {id} (declare_id!)",
                    key_path.display(),
                    key.pubkey()
                );
            }
            Some(key)
        } else {
            None
        };
        out.push(ProgramFile {
            lib,
            id,
            elf,
            keypair,
            path,
        });
    }
    Ok(out)
}

/// What happened to one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Deployed {
        elf_len: usize,
        capacity: usize,
        transactions: usize,
        /// Rent now held by the program and ProgramData accounts.
        rent_lamports: u64,
    },
    /// The same ELF is deployed already.
    InPlace,
    /// Another ELF is deployed: left alone (upgrades go through the council).
    Differs { deployed_slot: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramReport {
    pub lib: &'static str,
    pub id: Pubkey,
    pub sha256: [u8; 32],
    pub outcome: Outcome,
}

/// Bytes of ELF room a program gets: its size plus `headroom_percent`.
pub fn capacity_for(elf_len: usize, headroom_percent: u32) -> usize {
    elf_len + elf_len * headroom_percent as usize / 100
}

/// Deploys each of `programs` that is not deployed yet.
pub async fn deploy_programs<C: Chain>(
    chain: &mut C,
    programs: &[ProgramFile],
    keys_dir: &Path,
    headroom_percent: u32,
) -> Result<Vec<ProgramReport>> {
    let mut reports = Vec::new();
    for p in programs {
        let sha256 = loader::elf_hash(&p.elf);
        let payer = chain.payer().pubkey();
        let outcome = match loader::program_state(chain, &p.id).await? {
            ProgramState::Deployed(d) if d.holds(&p.elf) => Outcome::InPlace,
            // Handing this over would give the council a build nobody chose: stop.
            ProgramState::Deployed(d) if d.upgrade_authority == Some(payer) => bail!(
                "{} ({}) holds another build than {} and this wallet still holds its upgrade authority: \
                 deploy the build that is there, or replace it first (the hand-over to the council would lock in the other build)",
                p.lib,
                p.id,
                p.path.display()
            ),
            ProgramState::Deployed(d) => Outcome::Differs {
                deployed_slot: d.slot,
            },
            ProgramState::Other { owner } if owner != anchor_lang::system_program::ID => bail!(
                "{} ({}) is an account of {owner}, not a program of the upgradeable loader: cannot deploy there",
                p.lib,
                p.id
            ),
            // Absent, or lamports someone sent to the id (claimed where it is), needs the
            // program's keypair: refused before a buffer is paid for.
            ProgramState::Absent | ProgramState::Other { .. } if p.keypair.is_none() => bail!(
                "{} ({}) has no program account on this cluster: deploying it needs its keypair, {}-keypair.json beside {}",
                p.lib,
                p.id,
                p.lib,
                p.path.display()
            ),
            ProgramState::Absent | ProgramState::Uninitialized | ProgramState::Other { .. } => {
                deploy_one(chain, p, keys_dir, headroom_percent).await?
            }
        };
        reports.push(ProgramReport {
            lib: p.lib,
            id: p.id,
            sha256,
            outcome,
        });
    }
    Ok(reports)
}

async fn deploy_one<C: Chain>(
    chain: &mut C,
    p: &ProgramFile,
    keys_dir: &Path,
    headroom_percent: u32,
) -> Result<Outcome> {
    let buffer_path = keys_dir.join("buffers").join(format!("{}.json", p.lib));
    let buffer = keypair_at(&buffer_path, Missing::Make)?.context("buffer keypair")?;
    tracing::info!(program = p.lib, buffer = %buffer.pubkey(), bytes = p.elf.len(), "writing the buffer");
    let written = loader::write_buffer(chain, &buffer, &p.elf, WRITES_IN_FLIGHT).await?;
    let capacity = capacity_for(p.elf.len(), headroom_percent);
    loader::deploy(chain, &p.id, p.keypair.as_ref(), &buffer.pubkey(), capacity).await?;
    // The buffer is spent (the loader closed it into the wallet): its key goes too.
    let _ = std::fs::remove_file(&buffer_path);
    let accounts = chain
        .accounts(&[p.id, loader::program_data_address(&p.id)])
        .await?;
    let rent_lamports = accounts.iter().flatten().map(|a| a.lamports).sum();
    match loader::program_state(chain, &p.id).await? {
        ProgramState::Deployed(d) if d.holds(&p.elf) => {}
        other => bail!("{} after its deploy: {other:?}", p.lib),
    }
    Ok(Outcome::Deployed {
        elf_len: p.elf.len(),
        capacity,
        transactions: written.transactions + 1,
        rent_lamports,
    })
}

/// What happened to one program's upgrade authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorityOutcome {
    HandedOver,
    /// The council holds it already.
    WithCouncil,
    /// Not a loader program here (the embedded chain's builtins): nothing to hand over.
    NotUpgradeable,
    /// Someone else holds it (or nobody: the program is immutable).
    Elsewhere(Option<Pubkey>),
}

/// Hands the upgrade authority of every one of the five programs that the chain's payer
/// holds to the council (its loader authority, `sdk::loader::council_upgrade_authority`).
pub async fn hand_upgrade_authorities<C: Chain>(
    chain: &mut C,
) -> Result<Vec<(&'static str, AuthorityOutcome)>> {
    hand_upgrade_authorities_of(chain, &PROGRAMS).await
}

/// [`hand_upgrade_authorities`] for `programs`.
pub async fn hand_upgrade_authorities_of<C: Chain>(
    chain: &mut C,
    programs: &[(&'static str, Pubkey)],
) -> Result<Vec<(&'static str, AuthorityOutcome)>> {
    let payer = chain.payer().pubkey();
    let council = loader::council_upgrade_authority();
    let mut out = Vec::new();
    for &(lib, id) in programs {
        let outcome = match loader::program_state(chain, &id).await? {
            ProgramState::Deployed(d) => match d.upgrade_authority {
                Some(a) if a == council => AuthorityOutcome::WithCouncil,
                Some(a) if a == payer => {
                    loader::hand_upgrade_authority_to_council(chain, &id).await?;
                    AuthorityOutcome::HandedOver
                }
                other => AuthorityOutcome::Elsewhere(other),
            },
            _ => AuthorityOutcome::NotUpgradeable,
        };
        out.push((lib, outcome));
    }
    Ok(out)
}
