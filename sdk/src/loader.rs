//! Programs under the upgradeable loader (BPF loader v3): what a program's accounts say,
//! writing a buffer, deploying from it, and handing the upgrade authority to governance.
//!
//! Governance signs loader instructions as its authority for the loader,
//! `["authority", loader id]` (see [`council_upgrade_authority`]): the same scoping as for
//! the GridTokenX programs, where each accepts only the governance PDA named after it. Every
//! deployed GridTokenX program (governance included) gets that key as its upgrade authority,
//! so an upgrade is a council proposal that runs the loader's `Upgrade` and nothing else
//! can replace a program.
use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_loader_v3_interface::instruction as loader_ix;
use solana_loader_v3_interface::state::UpgradeableLoaderState;
use solana_signer::Signer;

use crate::chain::{
    send_and_confirm, send_pipelined, transaction_size, v0_transaction, Chain, SendError,
    SendPolicy, PACKET,
};

/// The upgradeable loader's program id.
pub const LOADER: Pubkey = solana_sdk_ids::bpf_loader_upgradeable::ID;

/// Bytes of a `ProgramData` account before the ELF.
pub const PROGRAM_DATA_METADATA: usize = UpgradeableLoaderState::size_of_programdata_metadata();
/// Bytes of a buffer account before the ELF.
pub const BUFFER_METADATA: usize = UpgradeableLoaderState::size_of_buffer_metadata();

/// The key the council signs loader instructions with: every program's upgrade authority
/// once deployed and handed over.
pub fn council_upgrade_authority() -> Pubkey {
    crate::ix::governance::authority_for(LOADER)
}

pub fn program_data_address(program: &Pubkey) -> Pubkey {
    solana_loader_v3_interface::get_program_data_address(program)
}

/// SHA-256 of an ELF, as voters compare a buffer with their own build.
pub fn elf_hash(elf: &[u8]) -> [u8; 32] {
    Sha256::digest(elf).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A program's accounts as the loader sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramState {
    /// No account at the program's address: deploying needs the program's keypair.
    Absent,
    /// A loader-owned, uninitialised account of program size: deployable without the
    /// keypair (what the program keypair's `create_account` leaves, and what a local
    /// validator can be started with at a declared id).
    Uninitialized,
    /// Some other account: not ours to deploy to (a builtin, a wrong owner, a buffer).
    Other {
        owner: Pubkey,
    },
    Deployed(Deployed),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    pub program_data: Pubkey,
    /// The slot it was last deployed or upgraded in.
    pub slot: u64,
    pub upgrade_authority: Option<Pubkey>,
    /// Bytes the ProgramData account holds for the ELF (its capacity).
    pub capacity: usize,
    /// The ELF area (capacity bytes; zeros after the ELF).
    code: Vec<u8>,
}

impl Deployed {
    /// Whether the deployed program is `elf` (byte for byte, zeros after it).
    pub fn holds(&self, elf: &[u8]) -> bool {
        self.code.len() >= elf.len()
            && self.code[..elf.len()] == *elf
            && self.code[elf.len()..].iter().all(|b| *b == 0)
    }

    /// SHA-256 of the deployed ELF area up to `len` bytes (the ELF's own length when known).
    pub fn hash_of_first(&self, len: usize) -> [u8; 32] {
        elf_hash(&self.code[..len.min(self.code.len())])
    }
}

