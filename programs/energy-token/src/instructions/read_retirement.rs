use anchor_lang::prelude::*;

use crate::state::Retirement;

/// A retirement record as `read_retirement` returns it.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct RetirementReport {
    pub index: u64,
    pub id: u64,
    pub holder: Pubkey,
    pub amount: u64,
    pub retired_at: i64,
    pub beneficiary: String,
    pub reason: String,
}

/// A view: returns a retirement record (return data), for auditors and programs that check
/// a claim against it.
#[derive(Accounts)]
pub struct ReadRetirement<'info> {
    pub retirement: AccountLoader<'info, Retirement>,
}

pub fn handler(ctx: Context<ReadRetirement>) -> Result<RetirementReport> {
    let r = ctx.accounts.retirement.load()?;
    Ok(RetirementReport {
        index: r.index,
        id: r.id,
        holder: r.holder,
        amount: r.amount,
        retired_at: r.retired_at,
        beneficiary: r.beneficiary().to_string(),
        reason: r.reason().to_string(),
    })
}
