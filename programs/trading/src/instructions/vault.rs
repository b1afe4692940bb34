//! Moving tokens out of the market's vaults (the vault authority PDA signs).
use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, Transfer};

use crate::state::seeds;

pub fn pay_out<'info>(
    token_program: &Program<'info, Token>,
    vault: &AccountInfo<'info>,
    to: &AccountInfo<'info>,
    vault_authority: &AccountInfo<'info>,
    bump: u8,
    amount: u64,
) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    let bump = [bump];
    let signer: &[&[u8]] = &[seeds::VAULT_AUTHORITY, &bump];
    token::transfer(
        CpiContext::new_with_signer(
            token_program.key(),
            Transfer {
                from: vault.clone(),
                to: to.clone(),
                authority: vault_authority.clone(),
            },
            &[signer],
        ),
        amount,
    )
}
