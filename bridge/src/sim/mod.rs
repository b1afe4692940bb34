//! The campus meter simulator: physical models of the buildings, and IEEE 2030.5 clients
//! that post what the models measure.
pub mod meter;
pub mod profile;
pub mod rng;
pub mod runner;
