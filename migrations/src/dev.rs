//! What a development or test cluster needs besides the campus: signers funded by the
//! payer, and a quote token of its own (a real campus names its stablecoin's mint).
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anyhow::{anyhow, Result};
use sdk::chain::{send_and_confirm, send_pipelined, Chain, SendPolicy};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Decimals of a development quote token (the campus's credits, like a stablecoin's 6).
pub const QUOTE_DECIMALS: u8 = 6;

/// Sends `lamports` from the payer to `to`.
pub async fn fund<C: Chain>(chain: &mut C, to: &Pubkey, lamports: u64) -> Result<()> {
    let ix =
        anchor_lang::solana_program::system_instruction::transfer(&chain.payer_key(), to, lamports);
    send_and_confirm(chain, &[ix], &[], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow!("transfer to {to}: {}", e.reason()))?;
    Ok(())
}

/// Sends payer-signed `instructions` (transfers, mints: each complete on its own) packed
/// into as few transactions as fit a packet, [`crate::MIGRATION_IN_FLIGHT`] unconfirmed at
/// once; returns the transactions sent. For development set-up at scale (10,000 owners
/// funded in a few hundred transactions instead of 10,000 in turn). A transaction rebuilt
/// after its blockhash expired unconfirmed may land twice: nothing here must depend on
/// exact amounts beyond "at least".
pub async fn send_packed<C: Chain>(
    chain: &mut C,
    what: &str,
    instructions: Vec<Instruction>,
) -> Result<usize> {
    let payer = chain.payer().insecure_clone();
    let mut packed: Vec<Vec<Instruction>> = Vec::new();
    for ix in instructions {
        if let Some(last) = packed.last_mut() {
            let mut more = last.clone();
            more.push(ix.clone());
            if sdk::chain::fits_with(&payer, &more, &[], &[]) {
                *last = more;
                continue;
            }
        }
        packed.push(vec![ix]);
    }
    let results = send_pipelined(
        chain,
        &packed,
        &[],
        SendPolicy::default(),
        crate::MIGRATION_IN_FLIGHT,
    )
    .await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.reason()))
        .collect();
    if let Some(first) = failed.first() {
        return Err(anyhow!(
            "{what}: {} of {} transactions failed; the first: {first}",
            failed.len(),
            packed.len()
        ));
    }
    Ok(packed.len())
}

/// Tops `to` up to `lamports` from the payer if it holds less; returns what it sent.
pub async fn fund_up_to<C: Chain>(chain: &mut C, to: &Pubkey, lamports: u64) -> Result<u64> {
    let held = chain.account(*to).await?.map_or(0, |a| a.lamports);
    if held >= lamports {
        return Ok(0);
    }
    fund(chain, to, lamports - held).await?;
    Ok(lamports - held)
}

/// A quote token at `mint`'s address with [`QUOTE_DECIMALS`], minted by the chain's payer;
/// created unless it exists (so a second run finds it). Something else at that address is
/// an error.
pub async fn ensure_quote_mint<C: Chain>(chain: &mut C, mint: &Keypair) -> Result<Pubkey> {
    if let Some(existing) = chain.account(mint.pubkey()).await? {
        let is_mint = existing.owner == anchor_spl::token::ID
            && spl_token_interface::state::Mint::unpack(&existing.data)
                .is_ok_and(|m| m.decimals == QUOTE_DECIMALS);
        anyhow::ensure!(
            is_mint,
            "the development quote token's address {} holds something else: delete its key \
             file to make a new one",
            mint.pubkey()
        );
        return Ok(mint.pubkey());
    }
    let payer = chain.payer().pubkey();
    let size = spl_token_interface::state::Mint::LEN;
    let rent = anchor_lang::prelude::Rent::default().minimum_balance(size);
    let create = anchor_lang::solana_program::system_instruction::create_account(
        &payer,
        &mint.pubkey(),
        rent,
        size as u64,
        &anchor_spl::token::ID,
    );
    let init = spl_token_interface::instruction::initialize_mint2(
        &anchor_spl::token::ID,
        &mint.pubkey(),
        &payer,
        None,
        QUOTE_DECIMALS,
    )?;
    send_and_confirm(chain, &[create, init], &[mint], &[], SendPolicy::default())
        .await
        .map_err(|e| anyhow!("quote mint: {}", e.reason()))?;
    Ok(mint.pubkey())
}

/// A new quote token (see [`ensure_quote_mint`]).
pub async fn create_quote_mint<C: Chain>(chain: &mut C) -> Result<Pubkey> {
    ensure_quote_mint(chain, &Keypair::new()).await
}
