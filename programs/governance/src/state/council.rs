use anchor_lang::prelude::*;

use crate::errors::GovernanceError;

pub const MAX_MEMBERS: usize = 16;
pub const MAX_GUARDIANS: usize = 8;
pub const MAX_TIMELOCK_SECONDS: u32 = 30 * 24 * 3600;
/// Longest pause a single guardian may impose (the council sets its own, at most this).
pub const MAX_GUARDIAN_PAUSE_SECONDS: u32 = 30 * 24 * 3600;
/// Longest cooldown between two pauses of one program by one guardian.
pub const MAX_GUARDIAN_COOLDOWN_SECONDS: u32 = 365 * 24 * 3600;
/// Guardian pauses remembered: one per guardian and pausable program.
pub const MAX_GUARDIAN_PAUSES: usize = MAX_GUARDIANS * 4;

/// The council's configuration, as set at initialisation and by `update_council` proposals.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct CouncilConfig {
    pub members: Vec<Pubkey>,
    pub guardians: Vec<Pubkey>,
    pub threshold: u8,
    pub timelock_seconds: u32,
    /// A guardian's pause lapses after this unless a proposal extends it (1 s to 30 days).
    pub max_guardian_pause_s: u32,
    /// After pausing a program, the same guardian may pause it again only this long after
    /// (at least twice `max_guardian_pause_s`: a pause that lapses leaves the program running
    /// at least as long as it was halted before the same guardian may pause it again, so no
    /// guardian alone can chain pauses into a halt, or halt it more than half the time).
    pub guardian_cooldown_s: u32,
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
        require!(
            (1..=MAX_GUARDIAN_PAUSE_SECONDS).contains(&self.max_guardian_pause_s)
                && u64::from(self.guardian_cooldown_s) >= 2 * u64::from(self.max_guardian_pause_s)
                && self.guardian_cooldown_s <= MAX_GUARDIAN_COOLDOWN_SECONDS,
            GovernanceError::InvalidGuardianPause
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
    pub max_guardian_pause_s: u32,
    pub guardian_cooldown_s: u32,
    /// The last pause of each program by each guardian (for the cooldown).
    #[max_len(MAX_GUARDIAN_PAUSES)]
    pub guardian_pauses: Vec<GuardianPauseRecord>,
}

/// When a guardian last paused a program.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub struct GuardianPauseRecord {
    pub guardian: Pubkey,
    pub program: Pubkey,
    pub at: i64,
}

impl Council {
    pub const SPACE: usize = 8 + Council::INIT_SPACE;

    pub fn is_member(&self, key: &Pubkey) -> bool {
        self.members.contains(key)
    }

    pub fn is_guardian(&self, key: &Pubkey) -> bool {
        self.guardians.contains(key)
    }

    /// Applies a new configuration at time `now`. A guardian removed forgets its pauses
    /// (one made a guardian again waits out no cooldown of an earlier life).
    pub fn apply(&mut self, config: CouncilConfig, now: i64) {
        if config.members != self.members || config.threshold != self.threshold {
            self.members_changed_at = now;
        }
        self.members = config.members;
        self.guardians = config.guardians;
        self.threshold = config.threshold;
        self.timelock_seconds = config.timelock_seconds;
        self.max_guardian_pause_s = config.max_guardian_pause_s;
        self.guardian_cooldown_s = config.guardian_cooldown_s;
        let guardians = &self.guardians;
        self.guardian_pauses
            .retain(|p| guardians.contains(&p.guardian));
    }

    /// Records that `guardian` pauses `program` at `now`, unless its last pause of that
    /// program is within the cooldown; returns when the pause lapses.
    pub fn record_guardian_pause(
        &mut self,
        guardian: Pubkey,
        program: Pubkey,
        now: i64,
    ) -> Result<i64> {
        let cooldown = i64::from(self.guardian_cooldown_s);
        match self
            .guardian_pauses
            .iter_mut()
            .find(|p| p.guardian == guardian && p.program == program)
        {
            Some(last) => {
                let again_at = last
                    .at
                    .checked_add(cooldown)
                    .ok_or(GovernanceError::Overflow)?;
                require!(now >= again_at, GovernanceError::GuardianCooldown);
                last.at = now;
            }
            None => {
                // One record per guardian and pausable program: the list never outgrows it.
                require!(
                    self.guardian_pauses.len() < MAX_GUARDIAN_PAUSES,
                    GovernanceError::Overflow
                );
                self.guardian_pauses.push(GuardianPauseRecord {
                    guardian,
                    program,
                    at: now,
                });
            }
        }
        Ok(now
            .checked_add(i64::from(self.max_guardian_pause_s))
            .ok_or(GovernanceError::Overflow)?)
    }

    /// How many of `voters` are members now: votes of removed members stop counting.
    pub fn count_members(&self, voters: &[Pubkey]) -> usize {
        voters.iter().filter(|v| self.is_member(v)).count()
    }

    /// Approvals a proposal needs when `eligible` current members may vote on it (all but
    /// those it removes): the threshold; or, when fewer than the threshold remain, all of
    /// them, provided they are a majority of the council. So a council with a high threshold
    /// (unanimity) can still remove a rogue member, by every other member's approval, while
    /// a minority can never remove the majority (its proposal needs the threshold, out of
    /// reach).
    pub fn required_approvals(&self, eligible: usize) -> usize {
        let threshold = usize::from(self.threshold);
        if eligible < threshold && 2 * eligible > self.members.len() {
            eligible
        } else {
            threshold
        }
    }

