use anchor_lang::prelude::*;

#[error_code]
pub enum RegistryError {
    #[msg("Signer is not the campus authority")]
    Unauthorized,
    #[msg("Signer is not the meter's owner")]
    NotMeterOwner,
    #[msg("Campus name must be 1 to 32 bytes")]
    InvalidCampusName,
    #[msg("LFDI must not be all zeros")]
    InvalidLfdi,
    #[msg("SFDI does not match the one derived from the LFDI (IEEE 2030.5 section 6.3)")]
    SfdiMismatch,
    #[msg("A meter with this LFDI is already registered")]
    MeterAlreadyRegistered,
    #[msg("Capacity out of range: each value at most 1 GW / 1 GWh, and the meter must be able to generate or import")]
    InvalidCapacity,
    #[msg("The campus already holds the maximum number of meters")]
    CampusFull,
    #[msg("The meter already has this status")]
    StatusUnchanged,
    #[msg("A retired meter cannot be changed")]
    MeterRetired,
    #[msg("The new owner is the current owner")]
    SameOwner,
    #[msg("The new authority must be a different, non-default key")]
    InvalidAuthority,
    #[msg("The registry is paused")]
    Paused,
    #[msg("Signer is not the proposed new authority")]
    NotPendingAuthority,
    #[msg("Signer is not the program's upgrade authority (ProgramData of the upgradeable loader)")]
    NotUpgradeAuthority,
    #[msg("A pause must end after the clock (or be 0, to lift it)")]
    InvalidPause,
}
