//! The GridTokenX client SDK: what every off-chain part needs to talk to the five programs.
//!
//! - `ix`: instruction builders and addresses (PDAs) for every program, one definition used
//!   by the keeper, the migrations, the tests and the SBF benchmark;
//! - `accounts`: decoders for the programs' accounts and the events in transaction logs;
//! - `campus`: the campus file (`migrations/campus.toml`); `identity`: device identity
//!   (LFDI/SFDI from certificates); `settings`: a TOML file with environment overrides;
//! - `chain` (feature `client`): what a client needs of a chain (`Chain`) and how it gets a
//!   transaction confirmed; `rpc`: that chain over JSON-RPC (a local validator, devnet);
//!   `loader`: deploying and upgrading programs under the upgradeable loader.
pub mod accounts;
pub mod campus;
#[cfg(feature = "client")]
pub mod chain;
pub mod identity;
pub mod ix;
#[cfg(feature = "client")]
pub mod loader;
pub mod names;
#[cfg(feature = "client")]
pub mod rpc;
pub mod settings;

pub use campus::{generated_campus, Building, CampusConfig, CampusTime, ConfigError, Kind, Site};
#[cfg(feature = "client")]
pub use chain::{Chain, SendError};
