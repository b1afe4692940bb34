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
    #[msg("Market parameters out of range (interval 60 s to 1 day, tick > 0, 1 to 512 ladder steps, fee at most 10 %, horizon 1 to 7, gate lead at most horizon - 1 intervals)")]
    InvalidParams,
    #[msg("The market is paused: orders and clearing wait; cancelling, settling and withdrawing do not")]
    Paused,
    #[msg("A token account is not of the market's mint, or a vault is not the market's")]
    WrongMint,
    #[msg("Only the meter's current owner trades for its building")]
    NotMeterOwner,
    #[msg("The meter is not Active: it cannot place orders")]
    MeterNotActive,
    #[msg("The interval's gate has closed: its orders are final")]
    GateClosed,
    #[msg("Orders may be placed at most the market's horizon ahead of the open interval")]
    BeyondHorizon,
    #[msg("The limit price is outside the interval's ladder")]
    PriceOutOfBounds,
    #[msg("The limit price is not on the interval's ladder (a multiple of the tick above the minimum)")]
    PriceOffTick,
    #[msg("The quantity is below the market's minimum order")]
    InvalidQuantity,
    #[msg("The quantity is more than the building's meter can deliver (sell) or draw (buy) in an interval")]
    OverCapacity,
    #[msg("The same owner cannot buy and sell in one interval")]
    SelfTrade,
    #[msg("This building's order on this side was placed by its previous owner: evict it (evict_order) before the gate, or it settles to them")]
    OrderOfPreviousOwner,
    #[msg("No such order")]
    UnknownOrder,
    #[msg("Only the order's owner may cancel it")]
    NotOrderOwner,
    #[msg("The interval has no book yet (see open_interval)")]
    BookNotOpen,
    #[msg("The interval's book is already open")]
    BookAlreadyOpen,
    #[msg("The interval is already cleared")]
    AlreadyCleared,
    #[msg("The interval's gate has not closed yet")]
    GateNotClosed,
    #[msg("Intervals clear in order: clear the market's next interval first")]
    ClearOutOfOrder,
    #[msg("The interval is not cleared yet")]
    NotCleared,
    #[msg("The interval still has orders to settle")]
    OrdersOutstanding,
    #[msg("More than the claimable balance")]
    InsufficientBalance,
    #[msg("More than the accrued fees or dust")]
    InsufficientFees,
    #[msg("The book account is not this market's book of that interval")]
    WrongBook,
    #[msg("The balance account is not the order owner's")]
    WrongBalance,
    #[msg("Arithmetic overflow")]
    Overflow,
    #[msg("A pause must end after the clock (or be 0, to lift it)")]
    InvalidPause,
    #[msg("The interval length cannot change: it numbers the intervals")]
    IntervalLengthFixed,
    #[msg("This building already has an order on the other side of this interval")]
    BuildingOnBothSides,
    #[msg("Only an order placed by the meter's previous owner can be evicted (cancel your own)")]
    NotEvictable,
    #[msg("A delegate must be a key other than the owner's and not the default key")]
    InvalidDelegate,
    #[msg("The signer is not this building's order delegate")]
    NotDelegate,
    #[msg("The delegation was given by the meter's previous owner: the owner now must authorise a delegate")]
    DelegationLapsed,
    #[msg("The owner's token account has not approved the market's vault authority for enough to lock this order's escrow (SPL approve)")]
    AllowanceTooLow,
    #[msg("Only the delegation's owner or the meter's owner now may revoke it (and its lamports go back to the delegation's owner)")]
    NotDelegationOwner,
    #[msg("The building has a delegation its previous owner gave: revoke it first (its rent float goes back to them)")]
    DelegationOfPreviousOwner,
    #[msg("The delegation's rent float cannot pay the order's rent: its owner tops it up (authorize_delegate with a rent float)")]
    RentFloatExhausted,
}
