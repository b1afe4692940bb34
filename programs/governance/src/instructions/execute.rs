use anchor_lang::prelude::*;
use anchor_lang::solana_program::program::invoke_signed;

use crate::errors::GovernanceError;
use crate::events::ProposalExecuted;
use crate::state::{seeds, Council, Proposal, ProposalStatus};

/// Anyone runs an approved proposal once its timelock has passed. The proposal's accounts
/// follow as remaining accounts, in the proposal's order; the governance authority for the
/// proposal's program signs.
#[derive(Accounts)]
pub struct Execute<'info> {
    // Read-only on purpose: a proposal may update the council by CPI, and a writable copy
    // here would be written back over that change when this instruction exits.
    #[account(seeds = [seeds::COUNCIL], bump = council.bump)]
    pub council: Account<'info, Council>,
    #[account(mut, seeds = [seeds::PROPOSAL, proposal.index.to_le_bytes().as_ref()], bump = proposal.bump)]
    pub proposal: Account<'info, Proposal>,
    /// CHECK: must be the proposal's program; checked in `validate`.
    pub target_program: UncheckedAccount<'info>,
    pub executor: Signer<'info>,
}

impl Execute<'_> {
    pub fn validate(&self, remaining: &[AccountInfo]) -> Result<()> {
        let proposal = &self.proposal;
        match proposal.status {
            ProposalStatus::Approved => {}
            ProposalStatus::Active => return err!(GovernanceError::ThresholdNotMet),
            ProposalStatus::Executed => return err!(GovernanceError::AlreadyExecuted),
            ProposalStatus::Rejected | ProposalStatus::Cancelled => {
                return err!(GovernanceError::ProposalClosed)
            }
        }
        require!(
            self.council
                .reaches_threshold(&proposal.approvals, proposal.eligible_voters(&self.council)),
            GovernanceError::ThresholdNotMet
        );
        let now = Clock::get()?.unix_timestamp;
        require!(
            now >= proposal.executable_at(&self.council)?,
            GovernanceError::TimelockNotElapsed
        );
        require_keys_eq!(
            self.target_program.key(),
            proposal.instruction.program_id,
            GovernanceError::ProgramMismatch
        );
        let metas = &proposal.instruction.accounts;
        require!(
            remaining.len() == metas.len()
                && remaining
                    .iter()
                    .zip(metas)
                    .all(|(info, meta)| *info.key == meta.pubkey),
            GovernanceError::AccountsMismatch
        );
        Ok(())
    }
}

pub fn handler<'info>(ctx: Context<'info, Execute<'info>>) -> Result<()> {
    let instruction = ctx.accounts.proposal.instruction.to_instruction();
    let proposal = &mut ctx.accounts.proposal;
    proposal.status = ProposalStatus::Executed;
    proposal.executed_at = Clock::get()?.unix_timestamp;

    let mut infos = ctx.remaining_accounts.to_vec();
    infos.push(ctx.accounts.target_program.to_account_info());
    // The signature is scoped to the target: only `[AUTHORITY, target]` signs, which is the
    // authority that program (and no other) accepts.
    let target = instruction.program_id;
    let (_, bump) = Pubkey::find_program_address(&[seeds::AUTHORITY, target.as_ref()], &crate::ID);
    invoke_signed(
        &instruction,
        &infos,
        &[&[seeds::AUTHORITY, target.as_ref(), &[bump]]],
    )?;

    program_common::emit_event!(ProposalExecuted {
        proposal: ctx.accounts.proposal.key(),
        program_id: instruction.program_id,
        executor: ctx.accounts.executor.key(),
    });
    Ok(())
}
