use anchor_lang::prelude::*;

use crate::errors::GovernanceError;

pub const MAX_MEMBERS: usize = 16;
pub const MAX_GUARDIANS: usize = 8;
pub const MAX_TIMELOCK_SECONDS: u32 = 30 * 24 * 3600;

/// The council's configuration, as set at initialisation and by `update_council` proposals.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct CouncilConfig {
    pub members: Vec<Pubkey>,
    pub guardians: Vec<Pubkey>,
    pub threshold: u8,
    pub timelock_seconds: u32,
}

fn distinct_and_set(keys: &[Pubkey]) -> bool {
    keys.iter()
        .enumerate()
        .all(|(i, k)| *k != Pubkey::default() && !keys[..i].contains(k))
}

impl CouncilConfig {
    pub fn validate(&self) -> Result<()> {
        require!(
            !self.members.is_empty()
                && self.members.len() <= MAX_MEMBERS
                && distinct_and_set(&self.members),
            GovernanceError::InvalidMembers
        );
        require!(
            self.threshold >= 1 && usize::from(self.threshold) <= self.members.len(),
            GovernanceError::InvalidThreshold
        );
        require!(
            self.guardians.len() <= MAX_GUARDIANS && distinct_and_set(&self.guardians),
            GovernanceError::InvalidGuardians
        );
        require!(
            self.timelock_seconds <= MAX_TIMELOCK_SECONDS,
            GovernanceError::InvalidTimelock
        );
        Ok(())
    }
}

/// The proof-of-authority council, at `[COUNCIL]`.
#[account]
#[derive(InitSpace)]
pub struct Council {
    #[max_len(MAX_MEMBERS)]
    pub members: Vec<Pubkey>,
    #[max_len(MAX_GUARDIANS)]
    pub guardians: Vec<Pubkey>,
    /// Approvals of current members a proposal needs.
    pub threshold: u8,
    /// Delay between reaching the threshold and execution.
    pub timelock_seconds: u32,
    /// Number of proposals ever created; the next one gets this index.
    pub proposal_count: u64,
    /// When the members or the threshold last changed. An approved proposal's timelock
    /// counts from the later of its approval and this: approvals that were lost and regained
    /// by a council change wait out the timelock again.
    pub members_changed_at: i64,
    pub bump: u8,
}

impl Council {
    pub const SPACE: usize = 8 + Council::INIT_SPACE;

    pub fn is_member(&self, key: &Pubkey) -> bool {
        self.members.contains(key)
    }

    pub fn is_guardian(&self, key: &Pubkey) -> bool {
        self.guardians.contains(key)
    }

    /// Applies a new configuration at time `now`.
    pub fn apply(&mut self, config: CouncilConfig, now: i64) {
        if config.members != self.members || config.threshold != self.threshold {
            self.members_changed_at = now;
        }
        self.members = config.members;
        self.guardians = config.guardians;
        self.threshold = config.threshold;
        self.timelock_seconds = config.timelock_seconds;
    }

    /// How many of `voters` are members now: votes of removed members stop counting.
    pub fn count_members(&self, voters: &[Pubkey]) -> usize {
        voters.iter().filter(|v| self.is_member(v)).count()
    }

    /// Whether `voters` include `threshold` current members.
    pub fn reaches_threshold(&self, voters: &[Pubkey]) -> bool {
        self.count_members(voters) >= usize::from(self.threshold)
    }

    /// Whether enough current members rejected that the threshold can no longer be reached.
    pub fn is_defeated(&self, rejections: &[Pubkey]) -> bool {
        // Each rejection is a distinct member, so `against <= members.len()`.
        let against = self.count_members(rejections);
        against + usize::from(self.threshold) > self.members.len()
    }

    /// Hands out the next proposal index.
    pub fn next_proposal_index(&mut self) -> Result<u64> {
        let index = self.proposal_count;
        self.proposal_count = index.checked_add(1).ok_or(GovernanceError::Overflow)?;
        Ok(index)
    }

    pub fn config(&self) -> CouncilConfig {
        CouncilConfig {
            members: self.members.clone(),
            guardians: self.guardians.clone(),
            threshold: self.threshold,
            timelock_seconds: self.timelock_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Vec<Pubkey> {
        (1..=n).map(|i| Pubkey::new_from_array([i; 32])).collect()
    }

    fn config(members: Vec<Pubkey>, threshold: u8) -> CouncilConfig {
        CouncilConfig {
            members,
            guardians: vec![],
            threshold,
            timelock_seconds: 0,
        }
    }

    fn code(r: Result<()>) -> u32 {
        match r {
            Err(anchor_lang::error::Error::AnchorError(e)) => e.error_code_number,
            other => panic!("expected an Anchor error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_valid_config() {
        assert!(config(keys(3), 2).validate().is_ok());
        assert!(config(keys(16), 16).validate().is_ok());
    }

    #[test]
    fn rejects_bad_members() {
        let invalid = GovernanceError::InvalidMembers as u32 + 6000;
        assert_eq!(code(config(vec![], 1).validate()), invalid);
        assert_eq!(code(config(keys(17), 1).validate()), invalid);
        let mut dup = keys(2);
        dup.push(dup[0]);
        assert_eq!(code(config(dup, 1).validate()), invalid);
        assert_eq!(code(config(vec![Pubkey::default()], 1).validate()), invalid);
    }

    #[test]
    fn rejects_bad_threshold() {
        let invalid = GovernanceError::InvalidThreshold as u32 + 6000;
        assert_eq!(code(config(keys(3), 0).validate()), invalid);
        assert_eq!(code(config(keys(3), 4).validate()), invalid);
    }

    #[test]
    fn rejects_bad_guardians_and_timelock() {
        let mut c = config(keys(3), 2);
        c.guardians = keys(9);
        assert_eq!(
            code(c.validate()),
            GovernanceError::InvalidGuardians as u32 + 6000
        );
        let mut c = config(keys(3), 2);
        c.timelock_seconds = MAX_TIMELOCK_SECONDS + 1;
        assert_eq!(
            code(c.validate()),
            GovernanceError::InvalidTimelock as u32 + 6000
        );
    }

    #[test]
    fn removed_members_votes_stop_counting() {
        let mut council = Council {
            members: keys(3),
            guardians: vec![],
            threshold: 2,
            timelock_seconds: 0,
            proposal_count: 0,
            members_changed_at: 0,
            bump: 0,
        };
        let votes = keys(2);
        assert_eq!(council.count_members(&votes), 2);
        council.members.remove(0);
        assert_eq!(council.count_members(&votes), 1);
    }

    #[test]
    fn defeated_when_threshold_unreachable() {
        let council = Council {
            members: keys(3),
            guardians: vec![],
            threshold: 2,
            timelock_seconds: 0,
            proposal_count: 0,
            members_changed_at: 0,
            bump: 0,
        };
        assert!(!council.is_defeated(&keys(1)));
        assert!(council.is_defeated(&keys(2)));
    }
}
