//! Energy-token builders (`sdk::ix::energy_token`).
pub use sdk::ix::energy_token::*;
