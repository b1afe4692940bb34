//! The four accounts `mint_generation` and `issue_rec` take for each meter, and their
//! checks: the registry `Meter` (who owns it, is it Active), its oracle `MeterState` (how
//! much was verified), its `MeterLedger` (how much was already drawn) and the owner's token
//! account of the mint being issued.
use anchor_lang::prelude::*;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::{self, spl_token};
use oracle::MeterState;
use program_common::zero_copy;
use registry::Meter;

use crate::errors::TokenError;
use crate::state::MeterLedger;

/// Accounts per meter.
pub const GROUP: usize = 4;

/// The checks both issuing instructions make before any meter: the program is not paused,
/// and the remaining accounts are whole groups, at least one.
pub fn validate_call(config: &crate::state::TokenConfig, remaining: &[AccountInfo]) -> Result<()> {
    require!(
        !config.is_paused(Clock::get()?.unix_timestamp),
        TokenError::Paused
    );
    require!(
        !remaining.is_empty() && remaining.len() % GROUP == 0,
        TokenError::AccountsMismatch
    );
    Ok(())
}

/// What the oracle verified of a meter, as the issuing instructions draw on it.
pub struct Verified {
    pub export_wh: u64,
    /// Of the export, what was renewable (RECs certify only this).
    pub renewable_wh: u64,
}

/// A meter ready to be issued to.
pub struct Group<'a, 'info> {
    pub meter: Meter,
    pub verified: Verified,
    pub ledger: &'a AccountInfo<'info>,
    pub tokens: &'a AccountInfo<'info>,
}

pub enum Checked<'a, 'info> {
    Ready(Group<'a, 'info>),
    /// Left out, with the reason; the others go on.
    Skip([u8; 20], TokenError),
}

/// Whether `info` is an initialised SPL Token account of `mint` owned by `owner`.
fn is_token_account_of(info: &AccountInfo, mint: &Pubkey, owner: &Pubkey) -> bool {
    if *info.owner != token::ID || !info.is_writable {
        return false;
    }
    let Ok(data) = info.try_borrow_data() else {
        return false;
    };
    match spl_token::state::Account::unpack(&data) {
        Ok(account) => account.mint == *mint && account.owner == *owner,
        Err(_) => false,
    }
}

/// Checks one group. Accounts that are not the meter's own (another meter's state or
/// ledger, a forged account) fail the whole call: only the keeper chooses them. A meter that
/// is not Active, or whose owner has no account of `mint` (closed, say), is skipped.
pub fn check<'a, 'info>(
    accounts: &'a [AccountInfo<'info>],
    mint: &Pubkey,
) -> Result<Checked<'a, 'info>> {
    let [meter, state, ledger, tokens] = accounts else {
        return err!(TokenError::AccountsMismatch);
    };
    // Owner and discriminator are enough for each (see `Meter::load_checked`,
    // `MeterState::load_checked`); the LFDIs inside must all be the same meter's.
    let meter = Meter::load_checked(meter).map_err(|_| TokenError::MeterMismatch)?;
    let state =
        MeterState::load_checked(state, &meter.lfdi).map_err(|_| TokenError::MeterMismatch)?;
    let recorded = zero_copy::read::<MeterLedger>(ledger).map_err(|_| TokenError::MeterMismatch)?;
    require!(recorded.lfdi == meter.lfdi, TokenError::MeterMismatch);
    require!(ledger.is_writable, TokenError::AccountsMismatch);
    if !meter.is_active() {
        return Ok(Checked::Skip(meter.lfdi, TokenError::MeterNotActive));
    }
    if !is_token_account_of(tokens, mint, &meter.owner) {
        return Ok(Checked::Skip(meter.lfdi, TokenError::WrongTokenAccount));
    }
    Ok(Checked::Ready(Group {
        meter,
        verified: Verified {
            export_wh: state.verified_export_wh,
            renewable_wh: state.verified_renewable_wh,
        },
        ledger,
        tokens,
    }))
}

/// The mint an issuing instruction (`mint_generation`, `issue_rec`) mints from, and the
/// authority PDA that signs for it.
pub struct Issuer<'a, 'info> {
    pub mint: &'a AccountInfo<'info>,
    pub authority: &'a AccountInfo<'info>,
    /// The `["mint_authority"]` PDA's bump.
    pub authority_bump: u8,
    pub token_program: Pubkey,
}

/// What is due to one meter: the amount to mint now (0 for nothing), and the running total
/// its event reports.
pub struct Due {
    pub amount: u64,
    pub total: u64,
}

/// The issuing steps both instructions share, over every group of `remaining`: a skipped
/// meter gets a `MeterSkipped` event and the others go on; for a ready one, `record` updates
/// its ledger and says what is due, which is minted to the owner's account and announced by
/// `announce` (its event). Returns the total minted.
pub fn issue_to_each<'info>(
    remaining: &[AccountInfo<'info>],
    issuer: &Issuer<'_, 'info>,
    mut record: impl FnMut(&Group<'_, 'info>) -> Result<Due>,
    mut announce: impl FnMut(&Group<'_, 'info>, &Due),
) -> Result<u64> {
    let bump = [issuer.authority_bump];
    let signer: &[&[u8]] = &[crate::state::seeds::MINT_AUTHORITY, &bump];
    let mint = issuer.mint.key();
    let mut issued = 0u64;
    for accounts in remaining.chunks(GROUP) {
        let group = match check(accounts, &mint)? {
            Checked::Ready(group) => group,
            Checked::Skip(lfdi, reason) => {
                program_common::emit_event!(crate::events::MeterSkipped {
                    lfdi,
                    reason: reason.into()
                });
                continue;
            }
        };
        let due = record(&group)?;
        if due.amount == 0 {
            continue;
        }
        token::mint_to(
            CpiContext::new_with_signer(
                issuer.token_program,
                token::MintTo {
                    mint: issuer.mint.clone(),
                    to: group.tokens.clone(),
                    authority: issuer.authority.clone(),
                },
                &[signer],
            ),
            due.amount,
        )?;
        issued = issued.checked_add(due.amount).ok_or(TokenError::Overflow)?;
        announce(&group, &due);
    }
    Ok(issued)
}
