//! Trading builders (`migrations::ix::trading`).
pub use migrations::ix::trading::*;
