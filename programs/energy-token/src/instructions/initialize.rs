use anchor_lang::prelude::*;
use anchor_spl::token::{self, InitializeMint2, Token};
use program_common::pda::{create_pda_account, write_zero_copy};
use registry::Campus;

use crate::errors::TokenError;
use crate::events::EnergyTokenInitialized;
use crate::state::{seeds, TokenConfig, GRID_DECIMALS, REC_DECIMALS};

/// Size of an SPL Token mint account.
const MINT_SPACE: usize = 82;

/// Creates the configuration, the GRID mint and the REC mint. Only the registry campus's
/// authority may (so nobody can initialise first and own the mints' configuration); it
/// becomes the bootstrap authority, later handed to governance. Both mints' authority is
/// this program's `[MINT_AUTHORITY]` PDA and neither has a freeze authority: nothing but
/// this program can create GRID or RECs, and nobody can freeze them.
#[derive(Accounts)]
pub struct InitializeEnergyToken<'info> {
    /// CHECK: the config PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::CONFIG], bump)]
    pub config: UncheckedAccount<'info>,
    /// CHECK: the GRID mint PDA, created and initialised by the handler.
    #[account(mut, seeds = [seeds::GRID_MINT], bump)]
    pub grid_mint: UncheckedAccount<'info>,
    /// CHECK: the REC mint PDA, created and initialised by the handler.
    #[account(mut, seeds = [seeds::REC_MINT], bump)]
    pub rec_mint: UncheckedAccount<'info>,
    /// CHECK: the mint authority PDA; holds no data.
    #[account(seeds = [seeds::MINT_AUTHORITY], bump)]
    pub mint_authority: UncheckedAccount<'info>,
    #[account(
        seeds = [registry::seeds::CAMPUS],
        bump = campus.bump,
        seeds::program = registry::ID,
        constraint = campus.authority == authority.key() @ TokenError::NotCampusAuthority,
    )]
    pub campus: Account<'info, Campus>,
    #[account(mut)]
    pub authority: Signer<'info>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

impl<'info> InitializeEnergyToken<'info> {
    fn create_mint(
        &self,
        mint: &UncheckedAccount<'info>,
        seed: &[u8],
        bump: u8,
        decimals: u8,
    ) -> Result<()> {
        create_pda_account(
            &self.authority.to_account_info(),
            &mint.to_account_info(),
            &self.system_program.to_account_info(),
            MINT_SPACE,
            &token::ID,
            &[seed, &[bump]],
        )?;
        token::initialize_mint2(
            CpiContext::new(
                self.token_program.key(),
                InitializeMint2 {
                    mint: mint.to_account_info(),
                },
            ),
            decimals,
            self.mint_authority.key,
            None,
        )
    }
}

pub fn handler(ctx: Context<InitializeEnergyToken>) -> Result<()> {
    let a = &ctx.accounts;
    let b = &ctx.bumps;
    a.create_mint(&a.grid_mint, seeds::GRID_MINT, b.grid_mint, GRID_DECIMALS)?;
    a.create_mint(&a.rec_mint, seeds::REC_MINT, b.rec_mint, REC_DECIMALS)?;
    create_pda_account(
        &a.authority.to_account_info(),
        &a.config.to_account_info(),
        &a.system_program.to_account_info(),
        TokenConfig::SPACE,
        &crate::ID,
        &[seeds::CONFIG, &[b.config]],
    )?;
    let mut config: TokenConfig = bytemuck::Zeroable::zeroed();
    config.authority = a.authority.key();
    config.campus = a.campus.key();
    config.grid_mint = a.grid_mint.key();
    config.rec_mint = a.rec_mint.key();
    config.bump = b.config;
    config.mint_authority_bump = b.mint_authority;
    write_zero_copy(&a.config, &config)?;
    program_common::emit_event!(EnergyTokenInitialized {
        campus: config.campus,
        authority: config.authority,
        grid_mint: config.grid_mint,
        rec_mint: config.rec_mint,
    });
    Ok(())
}
