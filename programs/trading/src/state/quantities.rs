//! Units as types (after Phoenix's `quantities.rs`): energy in Wh of GRID, value in the quote
//! token's base units, prices in quote base units per kWh. An escrow says which it holds.
use anchor_lang::prelude::*;

use crate::errors::TradingError;

/// Prices are quote base units per kWh; quantities are Wh.
pub const WH_PER_KWH: u128 = 1_000;

/// Energy, Wh of GRID (1 GRID base unit = 1 Wh).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Wh(pub u64);

/// An amount of the quote token, in its base units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuoteUnits(pub u64);

/// A price on the market's ladder: quote base units per kWh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(pub u64);

fn narrow(v: u128) -> Result<u64> {
    u64::try_from(v).map_err(|_| error!(TradingError::Overflow))
}

impl Price {
    /// `energy` at this price, rounded up (what a buyer pays or locks).
    pub fn value_up(self, energy: Wh) -> Result<QuoteUnits> {
        let value = u128::from(energy.0) * u128::from(self.0);
        Ok(QuoteUnits(narrow(value.div_ceil(WH_PER_KWH))?))
    }

    /// `energy` at this price, rounded down (what a seller receives before the fee).
    pub fn value_down(self, energy: Wh) -> Result<QuoteUnits> {
        let value = u128::from(energy.0) * u128::from(self.0);
        Ok(QuoteUnits(narrow(value / WH_PER_KWH)?))
    }

    /// The value at this price of the fraction `num / den` of `energy`, rounded up or down
    /// (an order's pro rata share at the marginal tick; `den > 0`).
    pub fn value_of_share(self, energy: Wh, num: u64, den: u64, up: bool) -> Result<QuoteUnits> {
        let value = u128::from(energy.0) * u128::from(num) * u128::from(self.0);
        let scale = u128::from(den) * WH_PER_KWH;
        Ok(QuoteUnits(narrow(if up {
            value.div_ceil(scale)
        } else {
            value / scale
        })?))
    }
}

impl Wh {
    /// The fraction `num / den` of this energy, rounded up or down (`den > 0`).
    pub fn share(self, num: u64, den: u64, up: bool) -> Result<Wh> {
        let value = u128::from(self.0) * u128::from(num);
        let den = u128::from(den);
        Ok(Wh(narrow(if up {
            value.div_ceil(den)
        } else {
            value / den
        })?))
    }
}

/// What an order locks in a vault: a buy, quote tokens; a sell, GRID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escrow {
    Quote(QuoteUnits),
    Base(Wh),
}
