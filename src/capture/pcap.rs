//! The classic libpcap file format (what `tcpdump -w` writes and `tcpdump
//! -r`, Wireshark and every pcap reader take): a 24-byte file header, then
//! per packet a 16-byte record header and the captured bytes. Written in
//! little-endian order; readers tell the order from the magic number.

use std::io::{self, Write};
use std::time::Duration;

/// Ethernet frames (`DLT_EN10MB`).
pub(crate) const LINKTYPE_ETHERNET: u32 = 1;
/// Magic of files with microsecond timestamps.
pub(crate) const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic of files with nanosecond timestamps.
pub(crate) const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Format version 2.4, the only one in use.
const VERSION: (u16, u16) = (2, 4);

/// The resolution of packet timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    Micros,
    Nanos,
}

impl Precision {
    fn magic(self) -> u32 {
        match self {
            Precision::Micros => MAGIC_MICROS,
            Precision::Nanos => MAGIC_NANOS,
        }
    }

    /// The sub-second part of `t` in this resolution.
    fn fraction(self, t: Duration) -> u32 {
        match self {
            Precision::Micros => t.subsec_micros(),
            Precision::Nanos => t.subsec_nanos(),
        }
    }
}

/// The file header: magic, version, time zone and accuracy (both 0),
/// snapshot length, link type.
pub(crate) fn file_header(precision: Precision, snaplen: u32, linktype: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&precision.magic().to_le_bytes());
    h[4..6].copy_from_slice(&VERSION.0.to_le_bytes());
    h[6..8].copy_from_slice(&VERSION.1.to_le_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay 0, as every writer does.
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&linktype.to_le_bytes());
    h
}

/// A record header: seconds and fraction since the Unix epoch, bytes in
/// the file, bytes on the wire. Seconds are 32 bits wide in this format
/// (good until 2106).
pub(crate) fn record_header(
    precision: Precision,
    since_epoch: Duration,
    captured: u32,
    original: u32,
) -> [u8; 16] {
    let mut h = [0u8; 16];
    let seconds = u32::try_from(since_epoch.as_secs()).unwrap_or(u32::MAX);
    h[0..4].copy_from_slice(&seconds.to_le_bytes());
    h[4..8].copy_from_slice(&precision.fraction(since_epoch).to_le_bytes());
    h[8..12].copy_from_slice(&captured.to_le_bytes());
    h[12..16].copy_from_slice(&original.to_le_bytes());
    h
}

/// Writes a pcap stream: the header at once (flushed), then packets. The
/// caller flushes (see [`flush`](Self::flush)) so that a reader at the
/// other end of a pipe sees packets as they come.
#[derive(Debug)]
pub(crate) struct PcapWriter<W: Write> {
    out: W,
    precision: Precision,
    snaplen: u32,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes and flushes the file header for Ethernet frames cut at
    /// `snaplen` bytes.
    pub(crate) fn new(mut out: W, precision: Precision, snaplen: u32) -> io::Result<Self> {
        out.write_all(&file_header(precision, snaplen, LINKTYPE_ETHERNET))?;
        out.flush()?;
        Ok(Self {
            out,
            precision,
            snaplen,
            packets: 0,
        })
    }

    /// Writes one packet seen at `since_epoch`, `original` bytes long on the
    /// wire, of which `data` was captured (cut here at the snapshot length
    /// too).
    pub(crate) fn write_packet(
        &mut self,
        since_epoch: Duration,
        data: &[u8],
        original: usize,
    ) -> io::Result<()> {
        let kept = data.len().min(self.snaplen as usize);
        let original = u32::try_from(original.max(kept)).unwrap_or(u32::MAX);
        let header = record_header(self.precision, since_epoch, kept as u32, original);
        self.out.write_all(&header)?;
        self.out.write_all(&data[..kept])?;
        self.packets += 1;
        Ok(())
    }

    /// Flushes what was written to the underlying writer.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Packets written so far.
    pub(crate) fn packets(&self) -> u64 {
        self.packets
    }

