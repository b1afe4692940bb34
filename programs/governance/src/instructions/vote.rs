use anchor_lang::prelude::*;

use crate::errors::GovernanceError;
use crate::events::{ProposalApproved, ProposalRejected, ProposalVoted};
use crate::state::{seeds, Council, Proposal, ProposalStatus};

/// A member approves or rejects a proposal.
///
/// - While Active, each member votes once. When approvals of current members reach the
///   threshold the proposal is Approved and its timelock starts; when rejections make the
///   threshold unreachable it is Rejected.
/// - While Approved (in its timelock), a member whose approval was lost to a council change
///   can be replaced by a new approval; when the threshold is reached again the timelock
///   starts again. And any current member may reject, even one who approved: a rejection
///   during the timelock is a veto, and the proposal is Rejected. The timelock exists so
///   that one member can stop a proposal they find harmful before it runs.
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
        require!(
            self.council.is_member(&self.member.key()),
            GovernanceError::NotMember
        );
        self.proposal.check_open()
    }
}

fn emit_vote(proposal: &Proposal, key: Pubkey, member: Pubkey, approve: bool) {
    // Votes are pruned to current members (at most MAX_MEMBERS, 16): the casts cannot truncate.
    program_common::emit_event!(ProposalVoted {
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
    proposal.prune_votes(council);
    require!(!proposal.has_voted(&member), GovernanceError::AlreadyVoted);
    let executable_before = proposal.status == ProposalStatus::Approved
        && council.reaches_threshold(&proposal.approvals);
    proposal.approvals.push(member);
    emit_vote(proposal, key, member, true);
    if !executable_before && council.reaches_threshold(&proposal.approvals) {
        // Reached (or, after lost approvals, reached again): the timelock starts now.
        proposal.status = ProposalStatus::Approved;
        proposal.approved_at = Clock::get()?.unix_timestamp;
        program_common::emit_event!(ProposalApproved {
            proposal: key,
            executable_at: proposal.executable_at(council)?,
        });
    }
    Ok(())
}

pub fn reject_handler(ctx: Context<Vote>) -> Result<()> {
    let council = &ctx.accounts.council;
    let member = ctx.accounts.member.key();
    let key = ctx.accounts.proposal.key();
    let proposal = &mut ctx.accounts.proposal;
    proposal.prune_votes(council);
    require!(
        !proposal.rejections.contains(&member),
        GovernanceError::AlreadyVoted
    );
    let veto = proposal.status == ProposalStatus::Approved;
    if !veto {
        require!(!proposal.has_voted(&member), GovernanceError::AlreadyVoted);
    }
    // A member who approved and now vetoes withdraws the approval.
    proposal.approvals.retain(|k| *k != member);
    proposal.rejections.push(member);
    emit_vote(proposal, key, member, false);
    if veto || council.is_defeated(&proposal.rejections) {
        proposal.status = ProposalStatus::Rejected;
        program_common::emit_event!(ProposalRejected { proposal: key });
    }
    Ok(())
}
