//! IEEE 2030.5 device identity (section 6.3), shared by the program, the bridge and the keeper.
//!
//! The LFDI is the first 160 bits of SHA-256 over the DER device certificate. The SFDI is the
//! first 36 bits of the LFDI written in decimal, followed by one check digit chosen so that the
//! sum of all digits is a multiple of 10 (this is not the Luhn algorithm).

/// Length of an LFDI in bytes.
pub const LFDI_LEN: usize = 20;

/// An LFDI: the identity of a meter.
pub type Lfdi = [u8; LFDI_LEN];

/// The check digit that makes the digit sum of `value` followed by it a multiple of 10.
pub const fn sfdi_check_digit(mut value: u64) -> u64 {
    let mut sum = 0u64;
    // A 36-bit value has at most 11 decimal digits; the loop is bounded by that.
    while value > 0 {
        sum += value % 10;
        value /= 10;
    }
    (10 - sum % 10) % 10
}

/// The SFDI of an LFDI: 36 leading bits in decimal, then the check digit.
pub const fn sfdi_from_lfdi(lfdi: &Lfdi) -> u64 {
    let leading = ((lfdi[0] as u64) << 28)
        | ((lfdi[1] as u64) << 20)
        | ((lfdi[2] as u64) << 12)
        | ((lfdi[3] as u64) << 4)
        | ((lfdi[4] as u64) >> 4);
    // leading < 2^36, so leading * 10 + 9 < 2^40: no overflow.
    leading * 10 + sfdi_check_digit(leading)
}

/// Whether an SFDI's last digit is the right check digit for the rest.
pub const fn sfdi_is_well_formed(sfdi: u64) -> bool {
    sfdi_check_digit(sfdi / 10) == sfdi % 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_sfdi() {
        // IEEE 2030.5 section 6.3.3: the 36 bits 0x3E4F45AB3 give SFDI 167261211391.
        let mut lfdi = [0u8; LFDI_LEN];
        lfdi[..5].copy_from_slice(&[0x3E, 0x4F, 0x45, 0xAB, 0x30]);
        assert_eq!(sfdi_from_lfdi(&lfdi), 167_261_211_391);
    }

    #[test]
    fn trailing_nibble_and_bytes_do_not_change_sfdi() {
        let mut lfdi = [0xFFu8; LFDI_LEN];
        lfdi[..5].copy_from_slice(&[0x3E, 0x4F, 0x45, 0xAB, 0x3F]);
        assert_eq!(sfdi_from_lfdi(&lfdi), 167_261_211_391);
    }

    #[test]
    fn check_digit_is_digit_sum_not_luhn() {
        // 16726121139: digit sum 39, so the check digit is 1. Luhn would give 6.
        assert_eq!(sfdi_check_digit(16_726_121_139), 1);
        assert_eq!(sfdi_check_digit(0), 0);
        assert_eq!(sfdi_check_digit(55), 0);
        assert_eq!(sfdi_check_digit(1), 9);
    }

    #[test]
    fn largest_sfdi_fits() {
        let lfdi = [0xFFu8; LFDI_LEN];
        // 2^36 - 1 = 68719476735, digit sum 63, check digit 7.
        assert_eq!(sfdi_from_lfdi(&lfdi), 687_194_767_357);
    }

    #[test]
    fn well_formedness() {
        assert!(sfdi_is_well_formed(167_261_211_391));
        assert!(!sfdi_is_well_formed(167_261_211_392));
    }
}