    /// Whether `voters` include the approvals required of `eligible` voters (current
    /// members only).
    pub fn reaches_threshold(&self, voters: &[Pubkey], eligible: usize) -> bool {
        self.count_members(voters) >= self.required_approvals(eligible)
    }

    /// Whether enough current members rejected that the required approvals can no longer
    /// be reached by the `eligible` members who may vote on the proposal (a member removed
    /// by it may not): the defeat count is `eligible - required + 1` rejections.
    pub fn is_defeated(&self, rejections: &[Pubkey], eligible: usize) -> bool {
        // Each rejection is a distinct eligible member, so `against <= eligible`.
        let against = self.count_members(rejections);
        against + self.required_approvals(eligible) > eligible
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
            max_guardian_pause_s: self.max_guardian_pause_s,
            guardian_cooldown_s: self.guardian_cooldown_s,
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
            max_guardian_pause_s: 72 * 3600,
            guardian_cooldown_s: 7 * 24 * 3600,
        }
    }

    fn council(members: Vec<Pubkey>, threshold: u8) -> Council {
        Council {
            members,
            guardians: vec![],
            threshold,
            timelock_seconds: 0,
            proposal_count: 0,
            members_changed_at: 0,
            bump: 0,
            max_guardian_pause_s: 72 * 3600,
            guardian_cooldown_s: 7 * 24 * 3600,
            guardian_pauses: vec![],
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
        let mut council = council(keys(3), 2);
        let votes = keys(2);
        assert_eq!(council.count_members(&votes), 2);
        council.members.remove(0);
        assert_eq!(council.count_members(&votes), 1);
    }

    #[test]
    fn defeated_when_threshold_unreachable() {
        let council = council(keys(3), 2);
        // 3 members, threshold 2: the defeat count is 2.
        assert!(!council.is_defeated(&keys(1), 3));
        assert!(council.is_defeated(&keys(2), 3));
        // On a proposal removing one of them, 2 may vote: one rejection defeats it.
        assert!(council.is_defeated(&keys(1), 2));
    }

    #[test]
    fn removals_need_the_threshold_or_every_remaining_member_of_a_majority() {
        // Unanimity of 3: removing one needs both others (the rogue cannot block it);
        // removing two is out of reach of the one left.
        let unanimous = council(keys(3), 3);
        assert_eq!(unanimous.required_approvals(3), 3);
        assert_eq!(unanimous.required_approvals(2), 2);
        assert!(unanimous.reaches_threshold(&keys(2), 2));
        assert!(!unanimous.reaches_threshold(&keys(1), 2));
        assert_eq!(unanimous.required_approvals(1), 3);
        assert!(!unanimous.reaches_threshold(&keys(1), 1));
        // One rejection of the two remaining defeats the removal.
        assert!(unanimous.is_defeated(&keys(1), 2));
        // 5 members, threshold 4: removing two needs the three others; three, never.
        let high = council(keys(5), 4);
        assert_eq!(high.required_approvals(4), 4);
        assert_eq!(high.required_approvals(3), 3);
        assert_eq!(high.required_approvals(2), 4);
        // A threshold the remaining members reach is unchanged: 5 members, threshold 2.
        let low = council(keys(5), 2);
        assert_eq!(low.required_approvals(4), 2);
        assert_eq!(low.required_approvals(1), 2);
    }

    #[test]
    fn guardian_pause_limits_are_checked() {
        let invalid = GovernanceError::InvalidGuardianPause as u32 + 6000;
        let mut c = config(keys(3), 2);
        c.max_guardian_pause_s = 0;
        assert_eq!(code(c.validate()), invalid);
        let mut c = config(keys(3), 2);
        c.max_guardian_pause_s = MAX_GUARDIAN_PAUSE_SECONDS + 1;
        c.guardian_cooldown_s = MAX_GUARDIAN_COOLDOWN_SECONDS;
        assert_eq!(code(c.validate()), invalid);
        // A cooldown shorter than twice the pause would let one guardian halt the program
        // most of the time (back to back at equality with the pause).
        let mut c = config(keys(3), 2);
        c.guardian_cooldown_s = c.max_guardian_pause_s;
        assert_eq!(code(c.validate()), invalid);
        c.guardian_cooldown_s = 2 * c.max_guardian_pause_s - 1;
        assert_eq!(code(c.validate()), invalid);
        // Twice the pause is the least accepted; 30 days' pause with 60 days' cooldown too.
        c.guardian_cooldown_s = 2 * c.max_guardian_pause_s;
        assert!(c.validate().is_ok());
        c.max_guardian_pause_s = MAX_GUARDIAN_PAUSE_SECONDS;
        c.guardian_cooldown_s = 2 * MAX_GUARDIAN_PAUSE_SECONDS;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_guardian_pauses_a_program_once_per_cooldown() {
        let mut council = council(keys(3), 2);
        let (guardian, program, other) = (
            keys(4)[3],
            Pubkey::new_from_array([9; 32]),
            Pubkey::new_from_array([8; 32]),
        );
        let day = 86_400;
        assert_eq!(
            council
                .record_guardian_pause(guardian, program, 1_000)
                .unwrap(),
            1_000 + 3 * day
        );
        // Again within 7 days: refused; another program: fine.
        assert_eq!(
            code(
                council
                    .record_guardian_pause(guardian, program, 1_000 + 7 * day - 1)
                    .map(|_| ())
            ),
            GovernanceError::GuardianCooldown as u32 + 6000
        );
        assert!(council
            .record_guardian_pause(guardian, other, 1_000 + day)
            .is_ok());
        assert!(council
            .record_guardian_pause(guardian, program, 1_000 + 7 * day)
            .is_ok());
        assert_eq!(council.guardian_pauses.len(), 2);
    }
}
