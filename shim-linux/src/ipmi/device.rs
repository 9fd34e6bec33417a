//! A blocking IPMI client over the kernel's IPMI device: one request to the
//! local BMC (system interface address), then `poll(2)` with a deadline and
//! `IPMICTL_RECEIVE_MSG_TRUNC` until the response with the request's message
//! id arrives. Every failure is an [`IpmiDeviceError`] naming the command;
//! nothing waits past the deadline.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bmclink_core::ipmi::Command;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::sys::{
    ipmictl_receive_msg_trunc, ipmictl_send_command, IpmiAddr, IpmiMsg, IpmiRecv, IpmiReq,
    IpmiSystemInterfaceAddr, IPMI_BMC_CHANNEL, IPMI_MAX_ADDR_SIZE, IPMI_MAX_MSG_LENGTH,
    IPMI_RESPONSE_RECV_TYPE, IPMI_SYSTEM_INTERFACE_ADDR_TYPE,
};

/// Where `ipmi_devintf` devices appear: udev's name, devfs-style names.
pub const DEVICE_PATHS: [&str; 3] = ["/dev/ipmi0", "/dev/ipmi/0", "/dev/ipmidev/0"];

/// How long a command may take by default. QEMU's external BMC gives up
/// after 4 s and the kernel's KCS driver after 5 s; a real BMC answers in
/// milliseconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The IPMI device failed.
#[derive(Debug, thiserror::Error)]
pub enum IpmiDeviceError {
    /// None of the device paths exists.
    #[error(
        "no IPMI device ({}): load the ipmi_si and ipmi_devintf kernel modules, or the host has no BMC interface",
        DEVICE_PATHS.join(", ")
    )]
    NoDevice,
    /// The device given does not exist.
    #[error("the IPMI device {path} does not exist: load the ipmi_si and ipmi_devintf kernel modules, or check the path")]
    Missing {
        /// The device.
        path: PathBuf,
    },
    /// The device exists but may not be opened.
    #[error("cannot open the IPMI device {path}: permission denied (run as root, or allow the device in the unit)")]
    Permission {
        /// The device.
        path: PathBuf,
    },
    /// Opening failed otherwise.
    #[error("cannot open the IPMI device {path}: {source}")]
    Open {
        /// The device.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel refused the request.
    #[error("{command}: the IPMI device refused the request: {errno}")]
    Send {
        /// The command.
        command: Command,
        /// The ioctl's error.
        errno: Errno,
    },
    /// Waiting for or reading the response failed.
    #[error("{command}: reading the response from the IPMI device failed: {errno}")]
    Receive {
        /// The command.
        command: Command,
        /// The poll or ioctl error.
        errno: Errno,
    },
    /// No response before the deadline.
    #[error("{command}: no response from the BMC within {} ms", timeout.as_millis())]
    Timeout {
        /// The command.
        command: Command,
        /// The deadline it had.
        timeout: Duration,
    },
    /// The response was longer than the kernel's largest message.
    #[error("{command}: the response was truncated (longer than {IPMI_MAX_MSG_LENGTH} bytes)")]
    Truncated {
        /// The command.
        command: Command,
    },
    /// A response with the request's id for another command.
    #[error("{command}: the response is for NetFn 0x{netfn:02X} cmd 0x{cmd:02X}")]
    Mismatched {
        /// The command.
        command: Command,
        /// The response's NetFn.
        netfn: u8,
        /// The response's command.
        cmd: u8,
    },
}

/// An open IPMI device.
#[derive(Debug)]
pub struct IpmiDevice {
    file: File,
    path: PathBuf,
    next_msgid: i64,
}

/// The first device path that exists, if any.
pub fn find_device() -> Option<PathBuf> {
    DEVICE_PATHS.iter().map(PathBuf::from).find(|p| p.exists())
}

