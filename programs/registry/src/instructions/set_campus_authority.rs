use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::CampusAuthorityChanged;
use crate::state::{seeds, Campus};

/// Hands the campus to a new authority, normally the governance program's authority PDA.
#[derive(Accounts)]
pub struct SetCampusAuthority<'info> {
    #[account(mut, seeds = [seeds::CAMPUS], bump = campus.bump, has_one = authority @ RegistryError::Unauthorized)]
    pub campus: Account<'info, Campus>,
    pub authority: Signer<'info>,
}

impl SetCampusAuthority<'_> {
    pub fn validate(&self, new_authority: &Pubkey) -> Result<()> {
        require!(
            *new_authority != Pubkey::default() && *new_authority != self.campus.authority,
            RegistryError::InvalidAuthority
        );
        Ok(())
    }
}

pub fn handler(ctx: Context<SetCampusAuthority>, new_authority: Pubkey) -> Result<()> {
    let campus = &mut ctx.accounts.campus;
    let from = campus.authority;
    campus.authority = new_authority;
    emit!(CampusAuthorityChanged {
        from,
        to: new_authority,
    });
    Ok(())
}
