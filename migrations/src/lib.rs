//! The migrations: bring a cluster to what the campus file describes, idempotently (every
//! step first reads whether it is done), ending with the hand-over of every program's
//! authority to governance.
//!
//! - `migrate`: the steps (`apply` a `Plan`);
//! - `config`: the `migrate` binary's settings, and the plan they make from the campus file,
//!   the deploy wallet, the device certificates and the owners' and members' keys;
//! - `deploy`: the programs under the upgradeable loader, and their upgrade authority
//!   handed to the council;
//! - `dev`: what a development cluster needs besides (funding signers, a quote token);
//! - `idl`: the programs' IDLs (the `idl` binary builds and checks them).
pub mod config;
pub mod deploy;
pub mod dev;
pub mod idl;
mod migrate;

pub use migrate::{apply, MigrationReport, Plan, PlannedMeter, MIGRATION_IN_FLIGHT};
