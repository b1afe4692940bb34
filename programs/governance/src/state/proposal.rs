use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};

use crate::errors::GovernanceError;
use crate::state::council::{Council, CouncilConfig, MAX_MEMBERS};

/// Most accounts a proposed instruction may name; keeps `execute` inside one transaction.
pub const MAX_PROPOSAL_ACCOUNTS: usize = 16;
/// Most instruction data a proposal may carry: enough for `update_council` with a full
/// council (8 + 4 + 16 x 32 + 4 + 8 x 32 + 1 + 4 = 789 bytes); the transaction size limit
/// bounds it anyway.
pub const MAX_PROPOSAL_DATA: usize = 1024;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub struct ProposedAccountMeta {
    pub pubkey: Pubkey,
    pub is_signer: bool,
    pub is_writable: bool,
}

/// The instruction a proposal runs when executed.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProposedInstruction {
    pub program_id: Pubkey,
    pub accounts: Vec<ProposedAccountMeta>,
    pub data: Vec<u8>,
}

impl ProposedInstruction {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.accounts.len() <= MAX_PROPOSAL_ACCOUNTS && self.data.len() <= MAX_PROPOSAL_DATA,
            GovernanceError::InstructionTooLarge
        );
        Ok(())
    }

    /// Borsh size of this instruction.
    pub fn space(&self) -> usize {
        32 + 4 + self.accounts.len() * ProposedAccountMeta::INIT_SPACE + 4 + self.data.len()
    }

    pub fn to_instruction(&self) -> Instruction {
        Instruction {
            program_id: self.program_id,
            accounts: self
                .accounts
                .iter()
                .map(|m| AccountMeta {
                    pubkey: m.pubkey,
                    is_signer: m.is_signer,
                    is_writable: m.is_writable,
                })
                .collect(),
            data: self.data.clone(),
        }
    }
}

impl From<&Instruction> for ProposedInstruction {
    fn from(ix: &Instruction) -> Self {
        ProposedInstruction {
            program_id: ix.program_id,
            accounts: ix
                .accounts
                .iter()
                .map(|m| ProposedAccountMeta {
                    pubkey: m.pubkey,
                    is_signer: m.is_signer,
                    is_writable: m.is_writable,
                })
                .collect(),
            data: ix.data.clone(),
        }
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum ProposalStatus {
    /// Collecting votes.
    Active,
    /// Reached the threshold; executable once the timelock has passed.
    Approved,
    Rejected,
    Executed,
    Cancelled,
}

/// A proposal, at `[PROPOSAL, index]`.
#[account]
pub struct Proposal {
    pub index: u64,
    pub proposer: Pubkey,
    pub status: ProposalStatus,
    pub created_at: i64,
    /// When the threshold was last reached; the timelock counts from here (or from a later
    /// council change). 0 before.
    pub approved_at: i64,
    pub executed_at: i64,
    pub bump: u8,
    /// Votes of current members only (see `prune_votes`), so each list holds at most
    /// `MAX_MEMBERS` keys whatever the council's history.
    pub approvals: Vec<Pubkey>,
    pub rejections: Vec<Pubkey>,
    pub instruction: ProposedInstruction,
}

impl Proposal {
    /// Account size for a proposal carrying `instruction`, with room for every member's vote.
    pub fn space(instruction: &ProposedInstruction) -> usize {
        8 + 8 + 32 + 1 + 8 + 8 + 8 + 1 + 2 * (4 + 32 * MAX_MEMBERS) + instruction.space()
    }

    /// The members this proposal removes from `council`: those left out of the
    /// configuration it gives `update_council` (none for any other instruction).
    pub fn removes(&self, council: &Council) -> Vec<Pubkey> {
        let ix = &self.instruction;
        if ix.program_id != crate::ID {
            return Vec::new();
        }
        let discriminator = crate::instruction::UpdateCouncil::DISCRIMINATOR;
        let Some(args) = ix.data.strip_prefix(discriminator) else {
            return Vec::new();
        };
        // An undecodable configuration cannot run (`update_council` refuses it): it removes
        // nobody.
        let Ok(config) = CouncilConfig::deserialize(&mut &args[..]) else {
            return Vec::new();
        };
        council
            .members
            .iter()
            .filter(|m| !config.members.contains(m))
            .copied()
            .collect()
    }

    /// How many current members may vote on this proposal: all but those it removes.
    pub fn eligible_voters(&self, council: &Council) -> usize {
        council.members.len() - self.removes(council).len()
    }

    pub fn has_voted(&self, member: &Pubkey) -> bool {
        self.approvals.contains(member) || self.rejections.contains(member)
    }

    /// Unix time from which the proposal can be executed: the timelock counts from its
    /// approval, or from a later change of the council's members or threshold.
    pub fn executable_at(&self, council: &Council) -> Result<i64> {
        self.approved_at
            .max(council.members_changed_at)
            .checked_add(i64::from(council.timelock_seconds))
            .ok_or_else(|| error!(GovernanceError::Overflow))
    }

    /// Votes are taken while Active, and while Approved: approvals replace ones lost to a
    /// membership change, and rejections during the timelock defeat the proposal as they
    /// would have while Active, at the defeat count.
    pub fn check_open(&self) -> Result<()> {
        match self.status {
            ProposalStatus::Active | ProposalStatus::Approved => Ok(()),
            ProposalStatus::Executed => err!(GovernanceError::AlreadyExecuted),
            ProposalStatus::Rejected | ProposalStatus::Cancelled => {
                err!(GovernanceError::VotingClosed)
            }
        }
    }

    /// Drops the votes of keys that are no longer members: they count for nothing, and
    /// keeping them would let the lists outgrow the account after council rotations.
    pub fn prune_votes(&mut self, council: &Council) {
        self.approvals.retain(|k| council.is_member(k));
        self.rejections.retain(|k| council.is_member(k));
    }
}
