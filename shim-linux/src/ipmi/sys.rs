//! The kernel's IPMI character-device interface (OpenIPMI's `ipmi_devintf`),
//! as declared in `include/uapi/linux/ipmi.h`: the structs the ioctls take,
//! laid out `repr(C)` field for field, and the ioctls through nix's macros.
//! The tests check sizes, offsets and request numbers against the header
//! itself (compiled with the system's C compiler) and against the values
//! the header gives on x86-64.

use std::os::raw::{c_int, c_long, c_short, c_uchar, c_uint, c_ushort};

/// `IPMI_SYSTEM_INTERFACE_ADDR_TYPE`: a message to the local BMC.
pub const IPMI_SYSTEM_INTERFACE_ADDR_TYPE: c_int = 0x0c;
/// `IPMI_BMC_CHANNEL`: the channel number of the system interface.
pub const IPMI_BMC_CHANNEL: c_short = 0x0f;
/// `IPMI_MAX_ADDR_SIZE`: bytes of address data in [`IpmiAddr`].
pub const IPMI_MAX_ADDR_SIZE: usize = 32;
/// `IPMI_MAX_MSG_LENGTH`: the longest message the kernel passes.
pub const IPMI_MAX_MSG_LENGTH: usize = 272;
/// `IPMI_RESPONSE_RECV_TYPE`: a received message is a response to a command.
pub const IPMI_RESPONSE_RECV_TYPE: c_int = 1;
/// `IPMI_IOC_MAGIC`.
pub const IPMI_IOC_MAGIC: u8 = b'i';

/// `struct ipmi_addr`: room for any address type.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IpmiAddr {
    /// `addr_type`.
    pub addr_type: c_int,
    /// `channel`.
    pub channel: c_short,
    /// `data[IPMI_MAX_ADDR_SIZE]`.
    pub data: [c_uchar; IPMI_MAX_ADDR_SIZE],
}

/// `struct ipmi_system_interface_addr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IpmiSystemInterfaceAddr {
    /// `addr_type`: [`IPMI_SYSTEM_INTERFACE_ADDR_TYPE`].
    pub addr_type: c_int,
    /// `channel`: [`IPMI_BMC_CHANNEL`].
    pub channel: c_short,
    /// `lun`.
    pub lun: c_uchar,
}

/// `struct ipmi_msg`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IpmiMsg {
    /// `netfn`.
    pub netfn: c_uchar,
    /// `cmd`.
    pub cmd: c_uchar,
    /// `data_len`.
    pub data_len: c_ushort,
    /// `data`: the caller's buffer.
    pub data: *mut c_uchar,
}

/// `struct ipmi_req`: the argument of `IPMICTL_SEND_COMMAND`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IpmiReq {
    /// `addr`: the address to send to.
    pub addr: *mut c_uchar,
    /// `addr_len`.
    pub addr_len: c_uint,
    /// `msgid`: returned with the response.
    pub msgid: c_long,
    /// `msg`.
    pub msg: IpmiMsg,
}

/// `struct ipmi_recv`: the argument of `IPMICTL_RECEIVE_MSG_TRUNC`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IpmiRecv {
    /// `recv_type`: [`IPMI_RESPONSE_RECV_TYPE`] for a response.
    pub recv_type: c_int,
    /// `addr`: where the kernel writes the sender's address.
    pub addr: *mut c_uchar,
    /// `addr_len`: in, the buffer's size; out, the address's.
    pub addr_len: c_uint,
    /// `msgid`: the request's.
    pub msgid: c_long,
    /// `msg`: `data`/`data_len` are the caller's buffer; out, the response.
    pub msg: IpmiMsg,
}

// IPMICTL_SEND_COMMAND = _IOR(IPMI_IOC_MAGIC, 13, struct ipmi_req)
nix::ioctl_read!(ipmictl_send_command, IPMI_IOC_MAGIC, 13, IpmiReq);
// IPMICTL_RECEIVE_MSG_TRUNC = _IOWR(IPMI_IOC_MAGIC, 11, struct ipmi_recv)
nix::ioctl_readwrite!(ipmictl_receive_msg_trunc, IPMI_IOC_MAGIC, 11, IpmiRecv);

