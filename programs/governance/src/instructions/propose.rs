use anchor_lang::prelude::*;

use crate::errors::GovernanceError;
use crate::events::ProposalCreated;
use crate::state::{seeds, Council, Proposal, ProposalStatus, ProposedInstruction};

/// A member proposes an instruction for the governance authority to sign.
#[derive(Accounts)]
#[instruction(instruction: ProposedInstruction)]
pub struct Propose<'info> {
    #[account(mut, seeds = [seeds::COUNCIL], bump = council.bump)]
    pub council: Account<'info, Council>,
    #[account(
        init,
        payer = proposer,
        space = Proposal::space(&instruction),
        seeds = [seeds::PROPOSAL, council.proposal_count.to_le_bytes().as_ref()],
        bump,
    )]
    pub proposal: Account<'info, Proposal>,
    #[account(mut)]
    pub proposer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

impl Propose<'_> {
    pub fn validate(&self, instruction: &ProposedInstruction) -> Result<()> {
        require!(self.council.is_member(&self.proposer.key()), GovernanceError::NotMember);
        instruction.validate()
    }
}

pub fn handler(ctx: Context<Propose>, instruction: ProposedInstruction) -> Result<()> {
    let index = ctx.accounts.council.next_proposal_index()?;
    let proposal = &mut ctx.accounts.proposal;
    proposal.index = index;
    proposal.proposer = ctx.accounts.proposer.key();
    proposal.status = ProposalStatus::Active;
    proposal.created_at = Clock::get()?.unix_timestamp;
    proposal.approved_at = 0;
    proposal.executed_at = 0;
    proposal.bump = ctx.bumps.proposal;
    proposal.approvals = Vec::new();
    proposal.rejections = Vec::new();
    proposal.instruction = instruction;
    emit!(ProposalCreated {
        proposal: proposal.key(),
        index,
        proposer: proposal.proposer,
        program_id: proposal.instruction.program_id,
    });
    Ok(())
}
