use anchor_lang::prelude::*;

#[error_code]
#[derive(PartialEq, Eq)]
pub enum TradingError {
    #[msg("Signer is not the market authority")]
    Unauthorized,
    #[msg("Signer is not the registry campus's authority")]
    NotCampusAuthority,
    #[msg("The new authority must be a different, non-default key")]
    InvalidAuthority,
    #[msg("Signer is not the proposed new authority")]
    NotPendingAuthority,
    #[msg("Market parameters out of range (interval 60 s to 1 day, tick > 0, bounds on the tick and ordered, fee at most 10 %, 64 to 128 orders per interval)")]
    InvalidParams,
    #[msg("The market is paused: orders and clearing wait; cancelling and withdrawing do not")]
    Paused,
    #[msg("The base mint must be the energy token's GRID mint")]
    WrongBaseMint,
    #[msg("A token account is not of the market's mint, or a vault is not the market's")]
    WrongMint,
    #[msg("Only owners of registered meters hold seats")]
    NotMeterOwner,
    #[msg("This wallet already has a seat")]
    SeatTaken,
    #[msg("Every seat of the market is taken")]
    SeatsFull,
    #[msg("The seat is not the signer's")]
    NotSeatOwner,
    #[msg("Orders may be placed only for the open interval or the next one")]
    IntervalNotOpen,
    #[msg("The limit price is outside the market's bounds")]
    PriceOutOfBounds,
    #[msg("The limit price is not a multiple of the price tick")]
    PriceOffTick,
    #[msg("The quantity is below the market's minimum order or above 1 TWh")]
    InvalidQuantity,
    #[msg("This interval already holds the most orders it can")]
    IntervalFull,
    #[msg("No such order in this interval")]
    UnknownOrder,
    #[msg("Only the order's owner may cancel it")]
    NotOrderOwner,
    #[msg("The order is no longer open")]
    OrderNotOpen,
    #[msg("The interval is already cleared")]
    AlreadyCleared,
    #[msg("The interval has not ended yet")]
    IntervalNotEnded,
    #[msg("The interval is not cleared yet")]
    NotCleared,
    #[msg("More than the seat's claimable balance")]
    InsufficientBalance,
    #[msg("More than the accrued fees")]
    InsufficientFees,
    #[msg("The book account is not this market's book of that interval")]
    WrongBook,
    #[msg("Arithmetic overflow")]
    Overflow,
    #[msg("A pause must end after the clock (or be 0, to lift it)")]
    InvalidPause,
}
