use anchor_lang::prelude::*;

use crate::errors::GovernanceError;
use crate::events::{ProposalApproved, ProposalRejected, ProposalVoted};
use crate::state::{seeds, Council, Proposal, ProposalStatus};

/// A member approves or rejects a proposal, once.
#[derive(Accounts)]
pub struct Vote<'info> {
    #[account(seeds = [seeds::COUNCIL], bump = council.bump)]
    pub council: Account<'info, Council>,
    #[account(mut, seeds = [seeds::PROPOSAL, proposal.index.to_le_bytes().as_ref()], bump = proposal.bump)]
    pub proposal: Account<'info, Proposal>,
    pub member: Signer<'info>,
}

impl Vote<'_> {
    pub fn validate(&self) -> Result<()> {
        let member = self.member.key();
        require!(self.council.is_member(&member), GovernanceError::NotMember);
        require!(
            !self.proposal.has_voted(&member),
            GovernanceError::AlreadyVoted
        );
        Ok(())
    }
}

fn emit_vote(proposal: &Proposal, key: Pubkey, member: Pubkey, approve: bool) {
    // At most MAX_MEMBERS (16) votes of each kind: the casts cannot truncate.
    emit!(ProposalVoted {
        proposal: key,
        member,
        approve,
        approvals: proposal.approvals.len() as u8,
        rejections: proposal.rejections.len() as u8,
    });
}

pub fn approve_handler(ctx: Context<Vote>) -> Result<()> {
    let council = &ctx.accounts.council;
    let member = ctx.accounts.member.key();
    let key = ctx.accounts.proposal.key();
    let proposal = &mut ctx.accounts.proposal;
    proposal.check_open_for(true)?;
    proposal.approvals.push(member);
    emit_vote(proposal, key, member, true);
    if proposal.status == ProposalStatus::Active
        && council.count_members(&proposal.approvals) >= usize::from(council.threshold)
    {
        proposal.status = ProposalStatus::Approved;
        proposal.approved_at = Clock::get()?.unix_timestamp;
        emit!(ProposalApproved {
            proposal: key,
            executable_at: proposal.executable_at(council.timelock_seconds)?,
        });
    }
    Ok(())
}

pub fn reject_handler(ctx: Context<Vote>) -> Result<()> {
    let council = &ctx.accounts.council;
    let member = ctx.accounts.member.key();
    let key = ctx.accounts.proposal.key();
    let proposal = &mut ctx.accounts.proposal;
    proposal.check_open_for(false)?;
    proposal.rejections.push(member);
    emit_vote(proposal, key, member, false);
    if council.is_defeated(&proposal.rejections) {
        proposal.status = ProposalStatus::Rejected;
        emit!(ProposalRejected { proposal: key });
    }
    Ok(())
}
