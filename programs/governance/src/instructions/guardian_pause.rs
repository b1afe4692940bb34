use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
use anchor_lang::solana_program::program::invoke_signed;

use crate::errors::GovernanceError;
use crate::events::GuardianPaused;
use crate::state::{seeds, Council};

/// The programs a guardian may pause: a guardian's power ends at the GridTokenX programs.
pub fn pausable_programs() -> [Pubkey; 4] {
    [registry::ID, oracle::ID, energy_token::ID, trading::ID]
}

/// Anchor discriminator of `set_paused`, the instruction every GridTokenX program shares
/// with the account list `[config (writable), authority (signer)]`.
pub const SET_PAUSED_DISCRIMINATOR: [u8; 8] = {
    let d = registry::instruction::SetPaused::DISCRIMINATOR;
    [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
};

/// Any single guardian pauses a GridTokenX program at once, for the council's
/// `max_guardian_pause_s`: the pause lapses by itself unless a proposal extends it (or lifts
/// it sooner). The same guardian may pause the same program again only after the council's
/// `guardian_cooldown_s`, so no guardian alone can keep a program halted.
#[derive(Accounts)]
pub struct GuardianPause<'info> {
    #[account(mut, seeds = [seeds::COUNCIL], bump = council.bump)]
    pub council: Account<'info, Council>,
    pub guardian: Signer<'info>,
    /// CHECK: the governance authority for the target program; signs the CPI.
    #[account(seeds = [seeds::AUTHORITY, target_program.key().as_ref()], bump)]
    pub governance_authority: UncheckedAccount<'info>,
    /// CHECK: checked against `pausable_programs` in `validate`.
    pub target_program: UncheckedAccount<'info>,
    /// CHECK: the target program's config account; the target checks its owner, seeds and
    /// that its authority is the governance authority.
    #[account(mut)]
    pub target_config: UncheckedAccount<'info>,
}

impl GuardianPause<'_> {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.council.is_guardian(&self.guardian.key()),
            GovernanceError::NotGuardian
        );
        require!(
            pausable_programs().contains(self.target_program.key),
            GovernanceError::NotPausable
        );
        Ok(())
    }
}

pub fn handler(ctx: Context<GuardianPause>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let guardian = ctx.accounts.guardian.key();
    let target = ctx.accounts.target_program.key();
    let paused_until = ctx
        .accounts
        .council
        .record_guardian_pause(guardian, target, now)?;
    let a = &ctx.accounts;
    let mut data = SET_PAUSED_DISCRIMINATOR.to_vec();
    data.extend_from_slice(&paused_until.to_le_bytes());
    let instruction = Instruction {
        program_id: a.target_program.key(),
        accounts: vec![
            AccountMeta::new(a.target_config.key(), false),
            AccountMeta::new_readonly(a.governance_authority.key(), true),
        ],
        data,
    };
    let bump = [ctx.bumps.governance_authority];
    invoke_signed(
        &instruction,
        &[
            a.target_config.to_account_info(),
            a.governance_authority.to_account_info(),
            a.target_program.to_account_info(),
        ],
        &[&[seeds::AUTHORITY, target.as_ref(), &bump]],
    )?;
    program_common::emit_event!(GuardianPaused {
        guardian,
        program_id: target,
        config: a.target_config.key(),
        paused_until,
    });
    Ok(())
}
