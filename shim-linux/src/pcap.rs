//! `--pcap FILE`: every frame in and out, in classic pcap format
//! (magic `a1b2c3d4`, microsecond timestamps, `LINKTYPE_ETHERNET`).
//!
//! [`PcapFrames`] wraps any [`Frames`]; a capture that cannot be written is
//! reported once and then switched off, never stopping the agent.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

use bmclink_core::platform::{Frames, Nic, Wake};

use crate::private_file::{open_private, Existing, PrivateFileError};
use smoltcp::time::Instant;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest frame kept whole.
pub const SNAPLEN: u32 = 65535;

/// Writes pcap records to `W`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        out.flush()?;
        Ok(PcapWriter { out })
    }

    /// Writes one frame stamped with the wall clock, and flushes so a
    /// capture cut by SIGKILL is still readable up to its last frame.
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = u32::try_from(now.as_secs()).unwrap_or(u32::MAX);
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let kept = len.min(SNAPLEN);
        let mut rec = Vec::with_capacity(16 + frame.len());
        rec.extend_from_slice(&secs.to_le_bytes());
        rec.extend_from_slice(&now.subsec_micros().to_le_bytes());
        rec.extend_from_slice(&kept.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(frame.get(..kept as usize).unwrap_or(frame));
        self.out.write_all(&rec)?;
        self.out.flush()
    }
}

/// A [`Frames`] that copies every frame received and sent to a pcap file.
#[derive(Debug)]
pub struct PcapFrames<F: Frames> {
    inner: F,
    writer: Option<PcapWriter<BufWriter<File>>>,
}

impl<F: Frames> PcapFrames<F> {
    /// Wraps `inner`, creating (truncating) `path` 0600, never through a
    /// symlink ([`crate::private_file`]).
    pub fn create(inner: F, path: &Path) -> io::Result<Self> {
        let file = open_private(path, Existing::Truncate).map_err(|e| match e {
            PrivateFileError::Io { source, .. } => source,
            refused => io::Error::new(io::ErrorKind::PermissionDenied, refused),
        })?;
        Self::with_file(inner, file)
    }

    /// Wraps `inner`, writing to `file` (opened with
    /// [`crate::private_file::open_private`]).
    pub fn with_file(inner: F, file: File) -> io::Result<Self> {
        Ok(PcapFrames {
            inner,
            writer: Some(PcapWriter::new(BufWriter::new(file))?),
        })
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    fn capture(&mut self, frame: &[u8]) {
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.write_frame(frame) {
                eprintln!("bmclink: pcap capture stopped: {e}");
                self.writer = None;
            }
        }
    }
}

impl<F: Frames> Nic for PcapFrames<F> {
    fn mac(&self) -> [u8; 6] {
        self.inner.mac()
    }
    fn link_up(&self) -> bool {
        self.inner.link_up()
    }
}

impl<F: Frames> Frames for PcapFrames<F> {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let n = self.inner.recv(buf)?;
        if let Some(frame) = buf.get(..n) {
            self.capture(frame);
        }
        Some(n)
    }

    fn send(&mut self, frame: &[u8]) {
        self.capture(frame);
        self.inner.send(frame);
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        self.inner.wait(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A wire in memory: frames queued to receive, frames sent kept.
    #[derive(Default)]
    struct Wire {
        rx: VecDeque<Vec<u8>>,
        tx: Vec<Vec<u8>>,
    }

    impl Nic for Wire {
        fn mac(&self) -> [u8; 6] {
            [2, 0, 0, 0, 0, 1]
        }
        fn link_up(&self) -> bool {
            true
        }
    }

    impl Frames for Wire {
        fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
            let f = self.rx.pop_front()?;
            buf[..f.len()].copy_from_slice(&f);
            Some(f.len())
        }
        fn send(&mut self, frame: &[u8]) {
            self.tx.push(frame.to_vec());
        }
        fn wait(&mut self, _deadline: Option<Instant>) -> Wake {
            Wake::Ready
        }
    }

    /// An ARP request: who has 169.254.1.1, tell 169.254.1.2.
    fn arp_request() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 169, 254, 1, 2]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 169, 254, 1, 1]);
        f.resize(60, 0);
        f
    }

    fn capture_in_and_out(path: &Path) {
        let mut wire = Wire::default();
        wire.rx.push_back(arp_request());
        let mut p = PcapFrames::create(wire, path).unwrap();
        p.send(&arp_request());
        let mut buf = [0u8; 1514];
        assert_eq!(p.recv(&mut buf), Some(60));
        assert_eq!(p.recv(&mut buf), None);
        assert_eq!(p.inner().tx.len(), 1);
    }

    #[test]
    fn the_capture_has_a_pcap_header_and_one_record_per_frame() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("cap.pcap");
        capture_in_and_out(&path);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 65535);
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
        assert_eq!(bytes.len(), 24 + 2 * (16 + 60));
        let incl = u32::from_le_bytes(bytes[32..36].try_into().unwrap());
        assert_eq!(incl, 60);
        assert_eq!(&bytes[40..46], &[0xff; 6]);
    }

    #[test]
    fn tshark_reads_the_capture_without_errors() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("cap.pcap");
        capture_in_and_out(&path);
        let out = match std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("skipping the tshark check: tshark is not runnable ({e}); `apt-get install tshark` enables it");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tshark failed: {stderr}");
        assert!(
            !stderr.contains("appears to be damaged") && !stderr.contains("cut short"),
            "{stderr}"
        );
        assert_eq!(stdout.lines().count(), 2, "{stdout}");
        assert!(
            stdout.contains("ARP") && stdout.contains("Who has 169.254.1.1"),
            "{stdout}"
        );
    }
}