/// Reads `program`'s accounts.
pub async fn program_state<C: Chain>(chain: &mut C, program: &Pubkey) -> Result<ProgramState> {
    let program_data = program_data_address(program);
    let accounts = chain.accounts(&[*program, program_data]).await?;
    let Some(account) = &accounts[0] else {
        return Ok(ProgramState::Absent);
    };
    if account.owner != LOADER {
        return Ok(ProgramState::Other {
            owner: account.owner,
        });
    }
    match bincode::deserialize::<UpgradeableLoaderState>(&account.data) {
        Ok(UpgradeableLoaderState::Uninitialized)
            if account.data.len() >= UpgradeableLoaderState::size_of_program() =>
        {
            Ok(ProgramState::Uninitialized)
        }
        Ok(UpgradeableLoaderState::Program {
            programdata_address,
        }) if programdata_address == program_data => {
            let data = accounts[1]
                .as_ref()
                .filter(|a| a.owner == LOADER)
                .with_context(|| format!("{program}: its ProgramData account is missing"))?;
            match bincode::deserialize::<UpgradeableLoaderState>(&data.data) {
                Ok(UpgradeableLoaderState::ProgramData {
                    slot,
                    upgrade_authority_address,
                }) if data.data.len() >= PROGRAM_DATA_METADATA => {
                    Ok(ProgramState::Deployed(Deployed {
                        program_data,
                        slot,
                        upgrade_authority: upgrade_authority_address,
                        capacity: data.data.len() - PROGRAM_DATA_METADATA,
                        code: data.data[PROGRAM_DATA_METADATA..].to_vec(),
                    }))
                }
                _ => bail!("{program}: its ProgramData account does not decode"),
            }
        }
        _ => Ok(ProgramState::Other {
            owner: account.owner,
        }),
    }
}

/// A buffer account's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub authority: Option<Pubkey>,
    /// The bytes after the metadata (the ELF, as far as written).
    pub code: Vec<u8>,
}

pub async fn buffer<C: Chain>(chain: &mut C, address: &Pubkey) -> Result<Option<Buffer>> {
    let Some(account) = chain.account(*address).await? else {
        return Ok(None);
    };
    if account.owner != LOADER || account.data.len() < BUFFER_METADATA {
        bail!("{address} is not a loader buffer");
    }
    match bincode::deserialize::<UpgradeableLoaderState>(&account.data) {
        Ok(UpgradeableLoaderState::Buffer { authority_address }) => Ok(Some(Buffer {
            authority: authority_address,
            code: account.data[BUFFER_METADATA..].to_vec(),
        })),
        _ => bail!("{address} is not a loader buffer"),
    }
}

/// What writing a buffer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub transactions: usize,
    /// Chunks found written already (a resumed write).
    pub chunks_in_place: usize,
}

/// The largest chunk one `Write` transaction (payer = authority, with the compute-unit
/// limit the sender prepends) carries.
pub fn write_chunk_len(payer: &Keypair, buffer: &Pubkey) -> usize {
    // Probed with 128 bytes: from there on the data's length takes two bytes, as it will.
    const PROBE: usize = 128;
    let probe = [
        crate::ix::compute_unit_limit(1_400_000),
        loader_ix::write(buffer, &payer.pubkey(), 0, vec![0; PROBE]),
    ];
    let size = v0_transaction(payer, &probe, &[], &[], Default::default())
        .map(|tx| transaction_size(&tx))
        .unwrap_or(PACKET);
    (PACKET + PROBE).saturating_sub(size)
}

