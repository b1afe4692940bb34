//! The campus meter simulator: physical models of the buildings (`profile`), IEEE 2030.5
//! clients that post what the models measure (`client`, `meter`), and a whole campus of them
//! (`runner`). The binaries: `campus-sim` (the 25 meters against a running bridge), `bench`
//! (thousands of meters against the bridge binary) and `store-size` (the store's growth).
//!
//! The bridge (the server) does not depend on this crate; it shares only the 2030.5 documents
//! (`sep2`).
pub mod client;
pub mod ems;
pub mod meter;
pub mod profile;
pub mod rng;
pub mod runner;
