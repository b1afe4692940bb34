pub mod auction;
pub mod book;
pub mod market;
pub mod seeds;

pub use book::*;
pub use market::*;
pub use seeds::*;
