use anchor_lang::prelude::*;
use anchor_spl::token::Token;
use program_common::zero_copy;

use crate::errors::TokenError;
use crate::events::GenerationMinted;
use crate::instructions::meter_group::{self, Due, Issuer};
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
        meter_group::validate_call(&*self.config.load()?, remaining)
    }
}

pub fn handler<'info>(ctx: Context<'info, MintGeneration<'info>>) -> Result<()> {
    let a = &ctx.accounts;
    let issuer = Issuer {
        mint: &a.grid_mint.to_account_info(),
        authority: &a.mint_authority.to_account_info(),
        authority_bump: a.config.load()?.mint_authority_bump,
        token_program: a.token_program.key(),
    };
    let minted = meter_group::issue_to_each(
        ctx.remaining_accounts,
        &issuer,
        |group| {
            let verified = group.verified.export_wh;
            let amount =
                zero_copy::update::<MeterLedger, _>(group.ledger, |l| l.mint_grid(verified))??;
            Ok(Due {
                amount,
                total: verified,
            })
        },
        |group, due| {
            program_common::emit_event!(GenerationMinted {
                lfdi: group.meter.lfdi,
                owner: group.meter.owner,
                amount: due.amount,
                total_minted_wh: due.total,
            })
        },
    )?;
    let mut config = a.config.load_mut()?;
    config.grid_minted_wh = config
        .grid_minted_wh
        .checked_add(minted)
        .ok_or(TokenError::Overflow)?;
    Ok(())
}
