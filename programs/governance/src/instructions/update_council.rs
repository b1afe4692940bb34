use anchor_lang::prelude::*;

use crate::events::CouncilConfigured;
use crate::state::{seeds, Council, CouncilConfig};

/// Replaces the council's members, guardians, threshold, timelock and guardian-pause rules. Only the governance
/// authority for this program signs this, so it runs only from an executed proposal.
#[derive(Accounts)]
pub struct UpdateCouncil<'info> {
    #[account(mut, seeds = [seeds::COUNCIL], bump = council.bump)]
    pub council: Account<'info, Council>,
    #[account(seeds = [seeds::AUTHORITY, crate::ID.as_ref()], bump)]
    pub governance_authority: Signer<'info>,
}

pub fn handler(ctx: Context<UpdateCouncil>, config: CouncilConfig) -> Result<()> {
    config.validate()?;
    let now = Clock::get()?.unix_timestamp;
    ctx.accounts.council.apply(config.clone(), now);
    program_common::emit_event!(CouncilConfigured {
        members: config.members,
        guardians: config.guardians,
        threshold: config.threshold,
        timelock_seconds: config.timelock_seconds,
        max_guardian_pause_s: config.max_guardian_pause_s,
        guardian_cooldown_s: config.guardian_cooldown_s,
    });
    Ok(())
}
