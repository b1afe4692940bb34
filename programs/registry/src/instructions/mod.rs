// Anchor needs the generated account modules at the crate root, hence the glob
// re-exports; each module's `handler` is always called by its full path.
#![allow(ambiguous_glob_reexports)]

pub mod initialize_campus;
pub mod register_meter;
pub mod set_meter_status;
pub mod set_paused;
pub mod transfer_authority;
pub mod transfer_meter_ownership;
pub mod update_meter_capacity;

pub use initialize_campus::*;
pub use register_meter::*;
pub use set_meter_status::*;
pub use set_paused::*;
pub use transfer_authority::*;
pub use transfer_meter_ownership::*;
pub use update_meter_capacity::*;
