use anchor_lang::prelude::*;

use crate::state::{BuildingKind, MeterCapacity, MeterStatus};

#[event]
pub struct CampusInitialized {
    pub campus: Pubkey,
    pub authority: Pubkey,
    pub name: String,
}

#[event]
pub struct MeterRegistered {
    pub meter: Pubkey,
    pub lfdi: [u8; 20],
    pub sfdi: u64,
    pub owner: Pubkey,
    pub index: u16,
    pub building_kind: BuildingKind,
    pub capacity: MeterCapacity,
}

#[event]
pub struct MeterStatusChanged {
    pub meter: Pubkey,
    pub lfdi: [u8; 20],
    pub from: MeterStatus,
    pub to: MeterStatus,
    /// Cluster time of the change (the meter's `status_changed_at`).
    pub at: i64,
}

#[event]
pub struct MeterCapacityUpdated {
    pub meter: Pubkey,
    pub lfdi: [u8; 20],
    pub capacity: MeterCapacity,
}

#[event]
pub struct MeterOwnershipTransferred {
    pub meter: Pubkey,
    pub lfdi: [u8; 20],
    pub from: Pubkey,
    pub to: Pubkey,
}

#[event]
pub struct CampusAuthorityProposed {
    pub authority: Pubkey,
    pub pending: Pubkey,
}

#[event]
pub struct CampusAuthorityChanged {
    pub from: Pubkey,
    pub to: Pubkey,
}

#[event]
pub struct RegistryPauseChanged {
    /// Paused until this Unix time; 0 when not paused (`program_common::pause`).
    pub paused_until: i64,
}
