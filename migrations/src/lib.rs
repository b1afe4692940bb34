//! What every off-chain part of GridTokenX shares: the campus configuration
//! (`migrations/campus.toml`) and device identities (LFDI/SFDI from certificates).
pub mod campus;
pub mod identity;
pub mod idl;
pub mod ix;
pub mod settings;

pub use campus::{Building, CampusConfig, ConfigError, Kind};