impl IpmiDevice {
    /// Opens `path`, or the first of [`DEVICE_PATHS`] that exists.
    pub fn open(path: Option<&Path>) -> Result<IpmiDevice, IpmiDeviceError> {
        let (path, given) = match path {
            Some(p) => (p.to_owned(), true),
            None => (find_device().ok_or(IpmiDeviceError::NoDevice)?, false),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound if given => IpmiDeviceError::Missing { path: path.clone() },
                io::ErrorKind::NotFound => IpmiDeviceError::NoDevice,
                io::ErrorKind::PermissionDenied => {
                    IpmiDeviceError::Permission { path: path.clone() }
                }
                _ => IpmiDeviceError::Open {
                    path: path.clone(),
                    source,
                },
            })?;
        Ok(IpmiDevice {
            file,
            path,
            next_msgid: 1,
        })
    }

    /// The device's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `command` with `data` to the BMC and returns its response
    /// (completion code first), waiting at most `timeout`.
    pub fn request(
        &mut self,
        command: Command,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, IpmiDeviceError> {
        let msgid = self.next_msgid;
        self.next_msgid = self.next_msgid.wrapping_add(1);
        self.send(command, data, msgid)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(IpmiDeviceError::Timeout { command, timeout });
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(errno) => return Err(IpmiDeviceError::Receive { command, errno }),
            }
            if let Some(rsp) = self.receive(command, msgid)? {
                return Ok(rsp);
            }
        }
    }

    fn send(&self, command: Command, data: &[u8], msgid: i64) -> Result<(), IpmiDeviceError> {
        let mut addr = IpmiSystemInterfaceAddr {
            addr_type: IPMI_SYSTEM_INTERFACE_ADDR_TYPE,
            channel: IPMI_BMC_CHANNEL,
            lun: 0,
        };
        let data_len = u16::try_from(data.len()).map_err(|_| IpmiDeviceError::Send {
            command,
            errno: Errno::EMSGSIZE,
        })?;
        let mut req = IpmiReq {
            addr: (&mut addr as *mut IpmiSystemInterfaceAddr).cast(),
            addr_len: std::mem::size_of::<IpmiSystemInterfaceAddr>() as u32,
            msgid: msgid as libc::c_long,
            msg: IpmiMsg {
                netfn: command.netfn,
                cmd: command.cmd,
                data_len,
                // The kernel only reads the request data.
                data: data.as_ptr().cast_mut(),
            },
        };
        // SAFETY: `req` points at `addr` and `data`, which outlive the call;
        // the kernel copies both before the ioctl returns.
        unsafe { ipmictl_send_command(self.file.as_raw_fd(), &mut req) }
            .map(drop)
            .map_err(|errno| IpmiDeviceError::Send { command, errno })
    }

    /// Takes one waiting message: the response to `msgid`, or `None` for a
    /// message that is not ours (a late answer to a request that timed out,
    /// an event), which is dropped.
    fn receive(&self, command: Command, msgid: i64) -> Result<Option<Vec<u8>>, IpmiDeviceError> {
        let mut addr = IpmiAddr {
            addr_type: 0,
            channel: 0,
            data: [0; IPMI_MAX_ADDR_SIZE],
        };
        let mut buf = [0u8; IPMI_MAX_MSG_LENGTH];
        let mut recv = IpmiRecv {
            recv_type: 0,
            addr: (&mut addr as *mut IpmiAddr).cast(),
            addr_len: std::mem::size_of::<IpmiAddr>() as u32,
            msgid: 0,
            msg: IpmiMsg {
                netfn: 0,
                cmd: 0,
                data_len: buf.len() as u16,
                data: buf.as_mut_ptr(),
            },
        };
        // SAFETY: `recv` points at `addr` and `buf` with their true sizes;
        // the kernel writes at most that much into them.
        let result = unsafe { ipmictl_receive_msg_trunc(self.file.as_raw_fd(), &mut recv) };
        let truncated = match result {
            Ok(_) => false,
            // The message was taken and cut to the buffer.
            Err(Errno::EMSGSIZE) => true,
            // poll said readable but another reader was faster.
            Err(Errno::EAGAIN) => return Ok(None),
            Err(errno) => return Err(IpmiDeviceError::Receive { command, errno }),
        };
        if recv.recv_type != IPMI_RESPONSE_RECV_TYPE || recv.msgid != msgid as libc::c_long {
            log::debug!(
                "IPMI: dropped a message of type {} for msgid {} while waiting for {msgid}",
                recv.recv_type,
                recv.msgid
            );
            return Ok(None);
        }
        if truncated {
            return Err(IpmiDeviceError::Truncated { command });
        }
        if recv.msg.netfn != command.netfn | 1 || recv.msg.cmd != command.cmd {
            return Err(IpmiDeviceError::Mismatched {
                command,
                netfn: recv.msg.netfn,
                cmd: recv.msg.cmd,
            });
        }
        let len = usize::from(recv.msg.data_len).min(buf.len());
        Ok(Some(buf[..len].to_vec()))
    }
}
