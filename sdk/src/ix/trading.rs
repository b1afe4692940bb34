//! Instruction builders and addresses for the trading program.
use anchor_lang::prelude::Pubkey;
use solana_instruction::{AccountMeta, Instruction};
use trading::{accounts, instruction, seeds, MarketParams, PlaceOrderArgs, Side};

use super::anchor_ix;
use super::energy_token::{ata, grid_mint};
use super::registry::{campus_address, meter_address};
use registry::identity::Lfdi;

fn pda(seeds: &[&[u8]]) -> Pubkey {
    Pubkey::find_program_address(seeds, &trading::ID).0
}

pub fn market_address() -> Pubkey {
    pda(&[seeds::MARKET])
}

pub fn vault_authority() -> Pubkey {
    pda(&[seeds::VAULT_AUTHORITY])
}

pub fn base_vault() -> Pubkey {
    pda(&[seeds::BASE_VAULT])
}

pub fn quote_vault() -> Pubkey {
    pda(&[seeds::QUOTE_VAULT])
}

pub fn book_address(interval: u64) -> Pubkey {
    pda(&[seeds::BOOK, &interval.to_le_bytes()])
}

pub fn initialize_market(
    authority: Pubkey,
    quote_mint: Pubkey,
    params: MarketParams,
    start_time: i64,
) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::InitializeMarket {
            market: market_address(),
            campus: campus_address(),
            base_mint: grid_mint(),
            quote_mint,
            vault_authority: vault_authority(),
            base_vault: base_vault(),
            quote_vault: quote_vault(),
            authority,
            token_program: anchor_spl::token::ID,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::InitializeMarket { params, start_time },
    )
}

fn admin(authority: Pubkey) -> accounts::MarketAdmin {
    accounts::MarketAdmin {
        market: market_address(),
        authority,
    }
}

pub fn set_params(authority: Pubkey, params: MarketParams) -> Instruction {
    anchor_ix(
        trading::ID,
        admin(authority),
        instruction::SetParams { params },
    )
}

/// `set_paused`: paused until lifted (`true`) or lifted (`false`).
pub fn set_paused(authority: Pubkey, paused: bool) -> Instruction {
    pause_until(
        authority,
        if paused {
            program_common::pause::INDEFINITELY
        } else {
            0
        },
    )
}

/// `set_paused(paused_until)`: paused until that Unix time (0 lifts the pause).
pub fn pause_until(authority: Pubkey, paused_until: i64) -> Instruction {
    anchor_ix(
        trading::ID,
        admin(authority),
        instruction::SetPaused { paused_until },
    )
}

pub fn propose_authority(authority: Pubkey, new_authority: Pubkey) -> Instruction {
    anchor_ix(
        trading::ID,
        admin(authority),
        instruction::ProposeAuthority { new_authority },
    )
}

pub fn accept_authority(new_authority: Pubkey) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::AcceptMarketAuthority {
            market: market_address(),
            new_authority,
        },
        instruction::AcceptAuthority {},
    )
}

/// `withdraw_fees` of `quote` fees and `base` GRID dust to the authority's accounts.
pub fn withdraw_fees(
    authority: Pubkey,
    quote_destination: Pubkey,
    base_destination: Pubkey,
    quote: u64,
    base: u64,
) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::WithdrawFees {
            market: market_address(),
            authority,
            quote_vault: quote_vault(),
            base_vault: base_vault(),
            vault_authority: vault_authority(),
            quote_destination,
            base_destination,
            token_program: anchor_spl::token::ID,
        },
        instruction::WithdrawFees { quote, base },
    )
}

/// The order of building `lfdi` on `side` of `interval`.
pub fn order_address(interval: u64, lfdi: &Lfdi, side: Side) -> Pubkey {
    pda(&[seeds::ORDER, &interval.to_le_bytes(), lfdi, &[side.code()]])
}

/// Building `lfdi`'s order delegate.
pub fn order_delegate_address(lfdi: &Lfdi) -> Pubkey {
    pda(&[seeds::ORDER_DELEGATE, lfdi])
}

/// `owner`'s claimable balances.
pub fn balance_address(owner: &Pubkey) -> Pubkey {
    pda(&[seeds::BALANCE, owner.as_ref()])
}

/// `open_interval`: `payer` opens (pays the rent of) the book of `interval`.
pub fn open_interval(payer: Pubkey, interval: u64) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::OpenInterval {
            market: market_address(),
            book: book_address(interval),
            payer,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::OpenInterval { interval },
    )
}

/// The owner's token account and the market's vault an order of `side` uses.
fn order_tokens(owner: &Pubkey, quote_mint: &Pubkey, side: Side) -> (Pubkey, Pubkey) {
    match side {
        Side::Buy => (ata(owner, quote_mint), quote_vault()),
        Side::Sell => (ata(owner, &grid_mint()), base_vault()),
    }
}

