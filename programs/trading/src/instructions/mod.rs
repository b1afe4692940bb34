// Anchor needs the generated account modules at the crate root, hence the glob
// re-exports; each module's handler is always called by its full path.
#![allow(ambiguous_glob_reexports)]

pub mod admin;
pub mod cancel_order;
pub mod claim_seat;
pub mod clear_interval;
pub mod close_book;
pub mod initialize_market;
pub mod place_order;
pub mod sweep;
pub mod vault;
pub mod withdraw;

pub use admin::*;
pub use cancel_order::*;
pub use claim_seat::*;
pub use clear_interval::*;
pub use close_book::*;
pub use initialize_market::*;
pub use place_order::*;
pub use sweep::*;
pub use withdraw::*;
