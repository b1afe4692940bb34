pub mod config;
pub mod meter_state;
pub mod seeds;

pub use config::*;
pub use meter_state::*;
pub use seeds::*;
