//! Instruction builders and addresses for the registry program.
use anchor_lang::prelude::Pubkey;
use registry::identity::Lfdi;
use registry::{accounts, instruction, seeds, BuildingKind, MeterCapacity, MeterStatus};
use solana_instruction::Instruction;

use super::anchor_ix;

pub fn campus_address() -> Pubkey {
    Pubkey::find_program_address(&[seeds::CAMPUS], &registry::ID).0
}

pub fn meter_address(lfdi: &Lfdi) -> Pubkey {
    Pubkey::find_program_address(&[seeds::METER, lfdi], &registry::ID).0
}

pub fn initialize_campus(authority: Pubkey, name: &str) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::InitializeCampus {
            campus: campus_address(),
            authority,
            program_data: super::program_data_address(registry::ID),
            system_program: anchor_lang::system_program::ID,
        },
        instruction::InitializeCampus {
            name: name.to_string(),
        },
    )
}

pub fn register_meter_with(
    authority: Pubkey,
    owner: Pubkey,
    lfdi: Lfdi,
    sfdi: u64,
    building_kind: BuildingKind,
    capacity: MeterCapacity,
) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::RegisterMeter {
            campus: campus_address(),
            authority,
            owner,
            meter: meter_address(&lfdi),
            system_program: anchor_lang::system_program::ID,
        },
        instruction::RegisterMeter {
            args: registry::RegisterMeterArgs {
                lfdi,
                sfdi,
                building_kind,
                capacity,
            },
        },
    )
}

pub fn set_meter_status(authority: Pubkey, lfdi: &Lfdi, status: MeterStatus) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::SetMeterStatus {
            campus: campus_address(),
            authority,
            meter: meter_address(lfdi),
        },
        instruction::SetMeterStatus { status },
    )
}

pub fn update_meter_capacity(
    authority: Pubkey,
    lfdi: &Lfdi,
    capacity: MeterCapacity,
) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::UpdateMeterCapacity {
            campus: campus_address(),
            authority,
            meter: meter_address(lfdi),
        },
        instruction::UpdateMeterCapacity { capacity },
    )
}

pub fn transfer_meter_ownership(lfdi: &Lfdi, owner: Pubkey, new_owner: Pubkey) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::TransferMeterOwnership {
            campus: campus_address(),
            meter: meter_address(lfdi),
            owner,
            new_owner,
        },
        instruction::TransferMeterOwnership {},
    )
}

/// First step of a hand-over of the campus.
pub fn propose_authority(authority: Pubkey, new_authority: Pubkey) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::ProposeAuthority {
            campus: campus_address(),
            authority,
        },
        instruction::ProposeAuthority { new_authority },
    )
}

/// Second step: the new authority accepts.
pub fn accept_authority(new_authority: Pubkey) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::AcceptAuthority {
            campus: campus_address(),
            new_authority,
        },
        instruction::AcceptAuthority {},
    )
}

/// `set_paused`: paused until lifted (`true`) or lifted (`false`).
pub fn set_paused(authority: Pubkey, paused: bool) -> Instruction {
    pause_until(
        authority,
        if paused {
            program_common::pause::INDEFINITELY
        } else {
            0
        },
    )
}

/// `set_paused(paused_until)`: paused until that Unix time (0 lifts the pause).
pub fn pause_until(authority: Pubkey, paused_until: i64) -> Instruction {
    anchor_ix(
        registry::ID,
        accounts::SetPaused {
            campus: campus_address(),
            authority,
        },
        instruction::SetPaused { paused_until },
    )
}
