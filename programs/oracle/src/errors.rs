use anchor_lang::prelude::*;

#[error_code]
pub enum OracleError {
    #[msg("Signer is not the oracle authority")]
    Unauthorized,
    #[msg("At most 8 distinct, non-default attestors; quorum between 1 and their number")]
    InvalidAttestors,
    #[msg("Parameters out of range")]
    InvalidParams,
    #[msg("The campus account is not the registry's campus")]
    InvalidCampus,
    #[msg("The new authority must be a different, non-default key")]
    InvalidAuthority,
    #[msg("The oracle is paused")]
    Paused,
    #[msg("The given instruction is not an Ed25519 program instruction")]
    NotEd25519Instruction,
    #[msg("The Ed25519 instruction is malformed")]
    MalformedEd25519,
    #[msg("An Ed25519 offset points outside its own instruction")]
    Ed25519OffsetsSpoofed,
    #[msg("The Ed25519 signatures are not all over the same message")]
    MessageMismatch,
    #[msg("A signature is by a key that is not an authorised attestor")]
    UnknownAttestor,
    #[msg("Fewer distinct attestor signatures than the quorum")]
    QuorumNotMet,
    #[msg("The signed message is not a well-formed reading batch")]
    MalformedBatch,
    #[msg("The batch is for another oracle program")]
    WrongProgram,
    #[msg("The batch is for another campus")]
    WrongCampus,
    #[msg("This batch sequence number was already applied")]
    BatchReplayed,
    #[msg("Batch sequence number skips ahead; earlier batches must be applied first")]
    BatchOutOfOrder,
    #[msg("Accounts must be (registry meter, meter state) pairs in the batch's order")]
    AccountsMismatch,
    #[msg("A reading's meter is not a registered meter")]
    MeterNotRegistered,
    #[msg("A reading's meter index differs from the registered meter's")]
    MeterIndexMismatch,
    #[msg("A reading's meter is not Active")]
    MeterNotActive,
    #[msg("The account given for a meter's state is not its oracle state (see init_meter_state)")]
    MeterStateMissing,
    #[msg("This meter already has its oracle state")]
    MeterStateExists,
    #[msg("Reading timestamp is not after the meter's last reading")]
    TimestampNotIncreasing,
    #[msg("Reading timestamp is too far in the future")]
    TimestampInFuture,
    #[msg("Readings of a meter are closer together than the minimum interval")]
    IntervalTooShort,
    #[msg("A cumulative counter went down")]
    CounterDecreased,
    #[msg("Imported energy exceeds what the meter could draw in the elapsed time")]
    ImplausibleImport,
    #[msg("Exported energy exceeds what the meter could produce in the elapsed time")]
    ImplausibleExport,
    #[msg("Arithmetic overflow")]
    Overflow,
}
