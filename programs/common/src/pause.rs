//! The pause every GridTokenX program shares: a program is paused until a Unix time
//! (`paused_until`), so that a pause can end by itself.
//!
//! `set_paused(paused_until)` (the same instruction in every program, signed by the
//! program's authority: governance) sets it: 0 lifts the pause; a time after the clock
//! pauses until then, [`INDEFINITELY`] until lifted. A pause is only ever lengthened by a
//! time: a guardian's pause, which governance sets to lapse after the council's
//! `max_guardian_pause_s`, cannot cut short a pause the council voted, and only the council
//! (with 0) lifts one early.

/// Paused until lifted.
pub const INDEFINITELY: i64 = i64::MAX;

/// Whether a program paused until `paused_until` is paused at `now`.
pub fn is_paused(paused_until: i64, now: i64) -> bool {
    now < paused_until
}

/// The pause after `set_paused(requested)` on `current` at `now`; `None` for a time that is
/// not after the clock (nothing to pause).
pub fn next(current: i64, requested: i64, now: i64) -> Option<i64> {
    match requested {
        0 => Some(0),
        t if t <= now => None,
        t if is_paused(current, now) => Some(current.max(t)),
        t => Some(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_ends_by_itself_at_its_time() {
        assert!(!is_paused(0, 100));
        assert!(is_paused(200, 100));
        assert!(is_paused(200, 199));
        assert!(!is_paused(200, 200));
        assert!(is_paused(INDEFINITELY, i64::MAX - 1));
    }

    #[test]
    fn a_pause_is_lengthened_never_shortened_and_lifted_with_zero() {
        // Not paused: any later time.
        assert_eq!(next(0, 500, 100), Some(500));
        // Paused until 500: a shorter pause keeps 500, a longer one extends it.
        assert_eq!(next(500, 300, 100), Some(500));
        assert_eq!(next(500, 900, 100), Some(900));
        assert_eq!(next(INDEFINITELY, 300, 100), Some(INDEFINITELY));
        // An expired pause is no pause: the new time applies.
        assert_eq!(next(150, 300, 200), Some(300));
        // Zero lifts whatever there is.
        assert_eq!(next(INDEFINITELY, 0, 100), Some(0));
        // A time not after the clock pauses nothing.
        assert_eq!(next(0, 100, 100), None);
        assert_eq!(next(0, 1, 100), None);
    }
}