/// The request number of `IPMICTL_SEND_COMMAND`.
pub const IPMICTL_SEND_COMMAND: u64 =
    nix::request_code_read!(IPMI_IOC_MAGIC, 13, std::mem::size_of::<IpmiReq>()) as u64;
/// The request number of `IPMICTL_RECEIVE_MSG_TRUNC`.
pub const IPMICTL_RECEIVE_MSG_TRUNC: u64 =
    nix::request_code_readwrite!(IPMI_IOC_MAGIC, 11, std::mem::size_of::<IpmiRecv>()) as u64;

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::process::Command;

    /// What the header says, as `name value` lines, for the Rust side to match.
    fn layout_lines() -> Vec<(String, u64)> {
        vec![
            ("sizeof_ipmi_addr".into(), size_of::<IpmiAddr>() as u64),
            (
                "sizeof_ipmi_system_interface_addr".into(),
                size_of::<IpmiSystemInterfaceAddr>() as u64,
            ),
            ("sizeof_ipmi_msg".into(), size_of::<IpmiMsg>() as u64),
            ("sizeof_ipmi_req".into(), size_of::<IpmiReq>() as u64),
            ("sizeof_ipmi_recv".into(), size_of::<IpmiRecv>() as u64),
            (
                "off_addr_channel".into(),
                offset_of!(IpmiAddr, channel) as u64,
            ),
            ("off_addr_data".into(), offset_of!(IpmiAddr, data) as u64),
            (
                "off_si_lun".into(),
                offset_of!(IpmiSystemInterfaceAddr, lun) as u64,
            ),
            (
                "off_msg_data_len".into(),
                offset_of!(IpmiMsg, data_len) as u64,
            ),
            ("off_msg_data".into(), offset_of!(IpmiMsg, data) as u64),
            (
                "off_req_addr_len".into(),
                offset_of!(IpmiReq, addr_len) as u64,
            ),
            ("off_req_msgid".into(), offset_of!(IpmiReq, msgid) as u64),
            ("off_req_msg".into(), offset_of!(IpmiReq, msg) as u64),
            ("off_recv_addr".into(), offset_of!(IpmiRecv, addr) as u64),
            (
                "off_recv_addr_len".into(),
                offset_of!(IpmiRecv, addr_len) as u64,
            ),
            ("off_recv_msgid".into(), offset_of!(IpmiRecv, msgid) as u64),
            ("off_recv_msg".into(), offset_of!(IpmiRecv, msg) as u64),
            ("IPMICTL_SEND_COMMAND".into(), IPMICTL_SEND_COMMAND),
            (
                "IPMICTL_RECEIVE_MSG_TRUNC".into(),
                IPMICTL_RECEIVE_MSG_TRUNC,
            ),
            (
                "IPMI_SYSTEM_INTERFACE_ADDR_TYPE".into(),
                IPMI_SYSTEM_INTERFACE_ADDR_TYPE as u64,
            ),
            ("IPMI_BMC_CHANNEL".into(), IPMI_BMC_CHANNEL as u64),
            ("IPMI_MAX_ADDR_SIZE".into(), IPMI_MAX_ADDR_SIZE as u64),
            (
                "IPMI_RESPONSE_RECV_TYPE".into(),
                IPMI_RESPONSE_RECV_TYPE as u64,
            ),
        ]
    }

    const PROBE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/ipmi.h>
