use anchor_lang::prelude::*;
use anchor_spl::token::{self, MintTo, Token};
use program_common::zero_copy;

use crate::errors::TokenError;
use crate::events::{GenerationMinted, MeterSkipped};
use crate::instructions::meter_group::{self, Checked, GROUP};
use crate::state::{seeds, MeterLedger, TokenConfig};

/// Mints to each given meter's owner exactly the export the oracle verified and no GRID has
/// been minted for yet. Permissionless (the keeper cranks it); many meters per call.
/// Remaining accounts, per meter: registry `Meter`, oracle `MeterState`, `MeterLedger`
/// (writable), the owner's GRID token account (writable).
///
/// The ledger records what was minted, so calling it twice, twice in one transaction, with a
/// meter listed twice, or after any sequence of oracle updates never mints more than the
/// verified export. A meter that is not Active, or whose owner has no GRID account, is
/// skipped with a `MeterSkipped` event; its export stays mintable for later.
#[derive(Accounts)]
pub struct MintGeneration<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump, has_one = grid_mint)]
    pub config: AccountLoader<'info, TokenConfig>,
    /// CHECK: the GRID mint, checked against the configuration.
    #[account(mut)]
    pub grid_mint: UncheckedAccount<'info>,
    /// CHECK: the mint authority PDA; signs the mint CPIs.
    #[account(seeds = [seeds::MINT_AUTHORITY], bump = config.load()?.mint_authority_bump)]
    pub mint_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
}

impl MintGeneration<'_> {
    pub fn validate(&self, remaining: &[AccountInfo]) -> Result<()> {
        require!(!self.config.load()?.is_paused(), TokenError::Paused);
        require!(
            !remaining.is_empty() && remaining.len() % GROUP == 0,
            TokenError::AccountsMismatch
        );
        Ok(())
    }
}

pub fn handler<'info>(ctx: Context<'info, MintGeneration<'info>>) -> Result<()> {
    let a = &ctx.accounts;
    let mint = a.grid_mint.key();
    let bump = [a.config.load()?.mint_authority_bump];
    let signer: &[&[u8]] = &[seeds::MINT_AUTHORITY, &bump];
    let mut minted = 0u64;
    for accounts in ctx.remaining_accounts.chunks(GROUP) {
        let group = match meter_group::check(accounts, &mint)? {
            Checked::Ready(group) => group,
            Checked::Skip(lfdi, reason) => {
                program_common::emit_event!(MeterSkipped {
                    lfdi,
                    reason: reason.into()
                });
                continue;
            }
        };
        let verified = group.state.verified_export_wh;
        let due = zero_copy::update::<MeterLedger, _>(group.ledger, |l| l.mint_grid(verified))??;
        if due == 0 {
            continue;
        }
        token::mint_to(
            CpiContext::new_with_signer(
                a.token_program.key(),
                MintTo {
                    mint: a.grid_mint.to_account_info(),
                    to: group.tokens.clone(),
                    authority: a.mint_authority.to_account_info(),
                },
                &[signer],
            ),
            due,
        )?;
        minted = minted.checked_add(due).ok_or(TokenError::Overflow)?;
        program_common::emit_event!(GenerationMinted {
            lfdi: group.meter.lfdi,
            owner: group.meter.owner,
            amount: due,
            total_minted_wh: verified,
        });
    }
    let mut config = a.config.load_mut()?;
    config.grid_minted_wh = config
        .grid_minted_wh
        .checked_add(minted)
        .ok_or(TokenError::Overflow)?;
    Ok(())
}
