use anchor_lang::prelude::*;
use anchor_spl::token::Token;
use program_common::zero_copy;

use crate::errors::TokenError;
use crate::events::RecsIssued;
use crate::instructions::meter_group::{self, Due, Issuer};
use crate::state::{seeds, MeterLedger, TokenConfig};

/// Issues each given meter's owner one REC per whole MWh of verified *renewable* export (the
/// oracle's `verified_renewable_wh`: export not explained by grid energy the battery could
/// hold) not yet certified, carrying the remainder below 1 MWh forward. Permissionless, many meters per
/// call; the same four accounts per meter as `mint_generation`, with the owner's REC token
/// account. The ledger's REC counter is independent of GRID: a REC certifies the
/// generation's attributes, GRID is the energy itself.
#[derive(Accounts)]
pub struct IssueRec<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump, has_one = rec_mint)]
    pub config: AccountLoader<'info, TokenConfig>,
    /// CHECK: the REC mint, checked against the configuration.
    #[account(mut)]
    pub rec_mint: UncheckedAccount<'info>,
    /// CHECK: the mint authority PDA; signs the mint CPIs.
    #[account(seeds = [seeds::MINT_AUTHORITY], bump = config.load()?.mint_authority_bump)]
    pub mint_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
}

impl IssueRec<'_> {
    pub fn validate(&self, remaining: &[AccountInfo]) -> Result<()> {
        meter_group::validate_call(&*self.config.load()?, remaining)
    }
}

pub fn handler<'info>(ctx: Context<'info, IssueRec<'info>>) -> Result<()> {
    let a = &ctx.accounts;
    let issuer = Issuer {
        mint: &a.rec_mint.to_account_info(),
        authority: &a.mint_authority.to_account_info(),
        authority_bump: a.config.load()?.mint_authority_bump,
        token_program: a.token_program.key(),
    };
    let issued = meter_group::issue_to_each(
        ctx.remaining_accounts,
        &issuer,
        |group| {
            // Renewable export only: grid energy cycled through a battery is never certified
            // (`oracle::rules`).
            let renewable = group.verified.renewable_wh;
            let (amount, total) = zero_copy::update::<MeterLedger, _>(group.ledger, |l| {
                l.issue_recs(renewable)
                    .map(|recs| (recs, l.rec_certified_wh))
            })??;
            Ok(Due { amount, total })
        },
        |group, due| {
            program_common::emit_event!(RecsIssued {
                lfdi: group.meter.lfdi,
                owner: group.meter.owner,
                amount: due.amount,
                total_certified_wh: due.total,
            })
        },
    )?;
    let mut config = a.config.load_mut()?;
    config.recs_issued = config
        .recs_issued
        .checked_add(issued)
        .ok_or(TokenError::Overflow)?;
    Ok(())
}
