use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::errors::TradingError;
use crate::events::{SweepSkipped, Withdrawn};
use crate::instructions::vault::pay_out;
use crate::state::{seeds, Balance, Market};

/// What `balance` holds in lamports beyond its rent-exempt minimum: settled orders' rent,
/// which belongs to the owner.
fn spare_lamports(balance: &AccountInfo) -> Result<u64> {
    let keep = Rent::get()?.minimum_balance(Balance::SPACE);
    // Created rent-exempt, never debited below it.
    Ok(balance
        .lamports()
        .checked_sub(keep)
        .ok_or(TradingError::Overflow)?)
}

fn take_lamports(from: &AccountInfo, to: &AccountInfo, amount: u64) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    **from.try_borrow_mut_lamports()? = from
        .lamports()
        .checked_sub(amount)
        .ok_or(TradingError::Overflow)?;
    **to.try_borrow_mut_lamports()? = to
        .lamports()
        .checked_add(amount)
        .ok_or(TradingError::Overflow)?;
    Ok(())
}

/// An owner takes (part of) their claimable GRID and quote tokens to their own token
/// accounts, and the rent of their settled orders back to their wallet. Allowed while the
/// market is paused, and whoever owns the buildings now: a balance is its owner's.
#[derive(Accounts)]
pub struct Withdraw<'info> {
    #[account(
        seeds = [seeds::MARKET],
        bump = market.load()?.bump,
        has_one = base_vault @ TradingError::WrongMint,
        has_one = quote_vault @ TradingError::WrongMint,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut, seeds = [seeds::BALANCE, owner.key().as_ref()], bump = balance.load()?.bump)]
    pub balance: AccountLoader<'info, Balance>,
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(mut, token::mint = base_vault.mint)]
    pub owner_base: Account<'info, TokenAccount>,
    #[account(mut, token::mint = quote_vault.mint)]
    pub owner_quote: Account<'info, TokenAccount>,
    #[account(mut)]
    pub base_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub quote_vault: Account<'info, TokenAccount>,
    /// CHECK: the vault authority PDA; signs the transfers.
    #[account(seeds = [seeds::VAULT_AUTHORITY], bump = market.load()?.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    pub token_program: Program<'info, Token>,
}

pub fn withdraw_handler(ctx: Context<Withdraw>, base: u64, quote: u64) -> Result<()> {
    let a = &ctx.accounts;
    let owner = a.owner.key();
    {
        let mut balance = a.balance.load_mut()?;
        balance.base = balance
            .base
            .checked_sub(base)
            .ok_or(TradingError::InsufficientBalance)?;
        balance.quote = balance
            .quote
            .checked_sub(quote)
            .ok_or(TradingError::InsufficientBalance)?;
    }
    let bump = a.market.load()?.vault_authority_bump;
    pay_out(
        &a.token_program,
        &a.base_vault.to_account_info(),
        &a.owner_base.to_account_info(),
        &a.vault_authority,
        bump,
        base,
    )?;
    pay_out(
        &a.token_program,
        &a.quote_vault.to_account_info(),
        &a.owner_quote.to_account_info(),
        &a.vault_authority,
        bump,
        quote,
    )?;
    let balance_info = a.balance.to_account_info();
    let lamports = spare_lamports(&balance_info)?;
    take_lamports(&balance_info, &a.owner.to_account_info(), lamports)?;
    program_common::emit_event!(Withdrawn {
        owner,
        base,
        quote,
        lamports,
    });
    Ok(())
}

/// Pays whole balances to their owners: anyone may (the keeper does after settling).
/// Remaining accounts, per owner: their `Balance` (writable), their GRID and quote token
/// accounts (writable) and their wallet (writable, for the settled orders' rent). A balance
/// whose token accounts are missing, closed or not the owner's is skipped with
/// `SweepSkipped` and stays claimable.
#[derive(Accounts)]
pub struct Sweep<'info> {
    #[account(
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

/// Whether `info` is an initialised token account of `mint` owned by `owner`.
fn token_account_of(info: &AccountInfo, mint: &Pubkey, owner: &Pubkey) -> bool {
    if *info.owner != anchor_spl::token::ID || !info.is_writable {
        return false;
    }
    let Ok(data) = info.try_borrow_data() else {
        return false;
    };
    match TokenAccount::try_deserialize(&mut &data[..]) {
        Ok(account) => account.mint == *mint && account.owner == *owner,
        Err(_) => false,
    }
}

pub fn sweep_handler<'info>(ctx: Context<'info, Sweep<'info>>) -> Result<()> {
    let a = &ctx.accounts;
    require!(
        !ctx.remaining_accounts.is_empty() && ctx.remaining_accounts.len() % 4 == 0,
        TradingError::WrongBalance
    );
    let bump = a.market.load()?.vault_authority_bump;
    let (base_mint, quote_mint) = (a.base_vault.mint, a.quote_vault.mint);
    for group in ctx.remaining_accounts.chunks(4) {
        let [balance_info, base_to, quote_to, wallet] = group else {
            return err!(TradingError::WrongBalance);
        };
        let (owner, base, quote) =
            program_common::zero_copy::update::<Balance, _>(balance_info, |b| {
                (b.owner, b.base, b.quote)
            })?;
        if !token_account_of(base_to, &base_mint, &owner)
            || !token_account_of(quote_to, &quote_mint, &owner)
            || *wallet.key != owner
        {
            program_common::emit_event!(SweepSkipped { owner });
            continue;
        }
        program_common::zero_copy::update::<Balance, _>(balance_info, |b| {
            b.base = 0;
            b.quote = 0;
        })?;
        pay_out(
            &a.token_program,
            &a.base_vault.to_account_info(),
            base_to,
            &a.vault_authority,
            bump,
            base,
        )?;
        pay_out(
            &a.token_program,
            &a.quote_vault.to_account_info(),
            quote_to,
            &a.vault_authority,
            bump,
            quote,
        )?;
        let lamports = spare_lamports(balance_info)?;
        take_lamports(balance_info, wallet, lamports)?;
        program_common::emit_event!(Withdrawn {
            owner,
            base,
            quote,
            lamports,
        });
    }
    Ok(())
}
