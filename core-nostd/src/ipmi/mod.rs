//! The IPMI messages of the host-local bootstrap channel (DSP0270 v1.3 and
//! IPMI v2.0 "Get Device ID"), as bytes: requests to send and responses to
//! parse, no I/O. The Linux shim moves them through the kernel's IPMI device;
//! a firmware rig could move them over KCS or SSIF directly.
//!
//! A response here is what the kernel's IPMI interface hands back: the
//! completion code first, then the response data (no NetFn/command bytes).
//!
//! [`bootstrap_facts`] turns the two answers into the [`BmcFacts`] of DESIGN
//! §5a: a BMC that answers "Get Bootstrap Account Credentials" (with an
//! account, or with 0x80 "bootstrapping disabled") implements DSP0270 and is
//! TLS-capable firmware; one that answers 0xC1 "invalid command" is legacy
//! firmware, which allows the plain channel until a pin exists.

use core::fmt;

use crate::platform::BmcFacts;

/// One IPMI command: its network function, command code and a name for
/// errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Command {
    /// Network function of the request (even; the response's is one more).
    pub netfn: u8,
    /// Command code.
    pub cmd: u8,
    /// The specification's name, e.g. "Get Device ID".
    pub name: &'static str,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (NetFn 0x{:02X}, cmd 0x{:02X})",
            self.name, self.netfn, self.cmd
        )
    }
}

/// IPMI v2.0 §20.1 "Get Device ID" (App NetFn).
pub const GET_DEVICE_ID: Command = Command {
    netfn: 0x06,
    cmd: 0x01,
    name: "Get Device ID",
};

/// DSP0270 v1.3 §9 "Get Bootstrap Account Credentials" (Group Extension NetFn).
pub const GET_BOOTSTRAP_ACCOUNT: Command = Command {
    netfn: 0x2C,
    cmd: 0x02,
    name: "Get Bootstrap Account Credentials",
};

/// The DSP0270 group extension identification (Redfish): the first byte of
/// the request and of the response data.
pub const GROUP_REDFISH: u8 = 0x52;
/// Request control byte: hand out an account and keep bootstrapping enabled.
pub const KEEP_ENABLED: u8 = 0xA5;
/// Request control byte: hand out an account and disable bootstrapping.
pub const DISABLE: u8 = 0x00;

/// Completion code: success.
pub const CC_OK: u8 = 0x00;
/// DSP0270 completion code: bootstrapping is disabled on this BMC.
pub const CC_BOOTSTRAP_DISABLED: u8 = 0x80;
/// IPMI completion code: invalid command (the BMC does not implement it).
pub const CC_INVALID_COMMAND: u8 = 0xC1;

/// Length of the DSP0270 user name and password fields.
pub const ACCOUNT_FIELD_LEN: usize = 16;
/// Length of a successful DSP0270 response (completion code included).
pub const BOOTSTRAP_RESPONSE_LEN: usize = 2 + 2 * ACCOUNT_FIELD_LEN;
/// Shortest successful "Get Device ID" response (completion code included;
/// the 4 bytes of auxiliary firmware revision are optional).
pub const DEVICE_ID_MIN_LEN: usize = 12;

/// The request data of "Get Bootstrap Account Credentials": `[0x52, 0xA5]`
/// keeps bootstrapping enabled, `[0x52, 0x00]` disables it after this one.
pub const fn bootstrap_request(keep_enabled: bool) -> [u8; 2] {
    [
        GROUP_REDFISH,
        if keep_enabled { KEEP_ENABLED } else { DISABLE },
    ]
}

/// A response that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IpmiError {
    /// The response is empty or shorter than the command's answer.
    Short {
        /// The command answered.
        command: Command,
        /// Bytes received (completion code included).
        len: usize,
        /// Bytes required.
        need: usize,
    },
    /// The response is longer than the command's answer.
    Long {
        /// The command answered.
        command: Command,
        /// Bytes received (completion code included).
        len: usize,
    },
    /// The BMC answered with a completion code other than success.
    Completion {
        /// The command answered.
        command: Command,
        /// The completion code.
        cc: u8,
    },
    /// The DSP0270 response does not carry the Redfish group extension.
    GroupExtension {
        /// The byte found instead of 0x52.
        found: u8,
    },
    /// The user name or password is empty, not ASCII or has bytes after its
    /// NUL padding.
    Field {
        /// "user name" or "password".
        field: &'static str,
    },
}

impl fmt::Display for IpmiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpmiError::Short { command, len, need } => write!(
                f,
                "{command}: response of {len} bytes, need {need}"
            ),
            IpmiError::Long { command, len } => {
                write!(f, "{command}: response of {len} bytes is too long")
            }
            IpmiError::Completion { command, cc } => write!(
                f,
                "{command}: completion code 0x{cc:02X} ({})",
                completion_text(*command, *cc)
            ),
            IpmiError::GroupExtension { found } => write!(
                f,
                "{GET_BOOTSTRAP_ACCOUNT}: group extension 0x{found:02X}, not Redfish (0x52)"
            ),
            IpmiError::Field { field } => write!(
                f,
                "{GET_BOOTSTRAP_ACCOUNT}: the {field} is empty, not printable ASCII or not NUL-padded"
            ),
        }
    }
}

