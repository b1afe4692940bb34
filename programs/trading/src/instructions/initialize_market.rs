use anchor_lang::prelude::*;
use anchor_spl::token::{self, InitializeAccount3, Mint, Token};
use program_common::pda::{create_pda_account, init_zero_copy};
use registry::Campus;

use crate::errors::TradingError;
use crate::events::MarketInitialized;
use crate::state::{seeds, Market, MarketParams};

/// Size of an SPL Token account.
const TOKEN_ACCOUNT_SPACE: usize = 165;

/// Creates the campus market for GRID against `quote_mint`, with its two vaults (token
/// accounts owned by the `[VAULT_AUTHORITY]` PDA). Only the registry campus's authority may;
/// it becomes the bootstrap authority, later handed to governance.
#[derive(Accounts)]
pub struct InitializeMarket<'info> {
    /// CHECK: the market PDA, created by the handler (see `program_common::pda`).
    #[account(mut, seeds = [seeds::MARKET], bump)]
    pub market: UncheckedAccount<'info>,
    #[account(
        seeds = [registry::seeds::CAMPUS],
        bump = campus.bump,
        seeds::program = registry::ID,
        constraint = campus.authority == authority.key() @ TradingError::NotCampusAuthority,
    )]
    pub campus: Account<'info, Campus>,
    #[account(
        seeds = [energy_token::seeds::GRID_MINT],
        bump,
        seeds::program = energy_token::ID,
    )]
    pub base_mint: Account<'info, Mint>,
    pub quote_mint: Account<'info, Mint>,
    /// CHECK: the vault authority PDA; holds no data.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump)]
    pub vault_authority: UncheckedAccount<'info>,
    /// CHECK: the GRID vault PDA, created by the handler.
    #[account(mut, seeds = [seeds::BASE_VAULT], bump)]
    pub base_vault: UncheckedAccount<'info>,
    /// CHECK: the quote vault PDA, created by the handler.
    #[account(mut, seeds = [seeds::QUOTE_VAULT], bump)]
    pub quote_vault: UncheckedAccount<'info>,
    #[account(mut)]
    pub authority: Signer<'info>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

impl<'info> InitializeMarket<'info> {
    fn create_vault(
        &self,
        vault: &UncheckedAccount<'info>,
        mint: &Account<'info, Mint>,
        seed: &[u8],
        bump: u8,
    ) -> Result<()> {
        create_pda_account(
            &self.authority.to_account_info(),
            &vault.to_account_info(),
            &self.system_program.to_account_info(),
            TOKEN_ACCOUNT_SPACE,
            &token::ID,
            &[seed, &[bump]],
        )?;
        token::initialize_account3(CpiContext::new(
            self.token_program.key(),
            InitializeAccount3 {
                account: vault.to_account_info(),
                mint: mint.to_account_info(),
                authority: self.vault_authority.to_account_info(),
            },
        ))
    }
}

pub fn handler(
    ctx: Context<InitializeMarket>,
    params: MarketParams,
    start_time: i64,
) -> Result<()> {
    params.validate()?;
    require!(start_time >= 0, TradingError::InvalidParams);
    let a = &ctx.accounts;
    let b = &ctx.bumps;
    a.create_vault(&a.base_vault, &a.base_mint, seeds::BASE_VAULT, b.base_vault)?;
    a.create_vault(
        &a.quote_vault,
        &a.quote_mint,
        seeds::QUOTE_VAULT,
        b.quote_vault,
    )?;
    create_pda_account(
        &a.authority.to_account_info(),
        &a.market.to_account_info(),
        &a.system_program.to_account_info(),
        Market::SPACE,
        &crate::ID,
        &[seeds::MARKET, &[b.market]],
    )?;
    let now = Clock::get()?.unix_timestamp;
    init_zero_copy::<Market>(&a.market, |market| {
        market.authority = a.authority.key();
        market.campus = a.campus.key();
        market.base_mint = a.base_mint.key();
        market.quote_mint = a.quote_mint.key();
        market.base_vault = a.base_vault.key();
        market.quote_vault = a.quote_vault.key();
        market.start_time = start_time;
        market.set_params(&params);
        // No book can exist for an interval already open: clearing starts there.
        market.next_clear = market.interval_at(now);
        market.bump = b.market;
        market.vault_authority_bump = b.vault_authority;
    })?;
    program_common::emit_event!(MarketInitialized {
        market: a.market.key(),
        authority: a.authority.key(),
        base_mint: a.base_mint.key(),
        quote_mint: a.quote_mint.key(),
        start_time,
        params,
    });
    Ok(())
}
