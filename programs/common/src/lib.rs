//! What every GridTokenX program shares on chain: creating PDA accounts that pre-funding
//! cannot block, writing Anchor accounts into them, and binding initialisers to the
//! program's upgrade authority.
//!
//! This is a library, not a program: `Anchor.toml` lists the five programs explicitly so that
//! `anchor build` does not try to build it.
pub mod events;
pub mod pause;
pub mod pda;
pub mod upgrade;
pub mod zero_copy;
