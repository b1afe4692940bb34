// Anchor needs the generated account modules at the crate root, hence the glob
// re-exports; each module's handler is always called by its full path.
#![allow(ambiguous_glob_reexports)]

pub mod admin;
pub mod authorize_delegate;
pub mod cancel_order;
pub mod clear_interval;
pub mod close_book;
pub mod evict_order;
pub mod initialize_market;
pub mod open_interval;
pub mod place_order;
pub mod revoke_delegate;
pub mod settle_orders;
pub mod vault;
pub mod withdraw;

pub use admin::*;
pub use authorize_delegate::*;
pub use cancel_order::*;
pub use clear_interval::*;
pub use close_book::*;
pub use evict_order::*;
pub use initialize_market::*;
pub use open_interval::*;
pub use place_order::*;
pub use revoke_delegate::*;
pub use settle_orders::*;
pub use withdraw::*;
