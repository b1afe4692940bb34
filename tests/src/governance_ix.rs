//! Governance builders (`sdk::ix::governance`).
pub use sdk::ix::governance::*;
