use anchor_lang::prelude::*;

use crate::errors::TokenError;

pub const MAX_BENEFICIARY_LEN: usize = 64;
pub const MAX_REASON_LEN: usize = 128;

/// One retirement of RECs, at `[RETIREMENT, index]`: who retired how many, for whom, when and
/// why. Fixed size; once written it never changes, so a certificate is counted once.
#[account(zero_copy)]
#[derive(Debug)]
pub struct Retirement {
    /// Retirements before this one, campus-wide (the order they happened in).
    pub index: u64,
    /// The holder's own number for it: the record's address is `[RETIREMENT, holder, id]`.
    pub id: u64,
    /// The wallet whose RECs were burnt.
    pub holder: Pubkey,
    pub amount: u64,
    pub retired_at: i64,
    /// UTF-8, zero-padded.
    pub beneficiary: [u8; MAX_BENEFICIARY_LEN],
    pub reason: [u8; MAX_REASON_LEN],
    pub bump: u8,
    pub beneficiary_len: u8,
    pub reason_len: u8,
    pub _reserved: [u8; 5],
}

impl Retirement {
    pub const SPACE: usize = 8 + std::mem::size_of::<Retirement>();

    /// Copies a text into a fixed field, refusing one that is empty or too long.
    pub fn fixed<const N: usize>(text: &str) -> Result<([u8; N], u8)> {
        let bytes = text.as_bytes();
        require!(
            !bytes.is_empty() && bytes.len() <= N,
            TokenError::InvalidRetirementText
        );
        let mut out = [0u8; N];
        out[..bytes.len()].copy_from_slice(bytes);
        // N is at most 128: fits a u8.
        Ok((out, bytes.len() as u8))
    }

    pub fn beneficiary(&self) -> &str {
        std::str::from_utf8(&self.beneficiary[..usize::from(self.beneficiary_len)]).unwrap_or("")
    }

    pub fn reason(&self) -> &str {
        std::str::from_utf8(&self.reason[..usize::from(self.reason_len)]).unwrap_or("")
    }
}
