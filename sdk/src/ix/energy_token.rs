//! Instruction builders and addresses for the energy-token program.
use anchor_lang::prelude::Pubkey;
use energy_token::{accounts, instruction, seeds, RetireRecArgs};
use registry::identity::Lfdi;
use solana_instruction::{AccountMeta, Instruction};

use super::anchor_ix;
use super::oracle::meter_state_address;
use super::registry::{campus_address, meter_address};

fn pda(seeds: &[&[u8]]) -> Pubkey {
    Pubkey::find_program_address(seeds, &energy_token::ID).0
}

pub fn config_address() -> Pubkey {
    pda(&[seeds::CONFIG])
}

pub fn grid_mint() -> Pubkey {
    pda(&[seeds::GRID_MINT])
}

pub fn rec_mint() -> Pubkey {
    pda(&[seeds::REC_MINT])
}

pub fn mint_authority() -> Pubkey {
    pda(&[seeds::MINT_AUTHORITY])
}

pub fn ledger_address(lfdi: &Lfdi) -> Pubkey {
    pda(&[seeds::LEDGER, lfdi])
}

/// The record of `holder`'s retirement `id`.
pub fn retirement_address(holder: &Pubkey, id: u64) -> Pubkey {
    pda(&[seeds::RETIREMENT, holder.as_ref(), &id.to_le_bytes()])
}

/// The SPL Token program, which owns GRID's, the RECs' and the quote token's accounts.
pub const TOKEN_PROGRAM: Pubkey = anchor_spl::token::ID;

/// The associated token account of `owner` for `mint` (SPL Token).
pub fn ata(owner: &Pubkey, mint: &Pubkey) -> Pubkey {
    ata_for(owner, mint, &anchor_spl::token::ID)
}

/// The associated token account of `owner` for `mint` of `token_program`.
pub fn ata_for(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner,
        mint,
        token_program,
    )
}

/// Creates `owner`'s associated token account for `mint` (SPL Token), paid by `payer`;
/// idempotent, so creating an existing one succeeds.
pub fn create_ata(payer: &Pubkey, owner: &Pubkey, mint: &Pubkey) -> Instruction {
    create_ata_for(payer, owner, mint, &anchor_spl::token::ID)
}

/// `create_ata` for a mint of `token_program`.
pub fn create_ata_for(
    payer: &Pubkey,
    owner: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Instruction {
    spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
        payer,
        owner,
        mint,
        token_program,
    )
}

pub fn initialize(authority: Pubkey) -> Instruction {
    anchor_ix(
        energy_token::ID,
        accounts::InitializeEnergyToken {
            config: config_address(),
            grid_mint: grid_mint(),
            rec_mint: rec_mint(),
            mint_authority: mint_authority(),
            campus: campus_address(),
            authority,
            token_program: anchor_spl::token::ID,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::InitializeEnergyToken {},
    )
}

fn admin(authority: Pubkey) -> accounts::TokenAdmin {
    accounts::TokenAdmin {
        config: config_address(),
        authority,
    }
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
        energy_token::ID,
        admin(authority),
        instruction::SetPaused { paused_until },
    )
}

pub fn propose_authority(authority: Pubkey, new_authority: Pubkey) -> Instruction {
    anchor_ix(
        energy_token::ID,
        admin(authority),
        instruction::ProposeAuthority { new_authority },
    )
}

pub fn accept_authority(new_authority: Pubkey) -> Instruction {
    anchor_ix(
        energy_token::ID,
        accounts::AcceptTokenAuthority {
            config: config_address(),
            new_authority,
        },
        instruction::AcceptAuthority {},
    )
}

pub fn init_ledger(payer: Pubkey, lfdi: &Lfdi) -> Instruction {
    anchor_ix(
        energy_token::ID,
        accounts::InitLedger {
            meter: meter_address(lfdi),
            ledger: ledger_address(lfdi),
            payer,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::InitLedger {},
    )
}

/// The four accounts of one meter in `mint_generation` / `issue_rec`.
pub fn meter_group(lfdi: &Lfdi, owner_tokens: Pubkey) -> [AccountMeta; 4] {
    [
        AccountMeta::new_readonly(meter_address(lfdi), false),
        AccountMeta::new_readonly(meter_state_address(lfdi), false),
        AccountMeta::new(ledger_address(lfdi), false),
        AccountMeta::new(owner_tokens, false),
    ]
}

/// `mint_generation` for meters `(lfdi, owner)`, minting to each owner's GRID ATA.
pub fn mint_generation(meters: &[(Lfdi, Pubkey)]) -> Instruction {
    let mut ix = anchor_ix(
        energy_token::ID,
        accounts::MintGeneration {
            config: config_address(),
            grid_mint: grid_mint(),
            mint_authority: mint_authority(),
            token_program: anchor_spl::token::ID,
        },
        instruction::MintGeneration {},
    );
    for (lfdi, owner) in meters {
        ix.accounts
            .extend(meter_group(lfdi, ata(owner, &grid_mint())));
    }
    ix
}

/// `issue_rec` for meters `(lfdi, owner)`, issuing to each owner's REC ATA.
pub fn issue_rec(meters: &[(Lfdi, Pubkey)]) -> Instruction {
    let mut ix = anchor_ix(
        energy_token::ID,
        accounts::IssueRec {
            config: config_address(),
            rec_mint: rec_mint(),
            mint_authority: mint_authority(),
            token_program: anchor_spl::token::ID,
        },
        instruction::IssueRec {},
    );
    for (lfdi, owner) in meters {
        ix.accounts
            .extend(meter_group(lfdi, ata(owner, &rec_mint())));
    }
    ix
}

pub fn redeem_for_consumption(lfdi: &Lfdi, owner: Pubkey, amount: u64) -> Instruction {
    anchor_ix(
        energy_token::ID,
        accounts::RedeemForConsumption {
            config: config_address(),
            grid_mint: grid_mint(),
            meter: meter_address(lfdi),
            meter_state: meter_state_address(lfdi),
            ledger: ledger_address(lfdi),
            owner_grid: ata(&owner, &grid_mint()),
            owner,
            token_program: anchor_spl::token::ID,
        },
        instruction::RedeemForConsumption { amount },
    )
}

/// The `read_retirement` view (simulate it; the record comes back as return data).
pub fn read_retirement(holder: &Pubkey, id: u64) -> Instruction {
    anchor_ix(
        energy_token::ID,
        accounts::ReadRetirement {
            retirement: retirement_address(holder, id),
        },
        instruction::ReadRetirement {},
    )
}

pub fn retire_rec(
    holder: Pubkey,
    id: u64,
    amount: u64,
    beneficiary: &str,
    reason: &str,
) -> Instruction {
    anchor_ix(
        energy_token::ID,
        accounts::RetireRec {
            config: config_address(),
            rec_mint: rec_mint(),
            holder_recs: ata(&holder, &rec_mint()),
            holder,
            retirement: retirement_address(&holder, id),
            token_program: anchor_spl::token::ID,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::RetireRec {
            args: RetireRecArgs {
                id,
                amount,
                beneficiary: beneficiary.into(),
                reason: reason.into(),
            },
        },
    )
}
