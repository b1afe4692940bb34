use anchor_lang::prelude::*;

use crate::errors::GovernanceError;
use crate::events::{ProposalApproved, ProposalRejected, ProposalVoted};
use crate::state::{seeds, Council, Proposal, ProposalStatus};

/// A member approves or rejects a proposal.
///
/// - While Active, each member votes once. When approvals of current members reach the
///   threshold the proposal is Approved and its timelock starts; when rejections make the
///   threshold unreachable (the defeat count: eligible voters - threshold + 1) it is
///   Rejected.
/// - While Approved (in its timelock), a member whose approval was lost to a council change
///   can be replaced by a new approval; when the threshold is reached again the timelock
///   starts again. A member may still reject, an approver included (withdrawing the
///   approval): the proposal is Rejected only at the defeat count, as while Active, so no
///   single member can veto what the threshold approved.
/// - A member may not vote on a proposal that removes them (`VoteOnOwnRemoval`), and does
///   not count among its eligible voters: a council can remove a rogue member against
///   their will. When fewer eligible voters than the threshold remain, the proposal needs
///   all of them, if they are a majority of the council (`Council::required_approvals`):
///   a unanimous council removes a rogue too, a minority never removes the majority.
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
        self.proposal.check_open()?;
        require!(
            !self
                .proposal
                .removes(&self.council)
                .contains(&self.member.key()),
            GovernanceError::VoteOnOwnRemoval
        );
        Ok(())
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
    let eligible = proposal.eligible_voters(council);
    let executable_before = proposal.status == ProposalStatus::Approved
        && council.reaches_threshold(&proposal.approvals, eligible);
    proposal.approvals.push(member);
    emit_vote(proposal, key, member, true);
    if !executable_before && council.reaches_threshold(&proposal.approvals, eligible) {
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
    if proposal.status != ProposalStatus::Approved {
        require!(!proposal.has_voted(&member), GovernanceError::AlreadyVoted);
    }
    // A member who approved and now rejects (in the timelock) withdraws the approval.
    proposal.approvals.retain(|k| *k != member);
    proposal.rejections.push(member);
    emit_vote(proposal, key, member, false);
    let eligible = proposal.eligible_voters(council);
    if council.is_defeated(&proposal.rejections, eligible) {
        proposal.status = ProposalStatus::Rejected;
        program_common::emit_event!(ProposalRejected { proposal: key });
    }
    Ok(())
}
