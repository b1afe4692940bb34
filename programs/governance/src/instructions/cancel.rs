use anchor_lang::prelude::*;

use crate::errors::GovernanceError;
use crate::events::ProposalCancelled;
use crate::state::{seeds, Council, Proposal, ProposalStatus};

/// The proposer withdraws a proposal that has not been executed, while still a member.
#[derive(Accounts)]
pub struct Cancel<'info> {
    #[account(seeds = [seeds::COUNCIL], bump = council.bump)]
    pub council: Account<'info, Council>,
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
        require!(
            self.council.is_member(&self.proposer.key()),
            GovernanceError::NotMember
        );
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
    program_common::emit_event!(ProposalCancelled {
        proposal: ctx.accounts.proposal.key(),
    });
    Ok(())
}
