//! Registry builders (`sdk::ix::registry`) and the test suite's meters.
pub use sdk::ix::registry::*;

use anchor_lang::prelude::Pubkey;
use registry::identity::{sfdi_from_lfdi, Lfdi};
use registry::{BuildingKind, MeterCapacity};
use solana_instruction::Instruction;

/// A plausible building meter: 50 kW of panels, a 30 kWh battery discharging at up to
/// 15 kW (0.5 C), 80 kW maximum draw.
pub fn default_capacity() -> MeterCapacity {
    MeterCapacity {
        generation_w: 50_000,
        storage_wh: 30_000,
        max_import_w: 80_000,
        max_discharge_w: 15_000,
    }
}

/// A distinct, non-zero test LFDI.
pub fn test_lfdi(n: u8) -> Lfdi {
    let mut lfdi = [0u8; 20];
    for (i, b) in lfdi.iter_mut().enumerate() {
        *b = n.wrapping_mul(37).wrapping_add(i as u8).wrapping_add(1);
    }
    lfdi
}

/// `register_meter` of an academic building with the default capacity.
pub fn register_meter(authority: Pubkey, owner: Pubkey, lfdi: Lfdi) -> Instruction {
    register_meter_with(
        authority,
        owner,
        lfdi,
        sfdi_from_lfdi(&lfdi),
        BuildingKind::Academic,
        default_capacity(),
    )
}
