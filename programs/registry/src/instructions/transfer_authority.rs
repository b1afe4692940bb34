use anchor_lang::prelude::*;

use crate::errors::RegistryError;
use crate::events::{CampusAuthorityChanged, CampusAuthorityProposed};
use crate::state::{seeds, Campus};

/// First step of a hand-over: the authority names its successor (normally the governance
/// program's authority for the registry). Nothing changes until the successor accepts, so a
/// mistyped key cannot lock the campus. Proposing again replaces the pending successor.
#[derive(Accounts)]
pub struct ProposeAuthority<'info> {
    #[account(mut, seeds = [seeds::CAMPUS], bump = campus.bump, has_one = authority @ RegistryError::Unauthorized)]
    pub campus: Account<'info, Campus>,
    pub authority: Signer<'info>,
}

impl ProposeAuthority<'_> {
    pub fn validate(&self, new_authority: &Pubkey) -> Result<()> {
        require!(
            *new_authority != Pubkey::default() && *new_authority != self.campus.authority,
            RegistryError::InvalidAuthority
        );
        Ok(())
    }
}

pub fn propose_handler(ctx: Context<ProposeAuthority>, new_authority: Pubkey) -> Result<()> {
    let campus = &mut ctx.accounts.campus;
    campus.pending_authority = new_authority;
    program_common::emit_event!(CampusAuthorityProposed {
        authority: campus.authority,
        pending: new_authority,
    });
    Ok(())
}

/// Second step: the proposed successor signs and becomes the authority.
#[derive(Accounts)]
pub struct AcceptAuthority<'info> {
    #[account(mut, seeds = [seeds::CAMPUS], bump = campus.bump)]
    pub campus: Account<'info, Campus>,
    pub new_authority: Signer<'info>,
}

impl AcceptAuthority<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.campus.pending_authority != Pubkey::default()
                && self.campus.pending_authority == self.new_authority.key(),
            RegistryError::NotPendingAuthority
        );
        Ok(())
    }
}

pub fn accept_handler(ctx: Context<AcceptAuthority>) -> Result<()> {
    let campus = &mut ctx.accounts.campus;
    let from = campus.authority;
    campus.authority = campus.pending_authority;
    campus.pending_authority = Pubkey::default();
    program_common::emit_event!(CampusAuthorityChanged {
        from,
        to: campus.authority,
    });
    Ok(())
}
