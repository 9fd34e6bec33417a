//! A simulated BMC at the far end of QEMU's `ipmi-bmc-extern` device: the
//! VM's kernel talks KCS to QEMU's `isa-ipmi-kcs`, QEMU forwards every
//! request over a chardev (here a TCP socket on loopback) in the "VM"
//! framing of OpenIPMI's lanserv (`lanserv/README.vm`, QEMU's
//! `hw/ipmi/ipmi_bmc_extern.c`), and this BMC answers from its state.
//!
//! # The framing
//!
//! A message is `msgid, netfn << 2 | lun, cmd, data.., checksum` followed by
//! 0xA0; the checksum makes the bytes before 0xA0 sum to 0 (mod 256). A
//! response has the same shape with the response NetFn and the completion
//! code first in the data. A control command (version, capabilities, attention,
//! power) is its bytes followed by 0xA1. 0xA0, 0xA1 and 0xAA inside either are
//! sent as 0xAA and the byte with bit 4 set.
//!
//! # The BMC
//!
//! It answers what the kernel's `ipmi_si`/`ipmi_msghandler` probe sends at
//! boot (Get Device ID, Get Device GUID, Get/Set BMC Global Enables,
//! Get/Clear Message Flags, Read Event Message Buffer, Get Self Test
//! Results; anything else gets 0xC1),
//! and DSP0270 "Get Bootstrap Account Credentials" from its bootstrap state:
//! a new account per request while enabled, 0x80 once disabled. A script of
//! [`Fault`]s replaces the answer to the next bootstrap requests (legacy
//! firmware's 0xC1, silence, garbage) so that one VM boot covers the error
//! paths. Everything the BMC received is logged for the test.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// End of a message.
pub const VM_MSG_CHAR: u8 = 0xA0;
/// End of a control command.
pub const VM_CMD_CHAR: u8 = 0xA1;
/// The next byte has bit 4 set and stands for 0xA0, 0xA1 or 0xAA.
pub const VM_ESCAPE_CHAR: u8 = 0xAA;
/// Control command: the protocol version follows.
pub const VM_CMD_VERSION: u8 = 0xFF;
/// Control command: the capabilities byte follows.
pub const VM_CMD_CAPABILITIES: u8 = 0x08;
/// Control command (BMC to QEMU): power the VM off at once.
pub const VM_CMD_FORCEOFF: u8 = 0x09;

/// The longest message QEMU passes (`MAX_IPMI_MSG_SIZE`) plus msgid and checksum.
const MAX_FRAME: usize = 300 + 2;

/// One decoded unit of the stream from QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A request: message id, NetFn (shifted down), LUN, command, data.
    Request {
        /// QEMU's message id, echoed in the response.
        msgid: u8,
        /// The request NetFn.
        netfn: u8,
        /// The LUN.
        lun: u8,
        /// The command.
        cmd: u8,
        /// The request data.
        data: Vec<u8>,
    },
    /// A control command (its bytes, unescaped).
    Control(Vec<u8>),
    /// A message whose checksum did not add up, or too short (dropped, as
    /// QEMU drops them).
    Bad(Vec<u8>),
}

/// The receive side of the framing: bytes in, [`Frame`]s out.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    escape: bool,
    overflow: bool,
}

impl Deframer {
    /// Feeds bytes; returns the frames they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                VM_MSG_CHAR => {
                    let raw = std::mem::take(&mut self.buf);
                    let bad = self.escape || self.overflow;
                    self.escape = false;
                    self.overflow = false;
                    out.push(if bad {
                        Frame::Bad(raw)
                    } else {
                        parse_request(raw)
                    });
                }
                VM_CMD_CHAR => {
                    let raw = std::mem::take(&mut self.buf);
                    let bad = self.escape || self.overflow;
                    self.escape = false;
                    self.overflow = false;
                    if !bad && !raw.is_empty() {
                        out.push(Frame::Control(raw));
                    }
                }
                VM_ESCAPE_CHAR => self.escape = true,
                mut b => {
                    if self.escape {
                        b &= !0x10;
                        self.escape = false;
                    }
                    if self.buf.len() >= MAX_FRAME {
                        self.overflow = true;
                    } else {
                        self.buf.push(b);
                    }
                }
            }
        }
        out
    }
}

