pub mod council;
pub mod proposal;
pub mod seeds;

pub use council::*;
pub use proposal::*;
pub use seeds::*;