/// Writes `elf` into the buffer at `buffer` (created, with the chain's payer as its
/// authority, when absent), `max_in_flight` writes at a time. Resumable: an existing buffer
/// of the payer's gets only the chunks that differ.
pub async fn write_buffer<C: Chain>(
    chain: &mut C,
    buffer: &Keypair,
    elf: &[u8],
    max_in_flight: usize,
) -> Result<Written> {
    let payer = chain.payer().insecure_clone();
    let address = buffer.pubkey();
    let mut written = Written::default();
    let existing = match self::buffer(chain, &address).await? {
        Some(b) => {
            if b.authority != Some(payer.pubkey()) {
                bail!(
                    "buffer {address} belongs to {:?}, not to {}: use a new buffer",
                    b.authority,
                    payer.pubkey()
                );
            }
            if b.code.len() != elf.len() {
                bail!(
                    "buffer {address} holds {} bytes, the ELF {}: use a new buffer",
                    b.code.len(),
                    elf.len()
                );
            }
            b.code
        }
        None => {
            let size = UpgradeableLoaderState::size_of_buffer(elf.len());
            let lamports = rent_exempt(chain, size).await?;
            let create = loader_ix::create_buffer(
                &payer.pubkey(),
                &address,
                &payer.pubkey(),
                lamports,
                elf.len(),
            )
            .map_err(|e| anyhow::anyhow!("create buffer: {e}"))?;
            send_and_confirm(chain, &create, &[buffer], &[], SendPolicy::default())
                .await
                .map_err(|e| anyhow::anyhow!("create buffer {address}: {}", e.reason()))?;
            written.transactions += 1;
            vec![0; elf.len()]
        }
    };
    let chunk = write_chunk_len(&payer, &address);
    anyhow::ensure!(chunk > 0, "no room for a chunk in a transaction");
    let mut writes: Vec<Vec<Instruction>> = Vec::new();
    for (i, part) in elf.chunks(chunk).enumerate() {
        let offset = i * chunk;
        if existing[offset..offset + part.len()] == *part {
            written.chunks_in_place += 1;
            continue;
        }
        writes.push(vec![loader_ix::write(
            &address,
            &payer.pubkey(),
            offset as u32,
            part.to_vec(),
        )]);
    }
    let results = send_pipelined(chain, &writes, &[], SendPolicy::default(), max_in_flight).await;
    let failed: Vec<&SendError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    written.transactions += results.len() - failed.len();
    if let Some(first) = failed.first() {
        bail!(
            "{} of {} writes to buffer {address} failed (run again to resume); the first: {}",
            failed.len(),
            results.len(),
            first.reason()
        );
    }
    // What landed must be the ELF: a rebroadcast can't reorder writes of distinct offsets,
    // but the check is cheap and a deploy from a wrong buffer is not.
    let check = self::buffer(chain, &address)
        .await?
        .context("the buffer vanished")?;
    anyhow::ensure!(
        check.code == elf,
        "buffer {address} does not hold the ELF after writing"
    );
    Ok(written)
}

/// Lamports for `size` bytes to be rent-exempt on this cluster, from its rent sysvar
/// (lamports per byte-year, u64; exemption threshold in years, f64), as the runtime computes
/// it.
pub async fn rent_exempt<C: Chain>(chain: &mut C, size: usize) -> Result<u64> {
    let rent = chain
        .account(solana_sdk_ids::sysvar::rent::ID)
        .await?
        .context("the cluster has no rent sysvar")?;
    let per_byte_year = rent
        .data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .context("decode the rent sysvar")?;
    let threshold = rent
        .data
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(f64::from_le_bytes)
        .context("decode the rent sysvar")?;
    const ACCOUNT_STORAGE_OVERHEAD: u64 = 128;
    let bytes = (ACCOUNT_STORAGE_OVERHEAD + size as u64)
        .checked_mul(per_byte_year)
        .context("rent overflows")?;
    Ok((bytes as f64 * threshold) as u64)
}

