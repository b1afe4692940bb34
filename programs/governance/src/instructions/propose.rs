use anchor_lang::prelude::*;

use program_common::pda::{create_pda_account, write_account};

use crate::errors::GovernanceError;
use crate::events::ProposalCreated;
use crate::state::{seeds, Council, Proposal, ProposalStatus, ProposedInstruction};

/// A member proposes an instruction for the governance authority to sign.
#[derive(Accounts)]
#[instruction(instruction: ProposedInstruction)]
pub struct Propose<'info> {
    #[account(mut, seeds = [seeds::COUNCIL], bump = council.bump)]
    pub council: Account<'info, Council>,
    /// CHECK: the next proposal's PDA, created by the handler (see `program_common::pda`).
    #[account(
        mut,
        seeds = [seeds::PROPOSAL, council.proposal_count.to_le_bytes().as_ref()],
        bump,
    )]
    pub proposal: UncheckedAccount<'info>,
    #[account(mut)]
    pub proposer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

impl Propose<'_> {
    pub fn validate(&self, instruction: &ProposedInstruction) -> Result<()> {
        require!(
            self.council.is_member(&self.proposer.key()),
            GovernanceError::NotMember
        );
        instruction.validate()
    }
}

pub fn handler(ctx: Context<Propose>, instruction: ProposedInstruction) -> Result<()> {
    let bump = ctx.bumps.proposal;
    let index = ctx.accounts.council.next_proposal_index()?;
    let a = &ctx.accounts;
    create_pda_account(
        &a.proposer.to_account_info(),
        &a.proposal.to_account_info(),
        &a.system_program.to_account_info(),
        Proposal::space(&instruction),
        &crate::ID,
        &[seeds::PROPOSAL, &index.to_le_bytes(), &[bump]],
    )?;
    let proposal = Proposal {
        index,
        proposer: a.proposer.key(),
        status: ProposalStatus::Active,
        created_at: Clock::get()?.unix_timestamp,
        approved_at: 0,
        executed_at: 0,
        bump,
        approvals: Vec::new(),
        rejections: Vec::new(),
        instruction,
    };
    write_account(&a.proposal, &proposal)?;
    program_common::emit_event!(ProposalCreated {
        proposal: a.proposal.key(),
        index,
        proposer: proposal.proposer,
        program_id: proposal.instruction.program_id,
    });
    Ok(())
}
