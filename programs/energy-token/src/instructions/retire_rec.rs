use anchor_lang::prelude::*;
use anchor_spl::token::{self, Burn, Mint, Token, TokenAccount};
use program_common::pda::{create_pda_account, write_zero_copy};

use crate::errors::TokenError;
use crate::events::RecsRetired;
use crate::state::{seeds, Retirement, TokenConfig, MAX_BENEFICIARY_LEN, MAX_REASON_LEN};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct RetireRecArgs {
    /// The holder's own number for this retirement (any not used before, e.g. a counter or
    /// the time): the record's address is `[RETIREMENT, holder, id]`, so holders retiring at
    /// once never collide and nobody can take another holder's address first.
    pub id: u64,
    pub amount: u64,
    /// For whom the certificates are retired (1 to 64 bytes of UTF-8).
    pub beneficiary: String,
    /// Why (1 to 128 bytes of UTF-8).
    pub reason: String,
}

/// A holder burns RECs and a fixed-size record at `[RETIREMENT, holder, id]` says who
/// retired how many, for whom, when and why, so a certificate is never counted twice.
/// Allowed while paused.
#[derive(Accounts)]
#[instruction(args: RetireRecArgs)]
pub struct RetireRec<'info> {
    #[account(mut, seeds = [seeds::CONFIG], bump = config.load()?.bump, has_one = rec_mint)]
    pub config: AccountLoader<'info, TokenConfig>,
    #[account(mut)]
    pub rec_mint: Account<'info, Mint>,
    #[account(mut, token::mint = rec_mint, token::authority = holder)]
    pub holder_recs: Account<'info, TokenAccount>,
    #[account(mut)]
    pub holder: Signer<'info>,
    /// CHECK: the retirement record PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::RETIREMENT, holder.key().as_ref(), args.id.to_le_bytes().as_ref()], bump)]
    pub retirement: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

impl RetireRec<'_> {
    pub fn validate(&self, args: &RetireRecArgs) -> Result<()> {
        require!(args.amount > 0, TokenError::ZeroAmount);
        // A record is written once: the holder picks another id for another retirement.
        require!(
            self.retirement.owner != &crate::ID,
            TokenError::RetirementIdUsed
        );
        Retirement::fixed::<MAX_BENEFICIARY_LEN>(&args.beneficiary)?;
        Retirement::fixed::<MAX_REASON_LEN>(&args.reason)?;
        Ok(())
    }
}

pub fn handler(ctx: Context<RetireRec>, args: RetireRecArgs) -> Result<()> {
    let a = &ctx.accounts;
    token::burn(
        CpiContext::new(
            a.token_program.key(),
            Burn {
                mint: a.rec_mint.to_account_info(),
                from: a.holder_recs.to_account_info(),
                authority: a.holder.to_account_info(),
            },
        ),
        args.amount,
    )?;
    let bump = ctx.bumps.retirement;
    create_pda_account(
        &a.holder.to_account_info(),
        &a.retirement.to_account_info(),
        &a.system_program.to_account_info(),
        Retirement::SPACE,
        &crate::ID,
        &[
            seeds::RETIREMENT,
            a.holder.key().as_ref(),
            &args.id.to_le_bytes(),
            &[bump],
        ],
    )?;
    let (beneficiary, beneficiary_len) =
        Retirement::fixed::<MAX_BENEFICIARY_LEN>(&args.beneficiary)?;
    let (reason, reason_len) = Retirement::fixed::<MAX_REASON_LEN>(&args.reason)?;
    let index = a.config.load()?.retirement_count;
    let record = Retirement {
        index,
        id: args.id,
        holder: a.holder.key(),
        amount: args.amount,
        retired_at: Clock::get()?.unix_timestamp,
        beneficiary,
        reason,
        bump,
        beneficiary_len,
        reason_len,
        _reserved: [0; 5],
    };
    write_zero_copy(&a.retirement, &record)?;
    let mut config = a.config.load_mut()?;
    config.retirement_count = config
        .retirement_count
        .checked_add(1)
        .ok_or(TokenError::Overflow)?;
    config.recs_retired = config
        .recs_retired
        .checked_add(args.amount)
        .ok_or(TokenError::Overflow)?;
    program_common::emit_event!(RecsRetired {
        retirement: a.retirement.key(),
        index,
        id: args.id,
        holder: record.holder,
        amount: args.amount,
        beneficiary: args.beneficiary,
        reason: args.reason,
    });
    Ok(())
}
