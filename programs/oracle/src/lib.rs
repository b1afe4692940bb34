//! GridTokenX oracle program (placeholder: its instructions arrive with their own issue).
use anchor_lang::prelude::*;

declare_id!("EsBoZvjvba2DKd6uoiKssseWpPYKkabLNfaeLBBPSP6i");

#[program]
pub mod oracle {}