/// What a completion code means, in the words of IPMI v2.0 table 5-2 and
/// DSP0270.
pub fn completion_text(command: Command, cc: u8) -> &'static str {
    match cc {
        CC_OK => "success",
        CC_BOOTSTRAP_DISABLED if command == GET_BOOTSTRAP_ACCOUNT => "bootstrapping disabled",
        0xC0 => "node busy",
        CC_INVALID_COMMAND => "invalid command: not implemented by this BMC",
        0xC3 => "timeout",
        0xC7 => "request data length invalid",
        0xCC => "invalid data field in request",
        0xD4 => "insufficient privilege",
        0xD5 => "not supported in present state",
        0xFF => "unspecified error",
        _ => "error",
    }
}

/// The answer to "Get Device ID" that the agent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeviceId {
    /// Device ID byte.
    pub device_id: u8,
    /// Device revision (low 4 bits).
    pub device_revision: u8,
    /// Major firmware revision (bits 6:0 of byte 3).
    pub firmware_major: u8,
    /// Minor firmware revision, decoded from BCD (0-99; a non-BCD byte is
    /// taken as binary).
    pub firmware_minor: u8,
    /// IPMI version, BCD as sent (0x02 = 2.0, 0x51 = 1.5).
    pub ipmi_version: u8,
    /// IANA manufacturer ID (20 bits).
    pub manufacturer: u32,
    /// Product ID.
    pub product: u16,
    /// Auxiliary firmware revision, vendor-defined, when sent.
    pub aux: Option<[u8; 4]>,
    /// The device says it is updating its firmware or otherwise unavailable.
    pub updating: bool,
}

fn bcd(b: u8) -> u8 {
    let (hi, lo) = (b >> 4, b & 0x0F);
    if hi < 10 && lo < 10 {
        hi.wrapping_mul(10).wrapping_add(lo)
    } else {
        b
    }
}

impl DeviceId {
    /// Parses the response to [`GET_DEVICE_ID`] (completion code first).
    pub fn parse(rsp: &[u8]) -> Result<DeviceId, IpmiError> {
        let command = GET_DEVICE_ID;
        let cc = *rsp.first().ok_or(IpmiError::Short {
            command,
            len: 0,
            need: DEVICE_ID_MIN_LEN,
        })?;
        if cc != CC_OK {
            return Err(IpmiError::Completion { command, cc });
        }
        let Some(b) = rsp.first_chunk::<DEVICE_ID_MIN_LEN>() else {
            return Err(IpmiError::Short {
                command,
                len: rsp.len(),
                need: DEVICE_ID_MIN_LEN,
            });
        };
        let [_, device_id, rev, fw1, fw2, ipmi_version, _support, m0, m1, m2, p0, p1] = *b;
        let aux = match rsp.len() {
            DEVICE_ID_MIN_LEN => None,
            16 => rsp.get(DEVICE_ID_MIN_LEN..).and_then(|a| a.try_into().ok()),
            len if len < 16 => {
                return Err(IpmiError::Short {
                    command,
                    len,
                    need: 16,
                })
            }
            len => return Err(IpmiError::Long { command, len }),
        };
        Ok(DeviceId {
            device_id,
            device_revision: rev & 0x0F,
            firmware_major: fw1 & 0x7F,
            firmware_minor: bcd(fw2),
            ipmi_version,
            manufacturer: u32::from_le_bytes([m0, m1, m2 & 0x0F, 0]),
            product: u16::from_le_bytes([p0, p1]),
            aux,
            updating: fw1 & 0x80 != 0,
        })
    }

    /// The firmware version in the agent's four-number form: major, minor,
    /// and the first two bytes of the auxiliary revision (0 when absent).
    pub fn firmware(&self) -> [u8; 4] {
        let [a0, a1, _, _] = self.aux.unwrap_or([0; 4]);
        [self.firmware_major, self.firmware_minor, a0, a1]
    }
}

/// A DSP0270 bootstrap account: user name and password, ASCII, each 1 to 16
/// bytes. A secret: never logged, zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapAccount {
    user: [u8; ACCOUNT_FIELD_LEN],
    user_len: u8,
    password: [u8; ACCOUNT_FIELD_LEN],
    password_len: u8,
}

impl fmt::Debug for BootstrapAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapAccount")
            .field("user", &self.user())
            .field("password", &"<secret>")
            .finish()
    }
}

impl Drop for BootstrapAccount {
    fn drop(&mut self) {
        self.password.fill(0);
        // Keep the zeroing from being optimised away as a dead store.
        core::hint::black_box(&mut self.password);
    }
}

