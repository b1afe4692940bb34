use anchor_lang::prelude::*;

/// Errors of the oracle. The reading errors (from `MeterStateMissing` on) never fail a batch:
/// the reading is skipped with a `ReadingSkipped` event carrying the code, and the rest of
/// the batch applies. Only structural errors (accounts, signatures, domain, sequence) fail
/// the transaction.
#[error_code]
#[derive(PartialEq, Eq)]
pub enum OracleError {
    #[msg("Signer is not the oracle authority")]
    Unauthorized,
    #[msg("At most 8 distinct, non-default attestors; quorum between 1 and their number")]
    InvalidAttestors,
    #[msg("Parameters out of range")]
    InvalidParams,
    #[msg("Signer is not the registry campus's authority")]
    NotCampusAuthority,
    #[msg("The new authority must be a different, non-default key")]
    InvalidAuthority,
    #[msg("Signer is not the proposed new authority")]
    NotPendingAuthority,
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
    #[msg("The batch is for another oracle program, campus or cluster")]
    WrongDomain,
    #[msg("This batch sequence number was already applied")]
    BatchReplayed,
    #[msg("Batch sequence number is beyond the window (BATCH_WINDOW after the last contiguous batch): earlier batches must land first, or governance skips them")]
    BatchOutOfOrder,
    #[msg("Accounts must be (registry meter, meter state) pairs, one per reading")]
    AccountsMismatch,
    #[msg("The meter state accounts are not the ones the attestor signed for")]
    MetersMismatch,
    #[msg("The registry meter account given for a reading is not the meter of its state")]
    MeterAccountMismatch,
    #[msg("A skip must move the sequence forward, by at most MAX_SKIP_BATCHES (1,024)")]
    InvalidSkip,
    #[msg("This meter already has its oracle state")]
    MeterStateExists,
    #[msg("A pause must end after the clock (or be 0, to lift it)")]
    InvalidPause,
    // ---- reading errors: the reading is skipped, the batch applies ----
    #[msg("The meter has no oracle state yet (see init_meter_state)")]
    MeterStateMissing,
    #[msg("The meter is not Active")]
    MeterNotActive,
    #[msg("Reading taken before the meter's current active period (registration or reactivation)")]
    TimestampBeforeActivation,
    #[msg("Reading older than the maximum age")]
    ReadingTooOld,
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
    #[msg("Exported energy exceeds what the meter could deliver in the elapsed time")]
    ImplausibleExport,
    #[msg("Export beyond generation exceeds what the meter's battery could have held")]
    ExportBeyondStorage,
    #[msg("Arithmetic overflow")]
    Overflow,
}
