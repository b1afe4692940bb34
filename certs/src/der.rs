//! The few DER structures rcgen has no typed API for (rcgen#370), and base64 for PEM.

fn len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// An OBJECT IDENTIFIER.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let first = arcs[0] * 40 + arcs[1];
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        let mut chunk = vec![(arc & 0x7F) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(0x80 | (rest & 0x7F) as u8);
            rest >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    tlv(0x06, &body)
}

/// certificatePolicies ::= SEQUENCE OF PolicyInformation (policyIdentifier only).
pub fn certificate_policies(policies: &[&[u64]]) -> Vec<u8> {
    let infos: Vec<u8> = policies.iter().flat_map(|p| tlv(0x30, &oid(p))).collect();
    tlv(0x30, &infos)
}

/// subjectAltName holding one otherName HardwareModuleName { hwType, hwSerialNum }.
pub fn hardware_module_name_san(type_id: &[u64], hw_type: &[u64], serial: &[u8]) -> Vec<u8> {
    let module = tlv(0x30, &[oid(hw_type), tlv(0x04, serial)].concat());
    // otherName is [0] (implicit, constructed) { type-id, [0] EXPLICIT value }.
    let other_name = tlv(0xA0, &[oid(type_id), tlv(0xA0, &module)].concat());
    tlv(0x30, &other_name)
}

/// Standard base64 (RFC 4648) without line breaks; `None` on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="))
        .unwrap_or(&bytes);
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in trimmed {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding_matches_known_bytes() {
        // 2.5.29.32 (certificatePolicies)
        assert_eq!(oid(&[2, 5, 29, 32]), vec![0x06, 0x03, 0x55, 0x1D, 0x20]);
        // 1.3.6.1.4.1.40732.1.1: 40732 = 0x9F1C -> 0x82 0xBE 0x1C
        assert_eq!(
            oid(&[1, 3, 6, 1, 4, 1, 40732, 1, 1]),
            vec![0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0xBE, 0x1C, 0x01, 0x01]
        );
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn base64_decodes_padding_and_refuses_garbage() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert_eq!(base64_decode("T Q\n=="), Some(b"M".to_vec()));
        assert_eq!(base64_decode("T*=="), None);
    }
}
