//! GridTokenX trading program (placeholder: its instructions arrive with their own issue).
use anchor_lang::prelude::*;
#[cfg(feature = "sbf-upstream")]
use solana_compiler_builtins as _;

declare_id!("2UJY8zoCp9YGMx2vkRm6CmPg5FidxPHU9CXKmqsi9NyF");

#[program]
pub mod trading {}
