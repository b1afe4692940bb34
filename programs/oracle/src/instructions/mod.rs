// Anchor needs the generated account modules at the crate root, hence the glob
// re-exports; each module's handler is always called by its full path.
#![allow(ambiguous_glob_reexports)]

pub mod config_admin;
pub mod init_meter_state;
pub mod initialize_oracle;
pub mod read_meter_state;
pub mod submit_readings;

pub use config_admin::*;
pub use init_meter_state::*;
pub use initialize_oracle::*;
pub use read_meter_state::*;
pub use submit_readings::*;
