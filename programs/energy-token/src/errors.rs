use anchor_lang::prelude::*;

/// Errors of the energy-token program. The per-meter ones (from `MeterNotActive` on) never
/// fail a `mint_generation` or `issue_rec`: the meter is skipped with an event naming the
/// reason and the others are minted.
#[error_code]
#[derive(PartialEq, Eq)]
pub enum TokenError {
    #[msg("Signer is not the energy-token authority")]
    Unauthorized,
    #[msg("Signer is not the registry campus's authority")]
    NotCampusAuthority,
    #[msg("The new authority must be a different, non-default key")]
    InvalidAuthority,
    #[msg("Signer is not the proposed new authority")]
    NotPendingAuthority,
    #[msg("Minting and REC issuance are paused")]
    Paused,
    #[msg(
        "Accounts must come in groups of four per meter: meter, meter state, ledger, token account"
    )]
    AccountsMismatch,
    #[msg("The meter state, ledger or meter account does not belong to the same meter")]
    MeterMismatch,
    #[msg("This meter already has its ledger")]
    LedgerExists,
    #[msg("Signer is not the meter's registered owner")]
    NotMeterOwner,
    #[msg("Redemption would cover more than the meter's verified import not yet covered")]
    RedemptionExceedsImport,
    #[msg("Amount must be positive")]
    ZeroAmount,
    #[msg("Beneficiary must be 1 to 64 bytes and reason 1 to 128 bytes of UTF-8")]
    InvalidRetirementText,
    #[msg("The ledger records more than the oracle verified")]
    LedgerAhead,
    #[msg("Arithmetic overflow")]
    Overflow,
    // ---- per-meter reasons for skipping (never fail the batch) ----
    #[msg("The meter is not Active: suspended meters mint nothing until reactivated, retired ones never again")]
    MeterNotActive,
    #[msg("The token account is not the meter owner's account of this mint")]
    WrongTokenAccount,
    #[msg("A pause must end after the clock (or be 0, to lift it)")]
    InvalidPause,
    #[msg("This holder has a retirement with this id already: choose another id")]
    RetirementIdUsed,
}
