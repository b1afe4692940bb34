pub mod config;
pub mod ledger;
pub mod retirement;
pub mod seeds;

pub use config::*;
pub use ledger::*;
pub use retirement::*;
pub use seeds::*;
