use anchor_lang::prelude::*;

use crate::errors::RegistryError;

/// The campus: who administers it and how many meters it has.
#[account]
#[derive(InitSpace, Debug)]
pub struct Campus {
    /// Signs every privileged registry instruction: the bootstrap key, then governance.
    pub authority: Pubkey,
    /// Proposed successor of `authority` until it accepts; the default key when none.
    pub pending_authority: Pubkey,
    /// Number of meters ever registered; the next meter gets this as its index.
    pub meter_count: u16,
    /// Paused until this Unix time (0: not paused; `program_common::pause`): registration
    /// and ownership transfers are refused meanwhile.
    pub paused_until: i64,
    pub bump: u8,
    #[max_len(Campus::MAX_NAME_LEN)]
    pub name: String,
}

impl Campus {
    pub const MAX_NAME_LEN: usize = 32;
    pub const SPACE: usize = 8 + Campus::INIT_SPACE;

    pub fn validate_name(name: &str) -> Result<()> {
        require!(
            !name.is_empty() && name.len() <= Self::MAX_NAME_LEN,
            RegistryError::InvalidCampusName
        );
        Ok(())
    }

    pub fn is_paused(&self, now: i64) -> bool {
        program_common::pause::is_paused(self.paused_until, now)
    }

    /// Hands out the next compact meter index.
    pub fn next_meter_index(&mut self) -> Result<u16> {
        let index = self.meter_count;
        self.meter_count = index.checked_add(1).ok_or(RegistryError::CampusFull)?;
        Ok(index)
    }
}
