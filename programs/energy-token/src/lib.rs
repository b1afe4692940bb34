//! GridTokenX energy-token program (placeholder: its instructions arrive with their own issue).
use anchor_lang::prelude::*;
#[cfg(feature = "sbf-upstream")]
use solana_compiler_builtins as _;

declare_id!("DcA7Dee2nRt5WQ4Y7k92SCiDtRnQyYZCTAVPrLjpccG2");

#[program]
pub mod energy_token {}