/// Deploys the ELF in `buffer` (written by the chain's payer, who becomes the upgrade
/// authority) as `program`, with room for `max_len` bytes of ELF. An absent program account
/// is created, which needs `program_keypair`; an uninitialised one is deployed to as it is.
pub async fn deploy<C: Chain>(
    chain: &mut C,
    program: &Pubkey,
    program_keypair: Option<&Keypair>,
    buffer: &Pubkey,
    max_len: usize,
) -> Result<()> {
    let payer = chain.payer().insecure_clone();
    let lamports = rent_exempt(chain, UpgradeableLoaderState::size_of_program()).await?;
    let mut instructions = loader_ix::deploy_with_max_program_len(
        &payer.pubkey(),
        program,
        buffer,
        &payer.pubkey(),
        lamports,
        max_len,
    )
    .map_err(|e| anyhow::anyhow!("deploy instruction: {e}"))?;
    let mut signers = Vec::new();
    // The program's keypair, where the program account is made (it must sign).
    let program_signer = |why: &str| -> Result<&Keypair> {
        let key = program_keypair.with_context(|| format!("{program} {why} needs its keypair"))?;
        anyhow::ensure!(
            key.pubkey() == *program,
            "the keypair given for {program} is {}",
            key.pubkey()
        );
        Ok(key)
    };
    match program_state(chain, program).await? {
        ProgramState::Absent => {
            signers.push(program_signer("has no account yet: deploying it")?);
        }
        ProgramState::Uninitialized => {
            // The account exists: only the loader's instruction.
            instructions.remove(0);
        }
        // Lamports sent to the id before the deploy (anyone can send them): with the
        // program's keypair the account is claimed where it is, allocated, assigned to the
        // loader and topped up to its rent, instead of created.
        ProgramState::Other { owner } if owner == solana_sdk_ids::system_program::ID => {
            let key = program_signer(
                "is a system account (lamports were sent to it): claiming it for the program",
            )?;
            let account = chain
                .account(*program)
                .await?
                .with_context(|| format!("{program} vanished"))?;
            anyhow::ensure!(
                account.data.is_empty(),
                "{program} is a system account holding data: it cannot become a program"
            );
            use anchor_lang::solana_program::system_instruction;
            let mut claim = Vec::new();
            if account.lamports < lamports {
                claim.push(system_instruction::transfer(
                    &payer.pubkey(),
                    program,
                    lamports - account.lamports,
                ));
            }
            claim.push(system_instruction::allocate(
                program,
                UpgradeableLoaderState::size_of_program() as u64,
            ));
            claim.push(system_instruction::assign(program, &LOADER));
            instructions.splice(0..1, claim);
            signers.push(key);
        }
        other => bail!("{program} cannot be deployed to: {other:?}"),
    }
    send_and_confirm(chain, &instructions, &signers, &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("deploy {program}: {}", loader_reason(&e)))?;
    Ok(())
}

/// Why the loader refused: the error, and its own log line (an ELF it cannot verify says
/// which symbol or section).
fn loader_reason(e: &SendError) -> String {
    let detail = match e {
        SendError::Refused { logs, .. } => logs
            .iter()
            .rev()
            .find(|l| !l.starts_with("Program "))
            .cloned(),
        _ => None,
    };
    match detail {
        Some(d) => format!("{} ({d})", e.reason()),
        None => e.reason(),
    }
}

/// Hands `program`'s upgrade authority from the chain's payer to the council.
pub async fn hand_upgrade_authority_to_council<C: Chain>(
    chain: &mut C,
    program: &Pubkey,
) -> Result<()> {
    let payer = chain.payer().pubkey();
    let ix = loader_ix::set_upgrade_authority(program, &payer, Some(&council_upgrade_authority()));
    send_and_confirm(chain, &[ix], &[], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("hand {program}'s upgrade authority over: {}", e.reason()))?;
    Ok(())
}

/// Hands the buffer at `buffer` (the chain's payer's) to the council, so that only an
/// upgrade it executes can use it, and no one can change it while the council votes.
pub async fn hand_buffer_to_council<C: Chain>(chain: &mut C, buffer: &Pubkey) -> Result<()> {
    let payer = chain.payer().pubkey();
    let ix = loader_ix::set_buffer_authority(buffer, &payer, &council_upgrade_authority());
    send_and_confirm(chain, &[ix], &[], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow::anyhow!("hand buffer {buffer} over: {}", e.reason()))?;
    Ok(())
}

/// The loader's `Upgrade` of `program` from `buffer`, signed by the council's loader
/// authority (what an upgrade proposal runs); the buffer's lamports go to `spill`.
pub fn upgrade_instruction(program: &Pubkey, buffer: &Pubkey, spill: &Pubkey) -> Instruction {
    loader_ix::upgrade(program, buffer, &council_upgrade_authority(), spill)
}

/// The loader's `Close` of a buffer the council holds, signed by the council's loader
/// authority (what a close-buffer proposal runs): its rent goes to `recipient`.
pub fn close_buffer_instruction(buffer: &Pubkey, recipient: &Pubkey) -> Instruction {
    loader_ix::close(buffer, recipient, &council_upgrade_authority())
}

/// Whether `data` is the loader's `Upgrade`.
pub fn is_upgrade(program_id: &Pubkey, data: &[u8]) -> bool {
    *program_id == LOADER && loader_ix::is_upgrade_instruction(data)
}
