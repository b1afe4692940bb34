pub mod auction;
pub mod book;
pub mod delegate;
pub mod market;
pub mod order;
pub mod quantities;
pub mod seeds;

pub use book::*;
pub use delegate::*;
pub use market::*;
pub use order::*;
pub use quantities::*;
pub use seeds::*;
