pub mod campus;
pub mod meter;
pub mod seeds;

pub use campus::*;
pub use meter::*;
pub use seeds::*;
