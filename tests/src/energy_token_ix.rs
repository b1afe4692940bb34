//! Energy-token builders (`migrations::ix::energy_token`).
pub use migrations::ix::energy_token::*;
