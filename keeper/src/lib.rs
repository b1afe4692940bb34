//! GridTokenX keeper: carries the bridge's attested readings and the market's cranks into
//! transactions.
//!
//! - `chain`: what the keeper needs of a chain (`Chain`) and how it gets a transaction
//!   confirmed (simulate for the compute-unit limit, send, rebroadcast, rebuild on expiry);
//! - `embedded`: the in-process chain (the programs natively in a solana-program-test bank);
//! - `rpc`: a cluster over JSON-RPC (a local validator, devnet);
//! - `bridge_api`: the bridge's keeper interface;
//! - `table`: the keeper's address lookup table;
//! - `keeper`: one pass of work (`Keeper::tick`) and the operator's status.
pub mod bridge_api;
pub mod chain;
pub mod config;
pub mod embedded;
mod event_stubs;
pub mod keeper;
pub mod migrate;
pub mod rpc;
pub mod table;

pub use chain::{Chain, SendError};
pub use keeper::{Keeper, Progress, Status};
