use anchor_lang::prelude::*;

#[event]
pub struct CouncilConfigured {
    pub members: Vec<Pubkey>,
    pub guardians: Vec<Pubkey>,
    pub threshold: u8,
    pub timelock_seconds: u32,
    pub max_guardian_pause_s: u32,
    pub guardian_cooldown_s: u32,
}

#[event]
pub struct ProposalCreated {
    pub proposal: Pubkey,
    pub index: u64,
    pub proposer: Pubkey,
    pub program_id: Pubkey,
}

#[event]
pub struct ProposalVoted {
    pub proposal: Pubkey,
    pub member: Pubkey,
    pub approve: bool,
    pub approvals: u8,
    pub rejections: u8,
}

#[event]
pub struct ProposalApproved {
    pub proposal: Pubkey,
    /// Unix time after which it can be executed.
    pub executable_at: i64,
}

#[event]
pub struct ProposalRejected {
    pub proposal: Pubkey,
}

#[event]
pub struct ProposalExecuted {
    pub proposal: Pubkey,
    pub program_id: Pubkey,
    pub executor: Pubkey,
}

#[event]
pub struct ProposalCancelled {
    pub proposal: Pubkey,
}

#[event]
pub struct GuardianPaused {
    pub guardian: Pubkey,
    pub program_id: Pubkey,
    pub config: Pubkey,
    /// When the pause lapses unless a proposal extends it.
    pub paused_until: i64,
}