/// An order (or its replacement) for building `lfdi` from `owner`'s associated accounts:
/// GRID for a sell, `quote_mint` for a buy.
#[allow(clippy::too_many_arguments)]
pub fn place_order(
    owner: Pubkey,
    quote_mint: &Pubkey,
    lfdi: &Lfdi,
    interval: u64,
    side: Side,
    quantity_wh: u64,
    limit_price: u64,
) -> Instruction {
    let (owner_tokens, vault) = order_tokens(&owner, quote_mint, side);
    anchor_ix(
        trading::ID,
        accounts::PlaceOrder {
            market: market_address(),
            book: book_address(interval),
            meter: meter_address(lfdi),
            order: order_address(interval, lfdi, side),
            opposite: order_address(interval, lfdi, side.other()),
            balance: balance_address(&owner),
            owner,
            owner_tokens,
            vault,
            vault_authority: vault_authority(),
            token_program: anchor_spl::token::ID,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::PlaceOrder {
            args: PlaceOrderArgs {
                interval,
                lfdi: *lfdi,
                side,
                quantity_wh,
                limit_price,
            },
        },
    )
}

pub fn cancel_order(
    owner: Pubkey,
    quote_mint: &Pubkey,
    lfdi: &Lfdi,
    interval: u64,
    side: Side,
) -> Instruction {
    let (owner_tokens, vault) = order_tokens(&owner, quote_mint, side);
    anchor_ix(
        trading::ID,
        accounts::CancelOrder {
            market: market_address(),
            book: book_address(interval),
            order: order_address(interval, lfdi, side),
            balance: balance_address(&owner),
            owner,
            owner_tokens,
            vault,
            vault_authority: vault_authority(),
            token_program: anchor_spl::token::ID,
        },
        instruction::CancelOrder {
            interval,
            lfdi: *lfdi,
            side,
        },
    )
}

/// `place_delegated_order`: building `lfdi`'s delegate places (or replaces) its order for
/// the meter's owner `owner`, from the owner's associated accounts (GRID for a sell,
/// `quote_mint` for a buy), within the allowance the owner approved for the vault authority.
#[allow(clippy::too_many_arguments)]
pub fn place_delegated_order(
    delegate: Pubkey,
    owner: Pubkey,
    quote_mint: &Pubkey,
    lfdi: &Lfdi,
    interval: u64,
    side: Side,
    quantity_wh: u64,
    limit_price: u64,
) -> Instruction {
    let (owner_tokens, vault) = order_tokens(&owner, quote_mint, side);
    anchor_ix(
        trading::ID,
        accounts::PlaceDelegatedOrder {
            market: market_address(),
            book: book_address(interval),
            meter: meter_address(lfdi),
            order: order_address(interval, lfdi, side),
            opposite: order_address(interval, lfdi, side.other()),
            owner,
            balance: balance_address(&owner),
            delegation: order_delegate_address(lfdi),
            delegate,
            owner_tokens,
            vault,
            vault_authority: vault_authority(),
            token_program: anchor_spl::token::ID,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::PlaceDelegatedOrder {
            args: PlaceOrderArgs {
                interval,
                lfdi: *lfdi,
                side,
                quantity_wh,
                limit_price,
            },
        },
    )
}

/// `cancel_delegated_order`: building `lfdi`'s delegate cancels the order `owner` has on
/// `side` of `interval`.
pub fn cancel_delegated_order(
    delegate: Pubkey,
    owner: Pubkey,
    quote_mint: &Pubkey,
    lfdi: &Lfdi,
    interval: u64,
    side: Side,
) -> Instruction {
    let (owner_tokens, vault) = order_tokens(&owner, quote_mint, side);
    anchor_ix(
        trading::ID,
        accounts::CancelDelegatedOrder {
            market: market_address(),
            book: book_address(interval),
            order: order_address(interval, lfdi, side),
            owner,
            balance: balance_address(&owner),
            delegation: order_delegate_address(lfdi),
            delegate,
            owner_tokens,
            vault,
            vault_authority: vault_authority(),
            token_program: anchor_spl::token::ID,
        },
        instruction::CancelDelegatedOrder {
            interval,
            lfdi: *lfdi,
            side,
        },
    )
}

/// `authorize_delegate`: the meter's owner lets `delegate` trade for building `lfdi`, adding
/// `rent_float` lamports to the delegation (its orders' rent comes out of it).
pub fn authorize_delegate(
    owner: Pubkey,
    lfdi: &Lfdi,
    delegate: Pubkey,
    rent_float: u64,
) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::AuthorizeDelegate {
            meter: meter_address(lfdi),
            delegation: order_delegate_address(lfdi),
            owner,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::AuthorizeDelegate {
            lfdi: *lfdi,
            delegate,
            rent_float,
        },
    )
}

/// `revoke_delegate`, signed by the delegation's owner or the meter's owner now; its
/// lamports go back to `funder`, the owner who gave it.
pub fn revoke_delegate(signer: Pubkey, lfdi: &Lfdi, funder: Pubkey) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::RevokeDelegate {
            meter: meter_address(lfdi),
            delegation: order_delegate_address(lfdi),
            signer,
            funder,
        },
        instruction::RevokeDelegate { lfdi: *lfdi },
    )
}

