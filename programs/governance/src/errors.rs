use anchor_lang::prelude::*;

#[error_code]
pub enum GovernanceError {
    #[msg("Council needs 1 to 16 distinct, non-default members")]
    InvalidMembers,
    #[msg("Threshold must be between 1 and the number of members")]
    InvalidThreshold,
    #[msg("At most 8 distinct, non-default guardians")]
    InvalidGuardians,
    #[msg("Timelock must be at most 30 days")]
    InvalidTimelock,
    #[msg("Signer is not a council member")]
    NotMember,
    #[msg("Signer is not a guardian")]
    NotGuardian,
    #[msg("Proposed instruction has too many accounts or too much data")]
    InstructionTooLarge,
    #[msg("This member has already voted on the proposal")]
    AlreadyVoted,
    #[msg("The proposal is not open for voting")]
    VotingClosed,
    #[msg("The proposal has not reached the approval threshold of current members")]
    ThresholdNotMet,
    #[msg("The timelock has not elapsed since the proposal was approved")]
    TimelockNotElapsed,
    #[msg("The proposal has already been executed")]
    AlreadyExecuted,
    #[msg("The proposal was rejected or cancelled")]
    ProposalClosed,
    #[msg("Only the proposer can cancel a proposal")]
    NotProposer,
    #[msg("Accounts passed to execute differ from the proposal's")]
    AccountsMismatch,
    #[msg("The target program differs from the proposal's")]
    ProgramMismatch,
    #[msg("Only GridTokenX programs can be paused by a guardian")]
    NotPausable,
    #[msg("Arithmetic overflow")]
    Overflow,
    #[msg("Signer is not the program's upgrade authority (ProgramData of the upgradeable loader)")]
    NotUpgradeAuthority,
    #[msg("A member may not vote on a proposal that removes them from the council")]
    VoteOnOwnRemoval,
    #[msg("This guardian paused this program too recently: wait for the council's cooldown")]
    GuardianCooldown,
    #[msg("Guardian pause from 1 s to 30 days, cooldown from twice the pause length to 365 days")]
    InvalidGuardianPause,
}
