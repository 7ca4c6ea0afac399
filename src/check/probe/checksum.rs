//! The Internet checksum (RFC 1071), for ICMPv4 (the kernel computes the
//! ICMPv6 one, which covers a pseudo-header, itself).

/// The one's complement of the one's complement sum of 16-bit big-endian
/// words; an odd last byte is padded with zero.
pub(crate) fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when `data`, checksum field included, sums to all ones.
pub(crate) fn verifies(data: &[u8]) -> bool {
    internet_checksum(data) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071, section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2
        // (with end-around carries); the checksum is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
        assert_eq!(internet_checksum(&[0x12, 0x34, 0x56]), !(0x1234 + 0x5600));
    }

    #[test]
    fn a_packet_with_its_checksum_verifies() {
        // An echo request as ping sends it: type 8, code 0, id 0x1234, seq 1.
        let mut packet = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c'];
        let sum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert!(verifies(&packet));
        packet[8] ^= 1;
        assert!(!verifies(&packet));
    }

    #[test]
    fn all_zero_and_carry_wrap() {
        assert_eq!(internet_checksum(&[]), 0xffff);
        assert_eq!(internet_checksum(&[0xff, 0xff, 0x00, 0x01]), !0x0001);
    }
}
