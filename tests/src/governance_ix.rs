//! Governance builders (`migrations::ix::governance`).
pub use migrations::ix::governance::*;
