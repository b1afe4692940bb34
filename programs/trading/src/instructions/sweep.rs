use anchor_lang::prelude::*;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::{self, spl_token, Token, TokenAccount};

use crate::errors::TradingError;
use crate::events::{SweepSkipped, Withdrawn};
use crate::instructions::vault::pay_out;
use crate::state::{seeds, Market};

/// Pushes whole seat balances to their owners, many seats per call; anyone may (the keeper
/// does after clearing). Remaining accounts, per seat in `seats`: the owner's GRID account,
/// then the owner's quote account. A seat whose accounts are missing, closed or not the
/// owner's keeps its balance claimable (a `SweepSkipped` event); the others are paid.
#[derive(Accounts)]
pub struct Sweep<'info> {
    #[account(
        mut,
        seeds = [seeds::MARKET],
        bump = market.load()?.bump,
        has_one = base_vault @ TradingError::WrongMint,
        has_one = quote_vault @ TradingError::WrongMint,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub base_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub quote_vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs the transfers.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
}

/// Whether `info` is a writable, initialised token account of `mint` owned by `owner`.
fn is_account_of(info: &AccountInfo, mint: &Pubkey, owner: &Pubkey) -> bool {
    if *info.owner != token::ID || !info.is_writable {
        return false;
    }
    let Ok(data) = info.try_borrow_data() else {
        return false;
    };
    spl_token::state::Account::unpack(&data)
        .map(|a| a.mint == *mint && a.owner == *owner)
        .unwrap_or(false)
}

pub fn handler<'info>(ctx: Context<'info, Sweep<'info>>, seats: Vec<u16>) -> Result<()> {
    let a = &ctx.accounts;
    require!(
        ctx.remaining_accounts.len() == 2 * seats.len(),
        TradingError::WrongMint
    );
    let authority = a.vault_authority.to_account_info();
    let (base_mint, quote_mint, bump) = {
        let m = a.market.load()?;
        (m.base_mint, m.quote_mint, m.vault_authority_bump)
    };
    for (&seat, accounts) in seats.iter().zip(ctx.remaining_accounts.chunks(2)) {
        let (owner, base, quote) = {
            let market = a.market.load()?;
            require!(seat < market.seat_count, TradingError::NotSeatOwner);
            let s = &market.seats[usize::from(seat)];
            (s.owner, s.base, s.quote)
        };
        if base == 0 && quote == 0 {
            continue;
        }
        let (to_base, to_quote) = (&accounts[0], &accounts[1]);
        if !is_account_of(to_base, &base_mint, &owner)
            || !is_account_of(to_quote, &quote_mint, &owner)
        {
            program_common::emit_event!(SweepSkipped { seat, owner });
            continue;
        }
        {
            let mut market = a.market.load_mut()?;
            let s = &mut market.seats[usize::from(seat)];
            s.base = 0;
            s.quote = 0;
        }
        pay_out(
            &a.token_program,
            &a.base_vault.to_account_info(),
            to_base,
            &authority,
            bump,
            base,
        )?;
        pay_out(
            &a.token_program,
            &a.quote_vault.to_account_info(),
            to_quote,
            &authority,
            bump,
            quote,
        )?;
        program_common::emit_event!(Withdrawn {
            owner,
            seat,
            base,
            quote
        });
    }
    Ok(())
}