/// SPL `approve`: `owner` lets the market's vault authority lock up to `amount` of their
/// associated account of `mint` in their delegate's orders (the cap on what a delegate can
/// commit; `approve` again to change it, SPL `revoke` to end it).
pub fn approve_order_allowance(owner: Pubkey, mint: &Pubkey, amount: u64) -> Instruction {
    spl_token_interface::instruction::approve(
        &anchor_spl::token::ID,
        &ata(&owner, mint),
        &vault_authority(),
        &owner,
        &[],
        amount,
    )
    .expect("a valid approve")
}

/// SPL `revoke`: ends every allowance on `owner`'s associated account of `mint`.
pub fn revoke_order_allowance(owner: Pubkey, mint: &Pubkey) -> Instruction {
    spl_token_interface::instruction::revoke(
        &anchor_spl::token::ID,
        &ata(&owner, mint),
        &owner,
        &[],
    )
    .expect("a valid revoke")
}

/// `evict_order`: `owner`, the meter's owner now, evicts the order the meter's previous
/// owner `previous_owner` placed on `side` of `interval`.
pub fn evict_order(
    owner: Pubkey,
    previous_owner: &Pubkey,
    lfdi: &Lfdi,
    interval: u64,
    side: Side,
) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::EvictOrder {
            book: book_address(interval),
            meter: meter_address(lfdi),
            order: order_address(interval, lfdi, side),
            previous_owner_balance: balance_address(previous_owner),
            owner,
        },
        instruction::EvictOrder {
            interval,
            lfdi: *lfdi,
            side,
        },
    )
}

pub fn clear_interval(interval: u64) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::ClearInterval {
            market: market_address(),
            book: book_address(interval),
        },
        instruction::ClearInterval { interval },
    )
}

/// `settle_orders` of `interval` for `orders`: `(order address, its owner)`.
pub fn settle_orders(interval: u64, orders: &[(Pubkey, Pubkey)]) -> Instruction {
    let mut ix = anchor_ix(
        trading::ID,
        accounts::SettleOrders {
            book: book_address(interval),
        },
        instruction::SettleOrders { interval },
    );
    for (order, owner) in orders {
        ix.accounts.push(AccountMeta::new(*order, false));
        ix.accounts
            .push(AccountMeta::new(balance_address(owner), false));
    }
    ix
}

pub fn close_book(interval: u64, payer: Pubkey) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::CloseBook {
            market: market_address(),
            book: book_address(interval),
            payer,
        },
        instruction::CloseBook { interval },
    )
}

pub fn withdraw(owner: Pubkey, quote_mint: &Pubkey, base: u64, quote: u64) -> Instruction {
    anchor_ix(
        trading::ID,
        accounts::Withdraw {
            market: market_address(),
            balance: balance_address(&owner),
            owner,
            owner_base: ata(&owner, &grid_mint()),
            owner_quote: ata(&owner, quote_mint),
            base_vault: base_vault(),
            quote_vault: quote_vault(),
            vault_authority: vault_authority(),
            token_program: anchor_spl::token::ID,
        },
        instruction::Withdraw { base, quote },
    )
}

/// `sweep` of `owners`' whole balances to their associated GRID and quote accounts (and the
/// settled orders' rent to their wallets).
pub fn sweep(quote_mint: &Pubkey, owners: &[Pubkey]) -> Instruction {
    let mut ix = anchor_ix(
        trading::ID,
        accounts::Sweep {
            market: market_address(),
            base_vault: base_vault(),
            quote_vault: quote_vault(),
            vault_authority: vault_authority(),
            token_program: anchor_spl::token::ID,
        },
        instruction::Sweep {},
    );
    for owner in owners {
        ix.accounts
            .push(AccountMeta::new(balance_address(owner), false));
        ix.accounts
            .push(AccountMeta::new(ata(owner, &grid_mint()), false));
        ix.accounts
            .push(AccountMeta::new(ata(owner, quote_mint), false));
        ix.accounts.push(AccountMeta::new(*owner, false));
    }
    ix
}
