use anchor_lang::prelude::*;

use crate::errors::GovernanceError;
use crate::events::ProposalCancelled;
use crate::state::{seeds, Proposal, ProposalStatus};

/// The proposer withdraws a proposal that has not been executed.
#[derive(Accounts)]
pub struct Cancel<'info> {
    #[account(
        mut,
        seeds = [seeds::PROPOSAL, proposal.index.to_le_bytes().as_ref()],
        bump = proposal.bump,
        has_one = proposer @ GovernanceError::NotProposer,
    )]
    pub proposal: Account<'info, Proposal>,
    pub proposer: Signer<'info>,
}

impl Cancel<'_> {
    pub fn validate(&self) -> Result<()> {
        match self.proposal.status {
            ProposalStatus::Active | ProposalStatus::Approved => Ok(()),
            ProposalStatus::Executed => err!(GovernanceError::AlreadyExecuted),
            ProposalStatus::Rejected | ProposalStatus::Cancelled => {
                err!(GovernanceError::ProposalClosed)
            }
        }
    }
}

pub fn handler(ctx: Context<Cancel>) -> Result<()> {
    ctx.accounts.proposal.status = ProposalStatus::Cancelled;
    emit!(ProposalCancelled {
        proposal: ctx.accounts.proposal.key(),
    });
    Ok(())
}
