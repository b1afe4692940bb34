// Anchor needs the generated account modules at the crate root, hence the glob
// re-exports; each module's handler is always called by its full path.
#![allow(ambiguous_glob_reexports)]

pub mod admin;
pub mod init_ledger;
pub mod initialize;
pub mod issue_rec;
pub mod meter_group;
pub mod mint_generation;
pub mod read_retirement;
pub mod redeem_for_consumption;
pub mod retire_rec;

pub use admin::*;
pub use init_ledger::*;
pub use initialize::*;
pub use issue_rec::*;
pub use mint_generation::*;
pub use read_retirement::*;
pub use redeem_for_consumption::*;
pub use retire_rec::*;