#define P(n, v) printf("%s %lu\n", n, (unsigned long)(v))
int main(void) {
  P("sizeof_ipmi_addr", sizeof(struct ipmi_addr));
  P("sizeof_ipmi_system_interface_addr", sizeof(struct ipmi_system_interface_addr));
  P("sizeof_ipmi_msg", sizeof(struct ipmi_msg));
  P("sizeof_ipmi_req", sizeof(struct ipmi_req));
  P("sizeof_ipmi_recv", sizeof(struct ipmi_recv));
  P("off_addr_channel", offsetof(struct ipmi_addr, channel));
  P("off_addr_data", offsetof(struct ipmi_addr, data));
  P("off_si_lun", offsetof(struct ipmi_system_interface_addr, lun));
  P("off_msg_data_len", offsetof(struct ipmi_msg, data_len));
  P("off_msg_data", offsetof(struct ipmi_msg, data));
  P("off_req_addr_len", offsetof(struct ipmi_req, addr_len));
  P("off_req_msgid", offsetof(struct ipmi_req, msgid));
  P("off_req_msg", offsetof(struct ipmi_req, msg));
  P("off_recv_addr", offsetof(struct ipmi_recv, addr));
  P("off_recv_addr_len", offsetof(struct ipmi_recv, addr_len));
  P("off_recv_msgid", offsetof(struct ipmi_recv, msgid));
  P("off_recv_msg", offsetof(struct ipmi_recv, msg));
  P("IPMICTL_SEND_COMMAND", IPMICTL_SEND_COMMAND);
  P("IPMICTL_RECEIVE_MSG_TRUNC", IPMICTL_RECEIVE_MSG_TRUNC);
  P("IPMI_SYSTEM_INTERFACE_ADDR_TYPE", IPMI_SYSTEM_INTERFACE_ADDR_TYPE);
  P("IPMI_BMC_CHANNEL", IPMI_BMC_CHANNEL);
  P("IPMI_MAX_ADDR_SIZE", IPMI_MAX_ADDR_SIZE);
  P("IPMI_RESPONSE_RECV_TYPE", IPMI_RESPONSE_RECV_TYPE);
  return 0;
}
"#;

    /// The layout agrees with the kernel header as the C compiler sees it.
    /// Needs gcc and the kernel's UAPI headers (linux-libc-dev, which gcc's
    /// libc6-dev pulls in); says why when they are missing.
    #[test]
    fn layouts_and_ioctl_numbers_match_the_kernel_header() {
        let header = std::path::Path::new("/usr/include/linux/ipmi.h");
        if !header.exists() {
            assert!(
                std::env::var("BMCLINK_REQUIRE_ROOT").as_deref() != Ok("1"),
                "{} is missing (apt-get install linux-libc-dev)",
                header.display()
            );
            println!("skipped: {} is missing (linux-libc-dev)", header.display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("probe.c");
        let exe = dir.path().join("probe");
        std::fs::write(&src, PROBE).unwrap();
        let cc = Command::new("cc")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .status()
            .expect("a C compiler (cc)");
        assert!(cc.success(), "compiling the ipmi.h probe failed");
        let out = Command::new(&exe).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let c: Vec<(String, u64)> = text
            .lines()
            .map(|l| {
                let (n, v) = l.split_once(' ').unwrap();
                (n.to_owned(), v.parse().unwrap())
            })
            .collect();
        assert_eq!(c, layout_lines());
    }

    /// The same numbers, from reading the header by hand for x86-64 (LP64):
    /// so a wrong layout fails even where no C compiler is installed.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn layouts_match_the_x86_64_abi_of_the_header() {
        assert_eq!(size_of::<IpmiAddr>(), 40); // 4 + 2 + 32, aligned to 4
        assert_eq!(size_of::<IpmiSystemInterfaceAddr>(), 8);
        assert_eq!(size_of::<IpmiMsg>(), 16); // 1 + 1 + 2 + pad 4 + pointer
        assert_eq!(size_of::<IpmiReq>(), 40); // pointer, uint + pad, long, msg
        assert_eq!(size_of::<IpmiRecv>(), 48); // int + pad, pointer, uint + pad, long, msg
        assert_eq!(offset_of!(IpmiReq, msg), 24);
        assert_eq!(offset_of!(IpmiRecv, msg), 32);
        // _IOR('i', 13, 40): dir 2 << 30 | size << 16 | 'i' << 8 | nr
        assert_eq!(IPMICTL_SEND_COMMAND, 0x8028_690D);
        // _IOWR('i', 11, 48): dir 3 << 30
        assert_eq!(IPMICTL_RECEIVE_MSG_TRUNC, 0xC030_690B);
    }
}
