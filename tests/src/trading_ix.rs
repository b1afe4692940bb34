//! Trading builders (`sdk::ix::trading`).
pub use sdk::ix::trading::*;