fn parse_request(raw: Vec<u8>) -> Frame {
    let sum = raw.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    match raw.as_slice() {
        [msgid, netfn_lun, cmd, data @ .., _csum] if sum == 0 => Frame::Request {
            msgid: *msgid,
            netfn: netfn_lun >> 2,
            lun: netfn_lun & 3,
            cmd: *cmd,
            data: data.to_vec(),
        },
        _ => Frame::Bad(raw),
    }
}

fn escape_into(out: &mut Vec<u8>, b: u8) {
    if matches!(b, VM_MSG_CHAR | VM_CMD_CHAR | VM_ESCAPE_CHAR) {
        out.push(VM_ESCAPE_CHAR);
        out.push(b | 0x10);
    } else {
        out.push(b);
    }
}

/// Frames a message (`msgid` and `body` = NetFn/LUN byte, command, data):
/// escaped, checksummed, ended by 0xA0.
pub fn frame_message(msgid: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * body.len() + 4);
    let mut sum = msgid;
    escape_into(&mut out, msgid);
    for &b in body {
        sum = sum.wrapping_add(b);
        escape_into(&mut out, b);
    }
    escape_into(&mut out, sum.wrapping_neg());
    out.push(VM_MSG_CHAR);
    out
}

/// Frames a control command, ended by 0xA1.
pub fn frame_control(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        escape_into(&mut out, b);
    }
    out.push(VM_CMD_CHAR);
    out
}

/// What replaces the BMC's answer to one bootstrap request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer from the state (an account, or 0x80 once disabled).
    None,
    /// 0xC1: the firmware does not implement DSP0270.
    NotImplemented,
    /// No answer at all (QEMU answers 0xC3 after 4 s).
    Silent,
    /// This response (completion code first) instead of the right one.
    Raw(Vec<u8>),
}

/// The simulated BMC's firmware and bootstrap state.
#[derive(Debug, Clone)]
pub struct IpmiBmcState {
    /// "Get Device ID" response data after the completion code (11 or 15 bytes).
    pub device_id: Vec<u8>,
    /// The accounts to hand out, in order: `(user, password)`, 1-16 ASCII
    /// bytes each. When they run out, the last one is repeated.
    pub accounts: Vec<(String, String)>,
    /// Bootstrapping is enabled (DSP0270 answers with an account).
    pub enabled: bool,
    /// Faults for the next bootstrap requests, in order.
    pub faults: VecDeque<Fault>,
    /// Every request received: `(netfn, cmd, data)`.
    pub requests: Vec<(u8, u8, Vec<u8>)>,
    /// Every control command received.
    pub controls: Vec<Vec<u8>>,
    /// Accounts handed out (index into `accounts`).
    pub issued: usize,
    /// Frames dropped for a bad checksum or framing.
    pub bad_frames: usize,
    /// When the first bootstrap request came, since [`ExternBmc::spawn`]:
    /// the VM's boot time up to our first command.
    pub first_bootstrap: Option<Duration>,
}

impl IpmiBmcState {
    /// Firmware `major.minor` (minor sent in BCD, as IPMI requires), IPMI 2.0,
    /// Dell's IANA number, aux revision `aux`; bootstrapping enabled.
    pub fn new(major: u8, minor: u8, aux: [u8; 4], accounts: &[(&str, &str)]) -> Self {
        let bcd = (minor / 10) << 4 | (minor % 10);
        let mut device_id = vec![
            0x20,         // device ID
            0x81,         // provides SDRs, revision 1
            major & 0x7F, // available, major revision
            bcd,          // minor revision, BCD
            0x02,         // IPMI 2.0
            0xBF,         // additional device support
            0xA2,
            0x02,
            0x00, // IANA 674 (Dell), LS byte first
            0x00,
            0x01, // product 0x0100
        ];
        device_id.extend_from_slice(&aux);
        IpmiBmcState {
            device_id,
            accounts: accounts
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
            enabled: true,
            faults: VecDeque::new(),
            requests: Vec::new(),
            controls: Vec::new(),
            issued: 0,
            bad_frames: 0,
            first_bootstrap: None,
        }
    }

