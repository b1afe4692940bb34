//! IEEE 2030.5 device identity from a certificate (section 6.3). The bridge, the PKI tool,
//! the simulator and the migrations all compute it here; the SFDI rule itself lives with the
//! registry program, which checks it on-chain.
use registry::identity::{sfdi_from_lfdi, Lfdi};
use sha2::{Digest, Sha256};

/// The LFDI: the first 160 bits of SHA-256 over the DER-encoded device certificate.
pub fn lfdi_from_certificate(der: &[u8]) -> Lfdi {
    let digest = Sha256::digest(der);
    let mut lfdi = [0u8; 20];
    lfdi.copy_from_slice(&digest[..20]);
    lfdi
}

/// The SFDI of the certificate's LFDI.
pub fn sfdi_from_certificate(der: &[u8]) -> u64 {
    sfdi_from_lfdi(&lfdi_from_certificate(der))
}

/// Upper-case hex, as IEEE 2030.5 writes an LFDI (HexBinary160).
pub fn lfdi_hex(lfdi: &Lfdi) -> String {
    keeper_protocol::hex::encode(lfdi)
}

/// Parses an LFDI written as 40 hex digits, either case.
pub fn parse_lfdi_hex(text: &str) -> Option<Lfdi> {
    keeper_protocol::hex::decode_array(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfdi_is_the_truncated_sha256_of_the_der() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
        let lfdi = lfdi_from_certificate(b"abc");
        assert_eq!(lfdi_hex(&lfdi), "BA7816BF8F01CFEA414140DE5DAE2223B00361A3");
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let lfdi = lfdi_from_certificate(b"abc");
        assert_eq!(parse_lfdi_hex(&lfdi_hex(&lfdi)), Some(lfdi));
        assert_eq!(parse_lfdi_hex(&lfdi_hex(&lfdi).to_lowercase()), Some(lfdi));
        assert_eq!(parse_lfdi_hex("ZZ"), None);
        assert_eq!(parse_lfdi_hex(&"Z".repeat(40)), None);
        assert_eq!(parse_lfdi_hex(&"é".repeat(20)), None);
    }

    #[test]
    fn sfdi_follows_the_lfdi() {
        let lfdi = lfdi_from_certificate(b"abc");
        assert_eq!(sfdi_from_certificate(b"abc"), sfdi_from_lfdi(&lfdi));
        // 0xBA7816BF8 = 50054917112, digit sum 35, check digit 5.
        assert_eq!(sfdi_from_certificate(b"abc"), 500_549_171_125);
    }
}