/// A NUL-padded ASCII field: its length, or `None` when it is empty, holds a
/// non-printable byte or has a non-NUL byte after the padding starts.
fn field_len(field: &[u8; ACCOUNT_FIELD_LEN]) -> Option<u8> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (text, pad) = field.split_at(len);
    let printable = text.iter().all(|b| (0x21..=0x7E).contains(b));
    (len > 0 && printable && pad.iter().all(|&b| b == 0)).then_some(len as u8)
}

impl BootstrapAccount {
    /// An account from its two NUL-padded fields, as DSP0270 sends them.
    pub fn from_fields(
        user: [u8; ACCOUNT_FIELD_LEN],
        password: [u8; ACCOUNT_FIELD_LEN],
    ) -> Result<BootstrapAccount, IpmiError> {
        let user_len = field_len(&user).ok_or(IpmiError::Field { field: "user name" })?;
        let password_len = field_len(&password).ok_or(IpmiError::Field { field: "password" })?;
        Ok(BootstrapAccount {
            user,
            user_len,
            password,
            password_len,
        })
    }

    /// Parses the response to [`GET_BOOTSTRAP_ACCOUNT`] (completion code
    /// first): `[cc, 0x52, user[16], password[16]]`.
    pub fn parse(rsp: &[u8]) -> Result<BootstrapAccount, IpmiError> {
        let command = GET_BOOTSTRAP_ACCOUNT;
        let cc = *rsp.first().ok_or(IpmiError::Short {
            command,
            len: 0,
            need: BOOTSTRAP_RESPONSE_LEN,
        })?;
        if cc != CC_OK {
            return Err(IpmiError::Completion { command, cc });
        }
        let Some(b) = rsp.first_chunk::<BOOTSTRAP_RESPONSE_LEN>() else {
            return Err(IpmiError::Short {
                command,
                len: rsp.len(),
                need: BOOTSTRAP_RESPONSE_LEN,
            });
        };
        if rsp.len() > BOOTSTRAP_RESPONSE_LEN {
            return Err(IpmiError::Long {
                command,
                len: rsp.len(),
            });
        }
        let (head, fields) = b.split_at(2);
        if let Some(&found) = head.get(1).filter(|&&g| g != GROUP_REDFISH) {
            return Err(IpmiError::GroupExtension { found });
        }
        let (user, password) = fields.split_at(ACCOUNT_FIELD_LEN);
        let (Ok(user), Ok(password)) = (user.try_into(), password.try_into()) else {
            return Err(IpmiError::Short {
                command,
                len: rsp.len(),
                need: BOOTSTRAP_RESPONSE_LEN,
            });
        };
        BootstrapAccount::from_fields(user, password)
    }

    /// The user name.
    pub fn user(&self) -> &str {
        let b = self.user.get(..usize::from(self.user_len)).unwrap_or(&[]);
        core::str::from_utf8(b).unwrap_or("")
    }

    /// The password (the one-time secret).
    pub fn password(&self) -> &str {
        let b = self
            .password
            .get(..usize::from(self.password_len))
            .unwrap_or(&[]);
        core::str::from_utf8(b).unwrap_or("")
    }
}

/// What the BMC said to "Get Bootstrap Account Credentials".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapAnswer {
    /// An account: DSP0270 firmware with bootstrapping enabled.
    Account(BootstrapAccount),
    /// 0x80: DSP0270 firmware, bootstrapping disabled (already enrolled, or
    /// turned off by the administrator).
    Disabled,
    /// 0xC1: the command is not implemented: legacy firmware.
    NotImplemented,
}

impl BootstrapAnswer {
    /// Parses a response; completion codes other than 0x00, 0x80 and 0xC1
    /// (busy, timeout, ...) are errors, not answers.
    pub fn parse(rsp: &[u8]) -> Result<BootstrapAnswer, IpmiError> {
        match rsp.first() {
            Some(&CC_BOOTSTRAP_DISABLED) => Ok(BootstrapAnswer::Disabled),
            Some(&CC_INVALID_COMMAND) => Ok(BootstrapAnswer::NotImplemented),
            _ => BootstrapAccount::parse(rsp).map(BootstrapAnswer::Account),
        }
    }

    /// Whether the BMC implements DSP0270, which only TLS-capable firmware does.
    pub fn tls_capable(&self) -> bool {
        !matches!(self, BootstrapAnswer::NotImplemented)
    }
}

/// The bootstrap facts of DESIGN §5a from the two IPMI answers: firmware from
/// "Get Device ID", `tls` from whether the BMC implements DSP0270. DSP0270
/// carries no certificate fingerprint (`None`: enrollment binds the account
/// to the certificates instead, or the administrator gives one) and says
/// nothing about IPv6, which is then left to the BMC's WELCOME (`true`).
pub fn bootstrap_facts(device: &DeviceId, answer: &BootstrapAnswer) -> BmcFacts {
    BmcFacts {
        fingerprint: None,
        firmware: device.firmware(),
        tls: answer.tls_capable(),
        ipv6_usbnic: true,
    }
}

#[cfg(test)]
mod tests;