    /// The underlying writer, borrowed.
    #[cfg(test)]
    pub(crate) fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer, borrowed mutably (what is written to it
    /// directly goes into the stream as it is).
    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The underlying writer.
    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_bytes_for_nanosecond_ethernet() {
        let h = file_header(Precision::Nanos, 262_144, LINKTYPE_ETHERNET);
        assert_eq!(
            h,
            [
                0x4d, 0x3c, 0xb2, 0xa1, // magic, nanoseconds, little-endian
                2, 0, 4, 0, // version 2.4
                0, 0, 0, 0, // thiszone
                0, 0, 0, 0, // sigfigs
                0x00, 0x00, 0x04, 0x00, // snaplen 262144
                1, 0, 0, 0, // LINKTYPE_ETHERNET
            ]
        );
    }

    #[test]
    fn microsecond_magic_is_the_classic_one() {
        let h = file_header(Precision::Micros, 65_535, LINKTYPE_ETHERNET);
        assert_eq!(&h[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&h[16..20], &[0xff, 0xff, 0, 0]);
    }

    #[test]
    fn record_header_in_both_precisions() {
        let t = Duration::new(1_700_000_000, 123_456_789);
        let nanos = record_header(Precision::Nanos, t, 60, 60);
        assert_eq!(&nanos[0..4], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&nanos[4..8], &123_456_789u32.to_le_bytes());
        assert_eq!(&nanos[8..12], &60u32.to_le_bytes());
        assert_eq!(&nanos[12..16], &60u32.to_le_bytes());
        let micros = record_header(Precision::Micros, t, 60, 1514);
        assert_eq!(&micros[4..8], &123_456u32.to_le_bytes());
        assert_eq!(&micros[12..16], &1514u32.to_le_bytes());
    }

    #[test]
    fn writer_emits_header_then_records_and_cuts_at_snaplen() {
        let w = PcapWriter::new(Vec::new(), Precision::Micros, 4).expect("header");
        assert_eq!(w.into_inner().len(), 24, "the header alone, at once");

        let mut w = PcapWriter::new(Vec::new(), Precision::Micros, 4).expect("header");
        let t = Duration::new(10, 5_000);
        w.write_packet(t, &[1, 2, 3], 3).expect("write");
        w.write_packet(t, &[1, 2, 3, 4, 5, 6], 1500).expect("write");
        assert_eq!(w.packets(), 2);
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), 24 + (16 + 3) + (16 + 4));
        let first = &bytes[24..24 + 19];
        assert_eq!(&first[0..4], &10u32.to_le_bytes());
        assert_eq!(&first[4..8], &5u32.to_le_bytes());
        assert_eq!(&first[8..12], &3u32.to_le_bytes());
        assert_eq!(&first[12..16], &3u32.to_le_bytes());
        assert_eq!(&first[16..], &[1, 2, 3]);
        let second = &bytes[24 + 19..];
        assert_eq!(&second[8..12], &4u32.to_le_bytes(), "cut at the snaplen");
        assert_eq!(
            &second[12..16],
            &1500u32.to_le_bytes(),
            "length on the wire"
        );
        assert_eq!(&second[16..], &[1, 2, 3, 4]);
    }

    #[test]
    fn the_header_is_flushed_at_once_and_packets_on_flush() {
        let buffered = io::BufWriter::new(Vec::new());
        let mut w = PcapWriter::new(buffered, Precision::Nanos, 100).expect("header");
        assert_eq!(
            w.get_ref().get_ref().len(),
            24,
            "the header reached the reader"
        );
        w.write_packet(Duration::ZERO, &[7; 5], 5).expect("write");
        assert_eq!(w.get_ref().get_ref().len(), 24, "held until flushed");
        w.flush().expect("flush");
        assert_eq!(w.get_ref().get_ref().len(), 24 + 16 + 5);
    }

    #[test]
    fn original_length_is_never_below_what_was_kept() {
        let mut w = PcapWriter::new(Vec::new(), Precision::Nanos, 100).expect("header");
        w.write_packet(Duration::ZERO, &[0; 10], 0).expect("write");
        let bytes = w.into_inner();
        assert_eq!(&bytes[24 + 12..24 + 16], &10u32.to_le_bytes());
    }

    /// A writer whose reader has gone: the error reaches the caller.
    #[derive(Debug)]
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_reader_is_an_error() {
        let err = PcapWriter::new(Closed, Precision::Nanos, 100).expect_err("closed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