    /// The DSP0270 requests received (their data), in order.
    pub fn bootstrap_requests(&self) -> Vec<Vec<u8>> {
        self.requests
            .iter()
            .filter(|(n, c, _)| (*n, *c) == (0x2C, 0x02))
            .map(|(_, _, d)| d.clone())
            .collect()
    }

    /// The response (completion code first) to a request, or `None` for
    /// silence.
    pub fn answer(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Option<Vec<u8>> {
        self.requests.push((netfn, cmd, data.to_vec()));
        Some(match (netfn, cmd) {
            (0x06, 0x01) => [&[0x00][..], &self.device_id].concat(),
            // Get Self Test Results: 0x55, no error.
            (0x06, 0x04) => vec![0x00, 0x55, 0x00],
            // Get Device GUID.
            (0x06, 0x08) => [&[0x00][..], b"bmclink-ipmi-sim"].concat(),
            // Set BMC Global Enables / Clear Message Flags.
            (0x06, 0x2E) | (0x06, 0x30) => vec![0x00],
            // Get BMC Global Enables: nothing enabled (no interrupts, no
            // event buffer). Get Message Flags: nothing pending.
            (0x06, 0x2F) | (0x06, 0x31) => vec![0x00, 0x00],
            // Read Event Message Buffer: empty.
            (0x06, 0x35) => vec![0x80],
            (0x2C, 0x02) => return self.bootstrap(data),
            _ => vec![0xC1],
        })
    }

    fn bootstrap(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        match self.faults.pop_front().unwrap_or(Fault::None) {
            Fault::None => {}
            Fault::NotImplemented => return Some(vec![0xC1]),
            Fault::Silent => return None,
            Fault::Raw(r) => return Some(r),
        }
        let &[0x52, control] = data else {
            // DSP0270: a request that is not [0x52, 0xA5|0x00].
            return Some(vec![0xCC]);
        };
        if control != 0xA5 && control != 0x00 {
            return Some(vec![0xCC]);
        }
        if !self.enabled {
            return Some(vec![0x80]);
        }
        let Some((user, password)) = self
            .accounts
            .get(self.issued)
            .or(self.accounts.last())
            .cloned()
        else {
            return Some(vec![0xFF]);
        };
        self.issued += 1;
        if control == 0x00 {
            self.enabled = false;
        }
        let mut rsp = vec![0x00, 0x52];
        for field in [user, password] {
            let mut f = [0u8; 16];
            f[..field.len()].copy_from_slice(field.as_bytes());
            rsp.extend_from_slice(&f);
        }
        Some(rsp)
    }
}

/// A BMC served on one TCP connection from QEMU (its thread ends with the
/// connection).
#[derive(Debug, Clone)]
pub struct ExternBmc {
    state: Arc<Mutex<IpmiBmcState>>,
}

impl ExternBmc {
    /// Accepts QEMU's connection on `listener` on a background thread and
    /// serves `state`.
    pub fn spawn(listener: TcpListener, state: IpmiBmcState) -> ExternBmc {
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        let started = Instant::now();
        thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                let _ = serve(stream, &shared, started);
            }
        });
        ExternBmc { state }
    }

    /// A copy of the state as it is now.
    pub fn state(&self) -> IpmiBmcState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn serve(
    mut stream: TcpStream,
    state: &Mutex<IpmiBmcState>,
    started: Instant,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    // Say which protocol version this end speaks, as lanserv does.
    stream.write_all(&frame_control(&[VM_CMD_VERSION, 1]))?;
    let mut deframer = Deframer::default();
    let mut buf = [0u8; 512];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        for frame in deframer.push(&buf[..n]) {
            let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
            match frame {
                Frame::Request {
                    msgid,
                    netfn,
                    lun,
                    cmd,
                    data,
                } => {
                    if (netfn, cmd) == (0x2C, 0x02) && st.first_bootstrap.is_none() {
                        st.first_bootstrap = Some(started.elapsed());
                    }
                    if let Some(rsp) = st.answer(netfn, cmd, &data) {
                        let body = [&[((netfn | 1) << 2) | lun, cmd][..], &rsp].concat();
                        drop(st);
                        stream.write_all(&frame_message(msgid, &body))?;
                    }
                }
                Frame::Control(c) => st.controls.push(c),
                Frame::Bad(_) => st.bad_frames += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_from_qemu_deframes_with_its_checksum() {
        // What ipmi_bmc_extern_handle_command sends for Get Device ID with
        // msgid 7: 07 18 01, checksum -(07+18+01) = 0xE0, then 0xA0.
        let frames = Deframer::default().push(&[0x07, 0x18, 0x01, 0xE0, 0xA0]);
        assert_eq!(
            frames,
            vec![Frame::Request {
                msgid: 7,
                netfn: 0x06,
                lun: 0,
                cmd: 0x01,
                data: vec![]
            }]
        );
        let frames = Deframer::default().push(&[0x07, 0x18, 0x01, 0xE1, 0xA0]);
        assert!(matches!(frames[..], [Frame::Bad(_)]));
    }

    #[test]
    fn special_bytes_are_escaped_both_ways() {
        // msgid 0xA0, data containing 0xA1 and 0xAA.
        let body = [0xB0, 0x02, 0x52, 0xA1, 0xAA];
        let wire = frame_message(0xA0, &body);
        assert_eq!(&wire[..2], &[0xAA, 0xB0]);
        assert!(wire[..wire.len() - 1]
            .iter()
            .all(|&b| b != VM_MSG_CHAR && b != VM_CMD_CHAR));
        let frames = Deframer::default().push(&wire);
        assert_eq!(
            frames,
            vec![Frame::Request {
                msgid: 0xA0,
                netfn: 0x2C,
                lun: 0,
                cmd: 0x02,
                data: vec![0x52, 0xA1, 0xAA]
            }]
        );
        let ctl = Deframer::default().push(&frame_control(&[VM_CMD_CAPABILITIES, 0xA1]));
        assert_eq!(ctl, vec![Frame::Control(vec![VM_CMD_CAPABILITIES, 0xA1])]);
    }

    #[test]
    fn the_bootstrap_state_follows_dsp0270() {
        let mut s = IpmiBmcState::new(3, 30, [30, 30, 0, 0], &[("u1", "p1"), ("u2", "p2")]);
        let a = s.answer(0x2C, 0x02, &[0x52, 0xA5]).unwrap();
        assert_eq!(a.len(), 34);
        assert_eq!(&a[..4], &[0x00, 0x52, b'u', b'1']);
        assert_eq!(&a[18..20], b"p1");
        let b = s.answer(0x2C, 0x02, &[0x52, 0x00]).unwrap();
        assert_eq!(&b[2..4], b"u2");
        assert_eq!(s.answer(0x2C, 0x02, &[0x52, 0xA5]), Some(vec![0x80]));
        assert_eq!(s.answer(0x2C, 0x02, &[0x51, 0xA5]), Some(vec![0xCC]));
        s.faults.push_back(Fault::Silent);
        assert_eq!(s.answer(0x2C, 0x02, &[0x52, 0xA5]), None);
        assert_eq!(
            s.answer(0x06, 0x01, &[]).unwrap()[..5],
            [0x00, 0x20, 0x81, 0x03, 0x30]
        );
        assert_eq!(s.answer(0x0A, 0x10, &[]), Some(vec![0xC1]));
    }
}
