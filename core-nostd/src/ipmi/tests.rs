//! The codecs against the byte layouts of IPMI v2.0 table 20-2 and DSP0270.

extern crate std;
use super::*;
use std::format;

/// A "Get Device ID" answer laid out field by field from IPMI v2.0
/// table 20-2: device 0x20, revision 1, available, firmware 3.30 (BCD),
/// IPMI 2.0, Dell (IANA 674 = 0x0002A2), product 0x0100, aux 0x1E 0x1E ..
const DEVICE_ID: [u8; 16] = [
    0x00, 0x20, 0x81, 0x03, 0x30, 0x02, 0xBF, 0xA2, 0x02, 0x00, 0x00, 0x01, 30, 30, 0, 0,
];

fn field(s: &str) -> [u8; 16] {
    let mut f = [0u8; 16];
    f[..s.len()].copy_from_slice(s.as_bytes());
    f
}

fn account_rsp(user: &str, password: &str) -> [u8; 34] {
    let mut r = [0u8; 34];
    r[1] = 0x52;
    r[2..18].copy_from_slice(&field(user));
    r[18..].copy_from_slice(&field(password));
    r
}

#[test]
fn device_id_fields_follow_ipmi_table_20_2() {
    let d = DeviceId::parse(&DEVICE_ID).unwrap();
    assert_eq!(d.device_id, 0x20);
    assert_eq!(d.device_revision, 1);
    assert_eq!((d.firmware_major, d.firmware_minor), (3, 30));
    assert_eq!(d.ipmi_version, 0x02);
    assert_eq!(d.manufacturer, 674);
    assert_eq!(d.product, 0x0100);
    assert!(!d.updating);
    assert_eq!(d.firmware(), [3, 30, 30, 30]);
    // Without the optional aux revision.
    let d = DeviceId::parse(&DEVICE_ID[..12]).unwrap();
    assert_eq!((d.aux, d.firmware()), (None, [3, 30, 0, 0]));
}

#[test]
fn device_id_rejects_errors_and_odd_lengths() {
    let mut busy = DEVICE_ID;
    busy[0] = 0xC0;
    assert_eq!(
        DeviceId::parse(&busy),
        Err(IpmiError::Completion {
            command: GET_DEVICE_ID,
            cc: 0xC0
        })
    );
    assert!(matches!(
        DeviceId::parse(&DEVICE_ID[..11]),
        Err(IpmiError::Short { len: 11, .. })
    ));
    assert!(matches!(
        DeviceId::parse(&DEVICE_ID[..14]),
        Err(IpmiError::Short {
            len: 14,
            need: 16,
            ..
        })
    ));
    assert!(matches!(
        DeviceId::parse(&[]),
        Err(IpmiError::Short { len: 0, .. })
    ));
    let mut long = [0u8; 17];
    long[..16].copy_from_slice(&DEVICE_ID);
    assert!(matches!(
        DeviceId::parse(&long),
        Err(IpmiError::Long { len: 17, .. })
    ));
}

#[test]
fn bootstrap_request_bytes_are_dsp0270s() {
    assert_eq!(bootstrap_request(true), [0x52, 0xA5]);
    assert_eq!(bootstrap_request(false), [0x52, 0x00]);
}

#[test]
fn an_account_answer_gives_user_and_password() {
    let a = BootstrapAccount::parse(&account_rsp("bootstrap-7f3a", "Zq8#x2LmP0v9wYt4")).unwrap();
    assert_eq!(a.user(), "bootstrap-7f3a");
    assert_eq!(a.password(), "Zq8#x2LmP0v9wYt4");
    assert!(!format!("{a:?}").contains("Zq8"));
}

#[test]
fn bootstrap_answers_map_to_firmware_kinds() {
    let d = DeviceId::parse(&DEVICE_ID).unwrap();
    let acc = BootstrapAnswer::parse(&account_rsp("u", "p")).unwrap();
    assert!(matches!(acc, BootstrapAnswer::Account(_)));
    let f = bootstrap_facts(&d, &acc);
    assert!(f.tls && f.fingerprint.is_none());
    assert_eq!(f.firmware, [3, 30, 30, 30]);
    let off = BootstrapAnswer::parse(&[0x80]).unwrap();
    assert_eq!(off, BootstrapAnswer::Disabled);
    assert!(bootstrap_facts(&d, &off).tls);
    let legacy = BootstrapAnswer::parse(&[0xC1]).unwrap();
    assert_eq!(legacy, BootstrapAnswer::NotImplemented);
    assert!(!bootstrap_facts(&d, &legacy).tls);
    assert_eq!(
        BootstrapAnswer::parse(&[0xC3]),
        Err(IpmiError::Completion {
            command: GET_BOOTSTRAP_ACCOUNT,
            cc: 0xC3
        })
    );
}

#[test]
fn malformed_bootstrap_answers_are_rejected() {
    let good = account_rsp("user", "pass");
    assert!(matches!(
        BootstrapAccount::parse(&good[..33]),
        Err(IpmiError::Short {
            len: 33,
            need: 34,
            ..
        })
    ));
    let mut long = [0u8; 35];
    long[..34].copy_from_slice(&good);
    assert!(matches!(
        BootstrapAccount::parse(&long),
        Err(IpmiError::Long { .. })
    ));
    let mut group = good;
    group[1] = 0x51;
    assert_eq!(
        BootstrapAccount::parse(&group),
        Err(IpmiError::GroupExtension { found: 0x51 })
    );
    let empty = account_rsp("", "pass");
    assert_eq!(
        BootstrapAccount::parse(&empty),
        Err(IpmiError::Field { field: "user name" })
    );
    let mut after_pad = good;
    after_pad[33] = b'x';
    assert_eq!(
        BootstrapAccount::parse(&after_pad),
        Err(IpmiError::Field { field: "password" })
    );
    let mut control = good;
    control[2] = 0x07;
    assert!(BootstrapAccount::parse(&control).is_err());
}

#[test]
fn full_sixteen_byte_fields_need_no_padding() {
    let a = BootstrapAccount::parse(&account_rsp("ABCDEFGHIJKLMNOP", "0123456789abcdef")).unwrap();
    assert_eq!(a.user().len(), 16);
    assert_eq!(a.password(), "0123456789abcdef");
}

#[test]
fn errors_name_the_command_and_the_code() {
    let e = BootstrapAnswer::parse(&[0xD4]).unwrap_err();
    let text = format!("{e}");
    assert!(text.contains("Get Bootstrap Account Credentials"), "{text}");
    assert!(
        text.contains("0xD4") && text.contains("insufficient privilege"),
        "{text}"
    );
}
